"""The served scorer over REST: three input forms with the same scores, 400s that name the problem,
the README's curl examples, a bounded load, a clean shutdown and a clear port-in-use error."""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from tests.pipelines.conftest import CLVKIT, ROOT, MlflowHome

pytestmark = pytest.mark.slow

MODEL = "models:/clvkit-cdnow-fhl2005@champion"
CONFIG = ROOT / "configs/cdnow_fhl2005.yaml"
AS_OF = "1998-06-30"
STARTUP_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 60
EXAMPLES = Path(__file__).resolve().parents[2] / "README.md"  # the README's curl examples, run as written
#: Columns that depend only on frequency, recency, T and monetary_value.
BTYD_ONLY = ["p_alive", "expected_purchases", "expected_order_value"]
#: Bounded load: requests, concurrent clients, share of malformed requests.
LOAD_REQUESTS = 2_000
LOAD_CONCURRENCY = 8
LOAD_MALFORMED_SHARE = 0.05
LOAD_SEED = 13


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: MlflowHome, port: int) -> subprocess.Popen:  # type: ignore[type-arg]
    process = subprocess.Popen([CLVKIT, "serve", "--model", MODEL, "--port", str(port)], cwd=home.path,
                               env=home.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}: {process.stderr.read() if process.stderr else ''}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200:
                return process
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(1)
    raise AssertionError("the server did not answer in time")


def stop_group(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(fhl_home: MlflowHome) -> Iterator[str]:
    port = free_port()
    process = start_server(fhl_home, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def forms(fhl_home: MlflowHome, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[pd.DataFrame, dict]]:
    """The same 25 customers as the features table, minimal BTYD rows and raw transactions."""
    path = tmp_path_factory.mktemp("forms") / "features.parquet"
    fhl_home.clvkit("features", "--config", str(CONFIG), "--as-of", AS_OF, "--output", str(path))
    table = pd.read_parquet(path)
    ids = table.index[::97][:25]
    from clvkit.io.datasets import load_builtin_transactions

    raw = load_builtin_transactions("cdnow_sample")
    rows = raw[raw["customer_id"].isin(ids)].copy()
    rows["timestamp"] = rows["timestamp"].dt.strftime("%Y-%m-%d")
    return {
        "features_index": (table.loc[ids], {}),
        "features": (table.loc[ids].reset_index(), {}),
        "btyd": (table.loc[ids, ["frequency", "recency", "T", "monetary_value"]].reset_index(), {}),
        "transactions": (rows[["customer_id", "timestamp", "amount", "quantity"]], {"as_of": AS_OF}),
    }


def post(url: str, frame: pd.DataFrame, params: dict | None = None) -> requests.Response:
    body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    if params:
        body["params"] = params
    return requests.post(f"{url}/invocations", json=body, timeout=REQUEST_TIMEOUT_S)


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(customer_id=frame["customer_id"].astype(str)).set_index("customer_id").sort_index()


def test_three_forms_score_the_same_in_process_and_over_rest(fhl_home: MlflowHome, forms, server: str,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(fhl_home.path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fhl_home.env["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model(MODEL)
    local = {name: by_customer(model.predict(frame, params=params or None)) for name, (frame, params) in forms.items()}
    reference = local["features"]
    numeric = reference.select_dtypes("number").columns
    pd.testing.assert_frame_equal(local["features_index"], reference)
    pd.testing.assert_frame_equal(local["transactions"], reference)  # built inside the scorer: identical
    pd.testing.assert_frame_equal(local["btyd"][BTYD_ONLY], reference[BTYD_ONLY])  # BTYD outputs: identical
    assert local["btyd"][numeric].notna().all().all()
    for name, (frame, params) in forms.items():
        if name == "features_index":
            continue
        response = post(server, frame, params)
        assert response.status_code == 200, (name, response.text)
        remote = by_customer(pd.DataFrame(response.json()["predictions"]))
        pd.testing.assert_frame_equal(remote[numeric], local[name][numeric], check_dtype=False, rtol=1e-12)
        assert (remote.drop(columns=numeric) == local[name].drop(columns=numeric)).all().all()


def test_impossible_values_get_400_naming_column_and_rows_without_a_trace(server: str, forms) -> None:  # type: ignore[no-untyped-def]
    btyd = forms["btyd"][0].head(3)
    cases = {
        "monetary_value": btyd.assign(monetary_value=[-100.0, 5.0, 5.0]),
        "recency": btyd.assign(recency=btyd["T"] + 1),
        "frequency": btyd.assign(frequency=[1.5, 1.0, 0.0]),
    }
    for column, frame in cases.items():
        response = post(server, frame)
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert f"column '{column}'" in message and "row 0 (customer_id" in message
        assert "Traceback" not in response.text and "/site-packages/" not in response.text
        assert "stack_trace" not in response.json()


def _curl_blocks() -> list[str]:
    text = EXAMPLES.read_text(encoding="utf-8")
    return [block for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "curl" in block]


def test_curl_examples_run_as_written(server: str, fhl_home: MlflowHome, tmp_path: Path) -> None:
    blocks = _curl_blocks()
    assert len(blocks) >= 3
    port = server.rsplit(":", 1)[1]
    bin_dir = str(Path(sys.executable).parent) + "/"
    for block in blocks:
        script = (block.replace("127.0.0.1:5001", f"127.0.0.1:{port}").replace(".venv/bin/", bin_dir)
                  .replace("configs/cdnow.yaml", str(CONFIG)).replace("/tmp/features.parquet", f"{tmp_path}/features.parquet")
                  .replace("/tmp/request.json", f"{tmp_path}/request.json"))
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=fhl_home.path, env=fhl_home.env,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout.strip().splitlines()[-1])  # curl's answer is the last line
        if "-100" in block:
            assert "column 'monetary_value'" in answer["message"]
        else:
            predictions = pd.DataFrame(answer["predictions"])
            assert len(predictions) >= 2 and predictions["clv"].ge(0).all(), answer


def _malformed(rng: random.Random, frame: pd.DataFrame) -> tuple[str, str]:
    """A malformed body and the words its 400 must contain."""
    kind = rng.randrange(5)
    if kind == 0:
        return json.dumps({"dataframe_split": json.loads(frame.assign(monetary_value=-1.0).to_json(orient="split", index=False))}), "monetary_value"
    if kind == 1:
        return json.dumps({"dataframe_split": json.loads(frame.assign(recency=frame["T"] + 5).to_json(orient="split", index=False))}), "recency"
    if kind == 2:
        return json.dumps({"dataframe_split": json.loads(frame.drop(columns=["T"]).to_json(orient="split", index=False))}), "'T'"
    if kind == 3:
        return json.dumps({"dataframe_split": json.loads(frame.assign(frequency="many").to_json(orient="split", index=False))}), "frequency"
    return '{"dataframe_split": {"columns": ["customer_id"', "JSON"


def test_bounded_load_has_no_5xx_and_every_4xx_names_its_problem(server: str, forms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(LOAD_SEED)
    btyd = forms["btyd"][0]
    jobs = []
    for _ in range(LOAD_REQUESTS):
        frame = btyd.sample(n=5, random_state=rng.randrange(10**6))
        if rng.random() < LOAD_MALFORMED_SHARE:
            jobs.append(_malformed(rng, frame))
        else:
            jobs.append((json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}), ""))
    session_local = threading.local()

    def send(job: tuple[str, str]) -> tuple[int, float, str, str]:
        session = getattr(session_local, "session", None) or requests.Session()
        session_local.session = session
        started = time.perf_counter()
        response = session.post(f"{server}/invocations", data=job[0], timeout=REQUEST_TIMEOUT_S,
                                headers={"Content-Type": "application/json"})
        return response.status_code, time.perf_counter() - started, response.text, job[1]

    with concurrent.futures.ThreadPoolExecutor(LOAD_CONCURRENCY) as pool:
        results = list(pool.map(send, jobs))
    codes = np.array([r[0] for r in results])
    latencies_ms = np.array([r[1] for r in results]) * 1000
    assert (codes >= 500).sum() == 0, [r[2][:300] for r in results if r[0] >= 500][:3]
    expected_bad = sum(1 for job in jobs if job[1])
    assert (codes == 400).sum() == expected_bad and (codes == 200).sum() == LOAD_REQUESTS - expected_bad
    for code, _, text, words in results:
        if code == 400:
            body = json.loads(text)
            assert words in body["message"] and "stack_trace" not in body, body
    p50, p99 = np.percentile(latencies_ms, [50, 99])
    report = {"requests": LOAD_REQUESTS, "concurrency": LOAD_CONCURRENCY, "malformed": expected_bad,
              "status_5xx": int((codes >= 500).sum()), "p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1)}
    print(f"REST load: {report}")
    (tmp_path / "rest_load.json").write_text(json.dumps(report), encoding="utf-8")


def test_sigterm_stops_the_server_and_frees_the_port(fhl_home: MlflowHome) -> None:
    port = free_port()
    process = start_server(fhl_home, port)
    try:
        process.send_signal(signal.SIGTERM)  # to clvkit only, as a process manager does
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
        with pytest.raises(ProcessLookupError):  # nothing of its process group is left
            os.killpg(process.pid, 0)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # the port is free again
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_port_in_use_is_an_exit_2_message(fhl_home: MlflowHome) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = fhl_home.clvkit("serve", "--model", MODEL, "--port", str(port), check=False)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
