"""Ingestion started in a background thread (the CLI's prefetch) gives what ingest gives, read once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clvkit.config.models import ColumnMapping, DataConfig
from clvkit.exceptions import DataValidationError, UserInputError
from clvkit.pipelines import ingest as ingest_module
from clvkit.pipelines.ingest import ingest, prefetch


def _log(tmp_path: Path) -> DataConfig:
    source = tmp_path / "tx.parquet"
    pd.DataFrame({
        "customer_id": ["C01", "C02", "C01", "C01", "C03"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-05", "2024-01-06"]),
        "amount": [10.0, 5.0, 7.5, 7.5, 0.0],
    }).to_parquet(source, index=False)
    return DataConfig(source=str(source), quarantine_path=str(tmp_path / "quarantine.csv"),
                      validation={"duplicate_rows": "quarantine", "zero_amount": "quarantine"})


def test_prefetched_ingest_equals_ingest_and_is_taken_once(tmp_path: Path) -> None:
    data = _log(tmp_path)
    expected = ingest(data)
    prefetch(data)
    got = ingest(data)
    assert not ingest_module._PREFETCHED  # taken
    pd.testing.assert_frame_equal(got.validated.transactions, expected.validated.transactions)
    pd.testing.assert_frame_equal(got.validated.quarantine, expected.validated.quarantine)
    assert got.validated.report == expected.validated.report
    assert got.quarantine_path == expected.quarantine_path and got.quarantine_path.is_file()
    assert pd.read_csv(got.quarantine_path)["reason"].tolist() == ["duplicate_rows", "zero_amount"]


def test_a_prefetch_of_other_data_is_not_taken(tmp_path: Path) -> None:
    data = _log(tmp_path)
    prefetch(data)
    other = data.model_copy(update={"validation": data.validation.model_copy(update={"zero_amount": "keep"})})
    try:
        assert ingest(other).validated.report.rows_used == 4  # read again, with its own policy
    finally:
        assert ingest(data).validated.report.rows_used == 3
    assert not ingest_module._PREFETCHED


def test_prefetch_errors_are_raised_by_ingest_with_their_message(tmp_path: Path) -> None:
    mapping = ColumnMapping(customer_id="client", timestamp="timestamp", amount="amount")
    data = _log(tmp_path).model_copy(update={"columns": mapping})
    prefetch(data)
    with pytest.raises(DataValidationError, match=r"data.columns.customer_id -> 'client' is not in the file"):
        ingest(data)


def test_prefetch_refuses_a_bad_quarantine_path_at_once(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    data = _log(tmp_path).model_copy(update={"quarantine_path": str(tmp_path / "folder.csv")})
    with pytest.raises(UserInputError, match=r"data.quarantine_path .* is a directory"):
        prefetch(data)
    assert not ingest_module._PREFETCHED


def test_a_command_that_fails_before_ingesting_drops_its_prefetch(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``clvkit train`` reads the data while it starts; stopped earlier (a lost MLflow store folder), it keeps
    nothing: no thread's result (the whole log) stays referenced by the module."""
    import yaml
    from typer.testing import CliRunner

    from clvkit.cli.main import app

    data = _log(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": data.source, "quarantine_path": data.quarantine_path}}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output
    assert not ingest_module._PREFETCHED
