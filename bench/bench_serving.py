"""Bench: serving latency of a registered clvkit model, in-process and over REST.

Trains ``configs/cdnow_fhl2005.yaml`` once into an MLflow SQLite store under ``--home`` (reused
when the registered model is already there), builds the customer table as of the end of the
data with ``clvkit features``, then times, for 1 and 1,000 customers (the features form, as the
README's ``dataframe_split`` request sends it):

* the bare scorer (``ClvScorer.score`` on the customer table);
* the loaded pyfunc (``mlflow.pyfunc.load_model(...).predict``: MLflow's input enforcement, the
  input adapter, the scorer and the finite-score check);
* REST: ``mlflow models serve --env-manager local`` (the command ``clvkit serve`` runs) on a free
  loopback port, sequential requests over one keep-alive connection after a warm-up, p50/p99;
* the floor of the server: a trivial pyfunc that returns a ready-made frame of the scorer's
  output shape, served the same way, with the clvkit signature (every input column optional,
  MLflow's ``Any`` type) and with no input schema (outputs and params only).

Writes the ``serving`` section of bench/RESULTS.md. Run under the bench lock:
``flock /tmp/notes/bench.lock .venv/bin/python bench/bench_serving.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "cdnow_fhl2005.yaml"
MODEL_NAME = "clvkit-cdnow-fhl2005"
MODEL_URI = f"models:/{MODEL_NAME}@champion"
AS_OF = "1998-06-30"
SIZES = (1, 1_000)
TARGET_P50_MS = {1: 15.0, 1_000: 40.0}
STARTUP_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 120.0
#: Position of the customer sent alone (a repeat buyer of the CDNOW sample).
SINGLE_ROW = 5


def clvkit_exe() -> str:
    return str(Path(sys.executable).with_name("clvkit"))


def home_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_URI"}
    scripts = str(Path(sys.executable).parent)
    return env | {"MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}", "PYTHONHASHSEED": "0",
                  "PATH": os.pathsep.join([scripts, env.get("PATH", "")])}


def prepare(home: Path) -> pd.DataFrame:
    """Train once (unless registered already) and return the customer table as of ``AS_OF``."""
    home.mkdir(parents=True, exist_ok=True)
    env = home_env(home)
    probe = subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient()"
                            f".get_model_version_by_alias({MODEL_NAME!r}, 'champion')"],
                           cwd=home, env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        print("training configs/cdnow_fhl2005.yaml ...", flush=True)
        subprocess.run([clvkit_exe(), "-q", "train", "--config", str(CONFIG), "--json"], cwd=home, env=env,
                       check=True, capture_output=True, text=True)
    features = home / "features.parquet"
    if not features.exists():
        subprocess.run([clvkit_exe(), "-q", "features", "--config", str(CONFIG), "--as-of", AS_OF,
                        "--output", str(features)], cwd=home, env=env, check=True, capture_output=True, text=True)
    return pd.read_parquet(features)


def requests_of(table: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """The REST form of each size: ``customer_id`` as a column."""
    return {1: table.iloc[[SINGLE_ROW]].reset_index(), 1_000: table.iloc[:1_000].reset_index()}


def body(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


def percentiles(seconds: list[float], cpu_seconds: float) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(ms),
            "cpu_ms": 1e3 * cpu_seconds / len(ms)}


def time_calls(fn: Callable[[], Any], n: int, warmup: int, cpu: Callable[[], float] = time.process_time) -> dict:
    """Wall-clock p50/p99 of ``n`` calls after ``warmup``, and the mean CPU time per call (``cpu``: seconds of
    CPU used so far by the process(es) doing the work), which waiting for a loaded machine's cores does not inflate."""
    for _ in range(warmup):
        fn()
    out = []
    cpu_start = cpu()
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return percentiles(out, cpu() - cpu_start)


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of process group ``pgid`` (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``mlflow models serve`` of ``model_uri`` (clvkit serve's command) in its own process group."""

    def __init__(self, model_uri: str, home: Path):
        from clvkit.pipelines.serve import serve_command

        self.port = free_port()
        self.process = subprocess.Popen(serve_command(model_uri, self.port), cwd=home, env=home_env(home),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server of {model_uri} exited with {self.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            self.stop()
            raise RuntimeError(f"the server of {model_uri} did not answer in {STARTUP_TIMEOUT_S:.0f} s")
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)

    def post(self, payload: bytes, rows: int) -> None:
        self.conn.request("POST", "/invocations", body=payload, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        text = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {text[:500]!r}")
        if rows and len(json.loads(text)["predictions"]) != rows:
            raise RuntimeError("wrong number of predictions")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def time_rest(model_uri: str, home: Path, payloads: dict[int, bytes], n: int, warmup: int) -> dict[int, dict]:
    server = Server(model_uri, home)
    try:
        return {size: time_calls(lambda p=payload, s=size: server.post(p, s), n, warmup,
                                 cpu=lambda: group_cpu_seconds(server.process.pid))
                for size, payload in payloads.items()}
    finally:
        server.stop()


def server_parts(model: Any, payloads: dict[int, bytes], calls: int) -> dict[str, dict[int, dict]]:
    """What the scoring server does for one request, in process and without HTTP: MLflow's parsing of the
    ``dataframe_split`` body into pandas, its JSON serialisation of the scores, and its whole ``invocations``
    (parse + pyfunc predict + serialise)."""
    from io import StringIO

    from mlflow.pyfunc import scoring_server

    schema = model.metadata.get_input_schema()
    parse = getattr(scoring_server, "_parse_json_data", None)
    parsed = {size: parse(payload, model.metadata, schema) for size, payload in payloads.items()} if parse else {}
    outputs = {size: model.predict(p.data, params=p.params) for size, p in parsed.items()}

    def to_json(size: int) -> str:
        out = StringIO()
        scoring_server.predictions_to_json(outputs[size], out)
        return out.getvalue()

    parts: dict[str, dict[int, dict]] = {}
    if parse:
        parts["MLflow: parse dataframe_split JSON into pandas (in process)"] = {
            s: time_calls(lambda s=s: parse(payloads[s], model.metadata, schema), calls, 5) for s in SIZES}
        parts["MLflow: scores to JSON response (in process)"] = {
            s: time_calls(lambda s=s: to_json(s), calls, 5) for s in SIZES}
    parts["MLflow invocations: parse + predict + JSON (in process, no HTTP)"] = {
        s: time_calls(lambda s=s: scoring_server.invocations(payloads[s], "application/json", model, schema),
                      calls, 5) for s in SIZES}
    return parts


def save_floor_models(home: Path, output: pd.DataFrame, signature: Any, input_columns: Any) -> dict[str, str]:
    """Trivial pyfuncs with the scorer's output: with every request column declared optional ``Any`` (the
    signature clvkit models had before) and without input schema (the signature they have now)."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from clvkit.io.scorer_input import request_columns

    any_inputs = Schema([ColSpec(AnyType(), name, required=False) for name in request_columns(input_columns)])

    class Floor(mlflow.pyfunc.PythonModel):
        """Does no work: the first ``len(model_input)`` rows of a ready-made output."""

        def __init__(self, frame: pd.DataFrame):
            self.frame = frame

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            return self.frame.iloc[: len(model_input)]

    paths = {}
    for name, sig in (("any_schema", ModelSignature(inputs=any_inputs, outputs=signature.outputs,
                                                    params=signature.params)),
                      ("no_input_schema", ModelSignature(inputs=None, outputs=signature.outputs,
                                                          params=signature.params))):
        path = home / f"floor_{name}"
        if not (path / "MLmodel").exists():
            mlflow.pyfunc.save_model(str(path), python_model=Floor(output), signature=sig)
        paths[name] = str(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/clvkit-bench-serving"))
    parser.add_argument("--requests", type=int, default=200, help="timed sequential requests per size")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--calls", type=int, default=100, help="timed in-process calls per size")
    parser.add_argument("--no-floor", action="store_true", help="skip the trivial-pyfunc floor servers")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    home = args.home.resolve()
    table = prepare(home)
    os.chdir(home)
    os.environ.update(home_env(home))
    load_start = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())

    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(MODEL_URI)
    scorer = model.unwrap_python_model()._scorer
    frames = requests_of(table)
    local = {size: table.iloc[[SINGLE_ROW]] if size == 1 else table.iloc[:size] for size in SIZES}
    results: dict[str, dict[int, dict]] = {}
    results["scorer (in process)"] = {s: time_calls(lambda s=s: scorer.score(local[s]), args.calls, 5) for s in SIZES}
    results["pyfunc predict (in process)"] = {s: time_calls(lambda s=s: model.predict(frames[s]), args.calls, 5)
                                              for s in SIZES}
    payloads = {size: body(frame) for size, frame in frames.items()}
    results.update(server_parts(model, payloads, args.calls))
    print(json.dumps(results, indent=1), flush=True)
    results["REST, clvkit model"] = time_rest(MODEL_URI, home, payloads, args.requests, args.warmup)
    print(json.dumps(results["REST, clvkit model"]), flush=True)
    if not args.no_floor:
        output = model.predict(frames[1_000])
        floors = save_floor_models(home, output, model.metadata.signature, scorer.input_columns)
        for name, path in floors.items():
            label = f"REST floor: trivial pyfunc, {name.replace('_', ' ')}"
            results[label] = time_rest(path, home, payloads, args.requests, args.warmup)
            print(label, json.dumps(results[label]), flush=True)
    load_end = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    text = report(results, args, load_start, load_end)
    print(text)
    if not args.no_write:
        write_section("serving", text)


def report(results: dict[str, dict[int, dict]], args: argparse.Namespace, load_start: str, load_end: str) -> str:
    lines = [
        "## Serving latency (`bench/bench_serving.py`)",
        "",
        "`configs/cdnow_fhl2005.yaml` trained once; the customer table as of 1998-06-30 (features form, "
        "`dataframe_split` as the README sends it). In process: median (p50) and p99 of "
        f"{args.calls} calls; REST: `mlflow models serve --env-manager local` (one worker, as `clvkit serve`), "
        f"{args.requests} sequential requests over one keep-alive connection after {args.warmup} warm-up requests, "
        "wall time at the client.",
        "",
        "CPU: mean CPU time per call of the process doing the work (for REST the server's process group, "
        "client excluded); unlike wall time it does not grow while the call waits for a loaded machine's cores.",
        "",
        "| path | 1 row p50 / p99 (ms) | 1 row CPU (ms) | 1,000 rows p50 / p99 (ms) | 1,000 rows CPU (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, by_size in results.items():
        cells = [f"{by_size[s]['p50']:.1f} / {by_size[s]['p99']:.1f} | {by_size[s]['cpu_ms']:.1f}" for s in SIZES]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    parse = results.get("MLflow: parse dataframe_split JSON into pandas (in process)")
    dump = results.get("MLflow: scores to JSON response (in process)")
    if parse and dump:
        ours = results["pyfunc predict (in process)"]
        shares = "; ".join(
            f"{s:,} row{'s' if s > 1 else ''}: MLflow parses the body in {parse[s]['cpu_ms']:.1f} ms CPU and writes the "
            f"scores as JSON in {dump[s]['cpu_ms']:.1f} ms, clvkit's part (pyfunc predict: input adapter, scorer, "
            f"finite check) is {ours[s]['cpu_ms']:.1f} ms" for s in SIZES)
        lines += ["", f"Where a request's CPU goes (in process): {shares}. The rest of the REST time is HTTP, "
                  "uvicorn/FastAPI and the thread hand-off (REST floor minus the in-process parse and JSON)."]
    rest = results["REST, clvkit model"]
    verdict = ", ".join(f"{s:,} row{'s' if s > 1 else ''}: p50 {rest[s]['p50']:.1f} ms vs target "
                        f"{TARGET_P50_MS[s]:.0f} ms ({'met' if rest[s]['p50'] <= TARGET_P50_MS[s] else 'missed'})"
                        for s in SIZES)
    lines += ["", f"Targets over REST: {verdict}.",
              f"**Load average (1, 5, 15 min) {load_start} at the start, {load_end} at the end** "
              "(2 shared cores; other work was running)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
