"""Predict's scoring date and outputs under bad input, beyond what one case file can assert."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from clvkit.cli.main import app
from tests.bad_inputs.conftest import MODEL_URI, make_file
from tests.pipelines.conftest import MlflowHome


def _predict(home: MlflowHome, case_dir: Path, source: str, output: str) -> pd.DataFrame:
    result = CliRunner().invoke(app, ["predict", "--model", MODEL_URI, "-i", source, "-o", output],
                                env={"MLFLOW_TRACKING_URI": home.env["MLFLOW_TRACKING_URI"]})
    assert result.exit_code == 0, result.output
    return pd.read_csv(case_dir / output, dtype={"customer_id": str}).set_index("customer_id")


@pytest.mark.slow
def test_future_dated_rows_do_not_move_the_prediction(trained_home: MlflowHome, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: ten rows dated 2031 moved the default as-of and cut total CLV from 68,686 to 601."""
    make_file(tmp_path, trained_home.path, "clean.csv", {"generator": "sim"})
    make_file(tmp_path, trained_home.path, "future.csv", {"generator": "future_rows"})
    monkeypatch.chdir(tmp_path)
    clean = _predict(trained_home, tmp_path, "clean.csv", "clean_scores.csv")
    future = _predict(trained_home, tmp_path, "future.csv", "future_scores.csv")
    pd.testing.assert_frame_equal(future, clean)
    assert future["clv"].sum() > 0
    quarantine = pd.read_csv(tmp_path / "future_scores.quarantine.csv")
    assert quarantine["reason"].tolist() == ["after_as_of"] * 10
    assert not (tmp_path / "clean_scores.quarantine.csv").exists()


def test_features_refuses_to_overwrite_its_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11.1 for `clvkit features`: the output path equal to data.source is refused before any work."""
    source = tmp_path / "tx.csv"
    source.write_text("customer_id,timestamp,amount\na,2024-01-01,1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["features", "-o", "tx.csv", "--set", "data.source=tx.csv"])
    assert result.exit_code == 2
    assert "--output 'tx.csv' is the input file 'tx.csv': writing it would destroy the input" in result.output
    assert source.read_text(encoding="utf-8") == "customer_id,timestamp,amount\na,2024-01-01,1\n"
