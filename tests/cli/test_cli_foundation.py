from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from clvkit.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).parents[2]


def _write_bad_file(path: Path) -> None:
    pd.DataFrame(
        {
            "cid": ["a", "a", "b", "c", "c", ""],
            "day": ["2024-01-01", "2024-02-01", "2024-01-05", "2024-01-07", "oops", "2024-01-09"],
            "revenue": [10.0, 12.0, 0.0, 5.0, 3.0, 2.0],
        }
    ).to_csv(path, index=False)


def _config(tmp_path: Path, **validation: str) -> Path:
    source = tmp_path / "tx.csv"
    _write_bad_file(source)
    lines = [
        "data:",
        f"  source: {source}",
        "  columns: {customer_id: cid, timestamp: day, amount: revenue}",
        f"  quarantine_path: {tmp_path / 'q.csv'}",
    ]
    if validation:
        lines += ["  validation:", *(f"    {k}: {v}" for k, v in validation.items())]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("config", "data", "features", "train", "predict", "serve", "backtest", "report", "compare"):
        assert command in result.output


def test_config_validate_ok_and_show() -> None:
    result = runner.invoke(app, ["config", "validate", str(ROOT / "configs/cdnow.yaml"), "--show"])
    assert result.exit_code == 0, result.output
    assert "configs/cdnow.yaml: valid (config hash" in result.output
    assert "horizon_months: 12" in result.output


def test_config_validate_bad_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  time_unit: Y\n")
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2
    assert "data.time_unit: Input should be 'D', 'W' or 'M' (got 'Y')" in result.output


def test_set_override_unknown_key_exit_2() -> None:
    result = runner.invoke(app, ["config", "validate", str(ROOT / "configs/cdnow.yaml"), "--set", "clv.nope=1"])
    assert result.exit_code == 2
    assert "clv.nope: unknown key" in result.output


def test_config_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["config", "schema"])
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert {"data", "clv", "churn", "models", "mlflow", "seed"} <= set(schema["properties"])


def test_data_validate_error_policy_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", "--config", str(_config(tmp_path))])
    assert result.exit_code == 2
    assert "[missing_customer_id] column 'cid': 1 row(s) have no customer id" in result.output
    assert "[invalid_timestamp] column 'day': 1 row(s)" in result.output


def test_data_validate_quarantine_reconciles(tmp_path: Path) -> None:
    config = _config(tmp_path, missing_customer_id="quarantine", invalid_timestamp="quarantine")
    result = runner.invoke(app, ["data", "validate", "--config", str(config), "--set", "data.observation_end=2024-01-31"])
    assert result.exit_code == 0, result.output
    assert "rows read 6 = rows used 3 + rows quarantined 3" in result.output
    assert "quarantined, after_observation_end: 1" in result.output
    assert "kept, zero_amount: 1" in result.output
    quarantine = pd.read_csv(tmp_path / "q.csv")
    assert sorted(quarantine["reason"]) == ["after_observation_end", "invalid_timestamp", "missing_customer_id"]
    assert sorted(quarantine["source_row"]) == [2, 5, 6]


def test_missing_source_file_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", "--set", f"data.source={tmp_path / 'none.csv'}"])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_unsupported_source_type_exit_2() -> None:
    result = runner.invoke(app, ["data", "validate", "--set", "data.source=tx.json"])
    assert result.exit_code == 2
    assert "unsupported file type '.json'; use one of .csv, .txt, .parquet, .pq, .xlsx" in result.output


def test_console_script_runs_builtin_cdnow(tmp_path: Path) -> None:
    """The installed entry point, for real, on the bundled CDNOW data."""
    exe = Path(sys.executable).with_name("clvkit")
    result = subprocess.run(
        [str(exe), "-q", "data", "validate", "--config", str(ROOT / "configs/cdnow.yaml"),
         "--set", f"data.quarantine_path={tmp_path / 'q.csv'}"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rows read 69,659 = rows used 69,659 + rows quarantined 0" in result.stdout
    assert "customers 23,570" in result.stdout
    assert "calibration ends 1997-09-30 (configured)" in result.stdout


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_data_simulate_writes_truth(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"sim.{fmt}"
    result = runner.invoke(app, ["data", "simulate", "--customers", "50", "--seed", "1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()
    assert (tmp_path / f"sim_truth.{fmt}").exists()
    assert json.loads((tmp_path / "sim_params.json").read_text())["seed"] == 1
