"""The MLflow UI as a user sees it: headless Chromium on `mlflow server` (loopback) with two training runs.

Needs the Debian package ``chromium`` (``make browser`` installs it; ``make test`` does it first).
The compare page's screenshot is kept in tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests

from tests.pipelines.conftest import CLVKIT, COMMAND_TIMEOUT_S, ROOT, MlflowHome

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "tests" / "artifacts"
STARTUP_TIMEOUT_S = 120
#: Virtual time Chromium gives the page's scripts and requests before it dumps or shoots the page.
VIRTUAL_TIME_BUDGET_MS = 30_000
BROWSER_TIMEOUT_S = 180
WINDOW_SIZE = "1600,1400"
#: Key metrics the compare page must show (plain names: the UI lists them apart from the grouped ones).
KEY_METRICS = ("clv_gini_norm", "churn_pr_auc")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage")


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("headless Chromium is not installed: run `make browser` (apt-get install chromium)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ui(fhl_home: MlflowHome) -> Iterator[str]:
    """`mlflow server` on loopback over the fhl home's store (the command the README gives)."""
    port = _free_port()
    mlflow_exe = str(Path(sys.executable).with_name("mlflow"))
    process = subprocess.Popen([mlflow_exe, "server", "--backend-store-uri", fhl_home.env["MLFLOW_TRACKING_URI"],
                                "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                               cwd=fhl_home.path, env=fhl_home.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(1)
        else:
            raise AssertionError("mlflow server did not start")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:  # mlflow server's job consumers (huey) may outlive SIGTERM
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def two_runs(fhl_home: MlflowHome) -> tuple[str, list[dict]]:
    """The home's first training run and a second one with another horizon, trained as a script does:
    ``clvkit train --json | python -c 'import json,sys; json.load(sys.stdin)'`` (not quiet)."""
    config = ROOT / "configs/cdnow_fhl2005.yaml"
    script = (f"{CLVKIT} train --config {config} --set clv.horizon_months=6 --json"
              f" | {sys.executable} -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'")
    piped = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=fhl_home.path, env=fhl_home.env,
                           capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    assert piped.returncode == 0, piped.stderr[-3000:]
    second = json.loads(piped.stdout)
    assert "registered clvkit-cdnow-fhl2005 v" in piped.stderr  # the human summary went to stderr
    first = fhl_home.first_run  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", fhl_home.env["MLFLOW_TRACKING_URI"])
        client = mlflow.tracking.MlflowClient(fhl_home.env["MLFLOW_TRACKING_URI"])
        runs = [client.get_run(r["run_id"]) for r in (first, second)]
    experiment_id = runs[0].info.experiment_id
    return experiment_id, [{"id": r.info.run_id, "name": r.info.run_name, "metrics": r.data.metrics,
                            "tags": r.data.tags, "duration_s": (r.info.end_time - r.info.start_time) / 1000}
                           for r in runs]


def _browse(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               f"--window-size={WINDOW_SIZE}", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
                               *extra, url], capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)


def test_runs_carry_name_description_dataset_and_grouped_metrics(two_runs) -> None:  # type: ignore[no-untyped-def]
    _, runs = two_runs
    for run in runs:
        assert run["name"].startswith("clvkit-cdnow-fhl2005-h") and run["name"].endswith("1998-06-30")
        description = run["tags"]["mlflow.note.content"]
        assert "| clv_gini_norm (primary) |" in description and "best baseline" in description
        assert "Registered" in description
        assert {f"Key/{m}" for m in KEY_METRICS} <= set(run["metrics"])  # the UI's first chart section
        assert any(k.startswith("baseline/") for k in run["metrics"]) and any(k.startswith("fit/") for k in run["metrics"])
        assert not [k for k in run["metrics"] if "/" not in k]  # no metric lands in the catch-all section
        assert not [k for k in run["metrics"] if k.startswith(("param_", "baseline_hist_agg"))]
    assert {r["name"] for r in runs} == {"clvkit-cdnow-fhl2005-h12m-1998-06-30", "clvkit-cdnow-fhl2005-h6m-1998-06-30"}


def test_compare_page_shows_both_runs_and_key_metrics(ui: str, two_runs) -> None:  # type: ignore[no-untyped-def]
    experiment_id, runs = two_runs
    query = urllib.parse.urlencode({"runs": json.dumps([r["id"] for r in runs]),
                                    "experiments": json.dumps([experiment_id])})
    page = f"{ui}/#/compare-runs?{query}"
    dom = _browse(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for run in runs:
        assert run["name"] in html, f"run {run['name']} not on the compare page"
    for metric in KEY_METRICS:
        assert metric in html, f"metric {metric} not on the compare page"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "mlflow_compare_runs.png"
    shot = _browse(page, f"--screenshot={screenshot}")
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    (ARTIFACTS / "mlflow_compare_runs.html").write_text(html, encoding="utf-8")
    print(f"compare page screenshot: {screenshot}")
