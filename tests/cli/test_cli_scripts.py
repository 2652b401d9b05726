"""The CLI in scripts: -q is quiet, compare prints table (100 columns), CSV or JSON with chosen metrics and params."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

#: Real MLflow stores and CLI subprocesses take seconds.
pytestmark = pytest.mark.slow

CLVKIT = str(Path(sys.executable).with_name("clvkit"))
#: (run name, clv_gini_norm, baseline/hist_gini_norm, fit/cal_bgnbd_r, horizon param)
RUNS = (("run-a", 0.30, 0.25, 0.24, "12"), ("run-b", 0.50, 0.25, 0.26, "6"))


def _clvkit(uri: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    return subprocess.run([CLVKIT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Two training-like runs logged with grouped metric names, as clvkit train logs them."""
    path = tmp_path_factory.mktemp("scripts")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.create_experiment("scripts", artifact_location=str(path / "artifacts"))
    for name, gini, baseline, r, horizon in RUNS:
        run = client.create_run(experiment, run_name=name, tags={"kind": "train", "clv_source": "btyd"})
        for key, value in (("clv_gini_norm", gini), ("baseline/hist_gini_norm", baseline), ("fit/cal_bgnbd_r", r),
                           ("churn_pr_auc", 0.9)):
            client.log_metric(run.info.run_id, key, value)
        client.log_param(run.info.run_id, "clv.horizon_months", horizon)
        client.set_terminated(run.info.run_id)
    return uri, path


def test_quiet_prints_only_the_error_even_when_mlflow_creates_its_store(tmp_path: Path) -> None:
    result = _clvkit(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path, "-q", "compare", "--experiment", "nope")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: no experiment named 'nope'; experiments here: ['Default']"]
    assert result.stdout == ""


def test_compare_csv_and_json_hold_chosen_metrics_and_params(store: tuple[str, Path]) -> None:
    uri, path = store
    args = ("compare", "-e", "scripts", "--metrics", "baseline_hist_gini_norm,fit/cal_bgnbd_r",
            "--params", "clv.horizon_months")
    csv = _clvkit(uri, path, "-q", *args, "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    table = pd.read_csv(io.StringIO(csv.stdout))
    assert table["run"].tolist() == ["run-b", "run-a"]  # best clv_gini_norm first
    assert table["baseline_hist_gini_norm"].tolist() == [0.25, 0.25]
    assert table["param_cal_bgnbd_r"].tolist() == [0.26, 0.24]  # logged as fit/cal_bgnbd_r, named as in code
    assert table["clv.horizon_months"].tolist() == [6, 12]
    as_json = _clvkit(uri, path, "-q", *args, "--format", "json")
    records = json.loads(as_json.stdout)
    assert [r["run"] for r in records] == ["run-b", "run-a"] and records[0]["clv.horizon_months"] == "6"


def test_compare_table_fits_100_columns_and_says_what_it_left_out(store: tuple[str, Path]) -> None:
    uri, path = store
    result = _clvkit(uri, path, "-q", "compare", "-e", "scripts", "--params", "clv.horizon_months",
                     "--metrics", "clv_gini_norm,baseline_hist_gini_norm,churn_pr_auc,fit/cal_bgnbd_r")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 100
    assert "run-b" in lines[1] and "run-a" in lines[2]
    if "left out" in result.stderr:
        assert "use --format csv or json" in result.stderr


def test_compare_unknown_metric_is_exit_2_listing_known_ones(store: tuple[str, Path]) -> None:
    uri, path = store
    result = _clvkit(uri, path, "-q", "compare", "-e", "scripts", "--metrics", "clv_gini")
    assert result.returncode == 2
    assert "--metrics ['clv_gini'] are not metrics of experiment 'scripts'" in result.stderr
    assert "clv_gini_norm" in result.stderr
