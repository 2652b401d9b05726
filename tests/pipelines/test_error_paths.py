"""Error paths of the pipelines and commands that need no training."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from clvkit.cli.main import app
from clvkit.exceptions import UserInputError
from clvkit.io.files import read_table
from clvkit.pipelines.backtest import default_cutoffs
from clvkit.pipelines.report import render_run_report

D = dt.date


def test_default_cutoffs_evenly_spaced_and_errors() -> None:
    assert default_cutoffs(D(1997, 1, 1), D(1997, 9, 30), 3, 90) == [D(1997, 7, 28), D(1997, 8, 29), D(1997, 9, 30)]
    assert default_cutoffs(D(1997, 1, 1), D(1997, 9, 30), 1, 90) == [D(1997, 9, 30)]
    with pytest.raises(UserInputError, match="--cutoffs must be at least 1, got 0"):
        default_cutoffs(D(1997, 1, 1), D(1997, 9, 30), 0, 90)
    with pytest.raises(UserInputError, match=r"too short for a backtest: the earliest cut-off would be 1997-07-28"):
        default_cutoffs(D(1997, 1, 1), D(1997, 5, 1), 3, 90)


def test_bad_date_option_exit_2() -> None:
    result = CliRunner().invoke(app, ["features", "--as-of", "30/09/1997", "--output", "x.parquet"])
    assert result.exit_code == 2
    assert "--as-of '30/09/1997' is not a date; use YYYY-MM-DD" in result.output


def test_predict_without_input_or_config_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", "--model", "models:/x@champion", "--output", str(tmp_path / "s.csv")])
    assert result.exit_code == 2
    assert "nothing to score: give --input PATH (transactions or a feature table) or --config" in result.output


def test_read_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"no such file"):
        read_table(tmp_path / "absent.parquet")


@pytest.mark.slow  # a real MLflow store
def test_report_of_a_run_without_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("no-plots")  # earlier tests leave another store's experiment active
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
    with pytest.raises(UserInputError, match=f"run {run.info.run_id} has no plots: it is not a clvkit training run"):
        render_run_report(run.info.run_id)
