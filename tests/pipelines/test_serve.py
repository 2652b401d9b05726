"""``clvkit serve``: the registered scorer over REST (mlflow models serve on loopback)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from clvkit import schemas
from clvkit.io.metric_names import internal_name
from tests.pipelines.conftest import CLVKIT, ROOT, MlflowHome

#: End-to-end: every test here trains through the CLI or starts a server (make test-fast skips them).
pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 120
#: One start-up poll: a loaded machine may take longer than this to answer (ReadTimeout: poll again).
POLL_TIMEOUT_S = 5
POLL_INTERVAL_S = 1
OUTPUT_COLUMNS = ["customer_id", *schemas.SCORER_OUTPUT_COLUMNS]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Poll ``url`` until it answers 200; fail if the process dies or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read().decode() if process.stdout else ''}")
        try:
            if requests.get(url, timeout=POLL_TIMEOUT_S).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or too busy to answer in time
            pass
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"{url} did not answer in time")


@pytest.fixture(scope="module")
def server(fhl_home: MlflowHome) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([CLVKIT, "serve", "--model", "models:/clvkit-cdnow-fhl2005@champion", "--port", str(port)],
                               cwd=fhl_home.path, env=fhl_home.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/ping", process)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def feature_rows(fhl_home: MlflowHome, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("rest") / "features.parquet"
    fhl_home.clvkit("features", "--config", str(ROOT / "configs/cdnow_fhl2005.yaml"), "--as-of", "1998-06-30",
                    "--output", str(path))
    return pd.read_parquet(path).head(20).reset_index()


def _payload(frame: pd.DataFrame) -> str:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})


def test_rest_returns_every_output_column(server: str, feature_rows: pd.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    response = requests.post(f"{server}/invocations", data=_payload(feature_rows),
                             headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 200, response.text
    predictions = pd.DataFrame(response.json()["predictions"])
    assert list(predictions.columns) == OUTPUT_COLUMNS
    assert predictions["customer_id"].tolist() == feature_rows["customer_id"].tolist()
    assert predictions["clv"].ge(0).all()


def test_rest_malformed_request_is_400_naming_the_problem(server: str, feature_rows: pd.DataFrame) -> None:
    missing = feature_rows.drop(columns=["frequency"])
    response = requests.post(f"{server}/invocations", data=_payload(missing),
                             headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 400
    assert "frequency" in response.json()["message"]
    garbage = requests.post(f"{server}/invocations", data="{not json",
                            headers={"Content-Type": "application/json"}, timeout=60)
    assert garbage.status_code == 400
    assert "Invalid input" in garbage.json()["message"] or "JSON" in garbage.json()["message"]


def test_mlflow_ui_server_shows_the_runs(fhl_home: MlflowHome) -> None:
    """`mlflow server` (the UI the README points to) serves the experiment and its metrics."""
    port = _free_port()
    mlflow_exe = str(Path(sys.executable).with_name("mlflow"))
    process = subprocess.Popen([mlflow_exe, "server", "--backend-store-uri", fhl_home.env["MLFLOW_TRACKING_URI"],
                                "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                               cwd=fhl_home.path, env=fhl_home.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/health", process)
        experiment = requests.get(f"{url}/api/2.0/mlflow/experiments/get-by-name",
                                  params={"experiment_name": "clvkit-cdnow-fhl2005"}, timeout=30).json()["experiment"]
        runs = requests.post(f"{url}/api/2.0/mlflow/runs/search",
                             json={"experiment_ids": [experiment["experiment_id"]]}, timeout=30).json()["runs"]
        metrics = {internal_name(m["key"]) for m in runs[0]["data"]["metrics"]}  # Key/clv_gini_norm -> clv_gini_norm
        assert {"clv_gini_norm", "baseline_hist_gini_norm", "churn_pr_auc"} <= metrics
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
