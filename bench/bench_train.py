"""Benchmark of ``clvkit train`` end to end: wall time and peak memory at 1M, 3M and 10M rows.

Usage::

    python bench/bench_train.py [--rows 1_000_000 3_000_000 10_000_000] [--seed 42]
                                [--cache /tmp/train_bench] [--no-write]

For each size a seeded BG/NBD + Gamma-Gamma simulation (``clvkit.data.simulate``) with about
ten transactions per customer (so 10M rows are 1M customers) is written once to Parquet under
``--cache`` (reused on later runs), with a config written beside it. ``clvkit train --json`` then
runs as a subprocess with a fresh MLflow sqlite store, and this script measures

* wall time of the subprocess;
* peak RSS of its process tree: the sum of the resident memory of the process and all its
  descendants, sampled every :data:`POLL_SECONDS` (``/proc``); and the largest single process's
  peak (``VmHWM``);
* per-stage seconds, from the run's own log lines stamped as they arrive (:data:`STAGE_MARKERS`).

Writes the ``train`` section of ``bench/RESULTS.md`` and ``bench/train_scaling.png`` (seconds
against rows). Not a pytest test; hold the bench lock (``flock /tmp/notes/bench.lock``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

DEFAULT_ROWS = (1_000_000, 3_000_000, 10_000_000)
#: Simulation parameters (weeks) giving about ten transactions per customer over two years.
SIM_PARAMS = {"r": 0.95, "alpha": 4.0, "a": 0.8, "b": 7.5, "time_unit": "W", "start_date": "2020-01-01",
              "acquisition_days": 365, "observation_days": 730}
ROWS_PER_CUSTOMER = 10.02
#: Holdout of the evaluation origin: the last 26 weeks.
HOLDOUT_DAYS = 182
POLL_SECONDS = 0.05
TARGET_SECONDS = 90.0
TARGET_RSS_GB = 4.0
GB = 1e9
#: Log messages (substrings) that open each stage of a training run, in order.
STAGE_MARKERS = (
    ("start-up + ingest", ""),
    ("evaluation", "stage: evaluating the whole recipe"),
    ("served refit", "stage: fitting the served recipe"),
    ("figures", "stage: drawing the evaluation plots"),
    ("logging", "stage: logging the run to MLflow"),
    ("model + registry", "stage: logging the scorer model"),
)
PLOT_PATH = Path(__file__).with_name("train_scaling.png")


def generate(n_rows: int, seed: int, cache: Path) -> dict[str, Any]:
    """The cached Parquet file of about ``n_rows`` simulated transactions and its dates."""
    path = cache / f"sim_{n_rows}_{seed}.parquet"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return json.loads(meta_path.read_text())
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-generate", str(n_rows), str(seed), str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    meta_path.write_text(json.dumps(meta))
    return meta


def child_generate(n_rows: int, seed: int, path: str) -> None:
    """In a subprocess (the parent stays small): simulate, write Parquet, print the dates as JSON."""
    from clvkit.data.simulate import SimulationParams, simulate_transactions

    start = time.perf_counter()
    tx = simulate_transactions(int(round(n_rows / ROWS_PER_CUSTOMER)), seed=seed,
                               params=SimulationParams(**SIM_PARAMS)).transactions
    tx.to_parquet(path, index=False)
    last = tx["timestamp"].max().date()
    print(json.dumps({"path": path, "rows": len(tx), "customers": int(tx["customer_id"].nunique()),
                      "first_date": str(tx["timestamp"].min().date()), "last_date": str(last),
                      "generate_s": time.perf_counter() - start}))


def write_config(meta: dict[str, Any], work: Path) -> Path:
    """A config for the simulated file: weeks, a 26-week holdout ending on the last date."""
    import datetime as dt

    last = dt.date.fromisoformat(meta["last_date"])
    calibration_end = last - dt.timedelta(days=HOLDOUT_DAYS)
    text = f"""# Written by bench/bench_train.py for {meta['rows']:,} simulated rows.
data:
  source: {meta['path']}
  columns:
    customer_id: customer_id
    timestamp: timestamp
    amount: amount
  time_unit: W
  calibration_end: {calibration_end}
  observation_end: {last}
  quarantine_path: {work / 'quarantine.csv'}
clv:
  horizon_months: 12
  discount_rate_annual: 0.10
  margin: 0.3
churn:
  window_days: 90
mlflow:
  experiment: bench-train
  registered_model: bench-train
seed: 42
"""
    path = work / "config.yaml"
    path.write_text(text)
    return path


def _children(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/<pid>/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(parents.get(p, []))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _hwm_bytes(pid: int) -> int:
    """Peak RSS (VmHWM) of one process so far."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


class TreeMemory(threading.Thread):
    """Samples a process tree until stopped: ``peak`` (summed RSS) and ``largest`` (one process's VmHWM), bytes."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.largest, self._stop_event = pid, 0, 0, threading.Event()
        self.start_time = time.perf_counter()
        self.samples: list[tuple[float, int]] = []
        self.cpu_samples: list[tuple[float, float]] = []  # (seconds since start, CPU seconds of the tree)
        self._cpu_by_pid: dict[int, float] = {}

    def run(self) -> None:
        while not self._stop_event.is_set():
            tree = _children(self.pid)
            rss = sum(_rss_bytes(p) for p in tree)
            self.samples.append((time.perf_counter() - self.start_time, rss))
            for p in tree:  # a child that has exited keeps the CPU it used
                self._cpu_by_pid[p] = max(self._cpu_by_pid.get(p, 0.0), _cpu_seconds(p))
            self.cpu_samples.append((self.samples[-1][0], sum(self._cpu_by_pid.values())))
            self.peak = max(self.peak, rss)
            self.largest = max([self.largest, *(_hwm_bytes(p) for p in tree)])
            self._stop_event.wait(POLL_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_train(config: Path, work: Path) -> dict[str, Any]:
    """``clvkit train --json`` in a subprocess: wall seconds, peak RSS, stage seconds, its JSON."""
    store = work / "mlflow.db"
    for stale in (store, work / "mlruns"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "PYTHONUNBUFFERED": "1"}
    clvkit = Path(sys.executable).with_name("clvkit")
    load_start = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([str(clvkit), "train", "--config", str(config), "--json"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    memory.start()
    stamped: list[tuple[float, str]] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stamped.append((time.perf_counter() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout = proc.stdout.read() if proc.stdout else ""
    code = proc.wait()
    wall = time.perf_counter() - start
    reader.join()
    memory.stop()
    load_end = os.getloadavg()[0]
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    (work / "train.log").write_text("\n".join(f"{t:8.2f} {line}" for t, line in stamped))
    if code != 0:
        tail = "\n".join(line for _, line in stamped[-20:])
        raise RuntimeError(f"clvkit train exited {code}:\n{tail}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": cpu, "tree_peak_gb": memory.peak / GB,
            "largest_process_gb": memory.largest / GB,
            "stages": stage_seconds(stamped, wall),
            "stage_peak_gb": stage_peaks(stamped, wall, memory.samples),
            "stage_cpu_s": stage_cpu(stamped, wall, memory.cpu_samples, cpu), "load_start": load_start, "load_end": load_end,
            "metrics": {k: result["metrics"].get(k) for k in (
                "clv_gini_norm", "baseline_hist_gini_norm", "clv_spearman", "clv_aggregate_error_pct",
                "churn_roc_auc")},
            "clv_source": result.get("clv_source")}


def stage_seconds(stamped: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """Seconds between the first log line of each stage marker and the next stage's."""
    starts: list[tuple[str, float]] = [(STAGE_MARKERS[0][0], 0.0)]
    for name, marker in STAGE_MARKERS[1:]:
        hit = next((t for t, line in stamped if marker in line and t >= starts[-1][1]), None)
        if hit is not None:
            starts.append((name, hit))
    ends = [t for _, t in starts[1:]] + [wall]
    return {name: end - begin for (name, begin), end in zip(starts, ends, strict=True)}


def stage_peaks(stamped: list[tuple[float, str]], wall: float, samples: list[tuple[float, int]]) -> dict[str, float]:
    """Peak summed RSS (GB) of the process tree within each stage."""
    out: dict[str, float] = {}
    begin = 0.0
    for name, seconds in stage_seconds(stamped, wall).items():
        inside = [rss for t, rss in samples if begin <= t <= begin + seconds]
        out[name] = max(inside, default=0) / GB
        begin += seconds
    return out


def stage_cpu(stamped: list[tuple[float, str]], wall: float, samples: list[tuple[float, float]],
              total_cpu: float) -> dict[str, float]:
    """CPU seconds (user + sys of the process tree, sampled every POLL_SECONDS) within each stage; the last
    stage ends with the subprocess's own total (its last samples may miss the final moments)."""
    def cpu_at(moment: float) -> float:
        return max((c for t, c in samples if t <= moment), default=0.0)

    out: dict[str, float] = {}
    begin = 0.0
    stages = list(stage_seconds(stamped, wall).items())
    for i, (name, seconds) in enumerate(stages):
        end_cpu = total_cpu if i == len(stages) - 1 else cpu_at(begin + seconds)
        out[name] = end_cpu - cpu_at(begin)
        begin += seconds
    return out


def plot(points: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = np.array([p["rows"] for p in points], dtype=float) / 1e6
    seconds = np.array([p["wall_s"] for p in points])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(rows, seconds, "o-", label="clvkit train (wall)")
    if len(rows) > 1:
        slope, intercept = np.polyfit(rows, seconds, 1)
        line = np.linspace(0, rows.max(), 50)
        ax.plot(line, intercept + slope * line, "--", color="grey",
                label=f"least squares: {intercept:.1f} s + {slope:.1f} s per M rows")
    ax.axhline(TARGET_SECONDS, color="red", linestyle=":", label=f"target {TARGET_SECONDS:.0f} s at 10M rows")
    for r, s, p in zip(rows, seconds, points, strict=True):
        ax.annotate(f"{s:.0f} s, {p['tree_peak_gb']:.1f} GB", (r, s), textcoords="offset points", xytext=(5, -12))
    ax.set_xlabel("transactions (millions; ~10 per customer)")
    ax.set_ylabel("seconds")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("clvkit train end to end (2 cores)")
    fig.tight_layout()
    fig.savefig(PLOT_PATH)
    plt.close(fig)


def report(points: list[dict[str, Any]], seed: int) -> str:
    names = [name for name, _ in STAGE_MARKERS]
    lines = [
        "## `clvkit train` end to end (`bench/bench_train.py`)",
        "",
        f"Data: seeded BG/NBD + Gamma-Gamma simulation (`clvkit.data.simulate`, seed {seed}, weeks, "
        f"{SIM_PARAMS['acquisition_days']}-day acquisition, {SIM_PARAMS['observation_days']}-day history, "
        "about 10 transactions per customer), Parquet. Config: default recipe (BG/NBD, XGBoost value and churn "
        f"models, one evaluation origin with a {HOLDOUT_DAYS}-day holdout, served refit on all history), "
        "fresh MLflow sqlite store. `clvkit train --json` runs as a subprocess; peak RSS is the summed "
        f"resident memory of its process tree sampled every {POLL_SECONDS} s; CPU is the user+sys time of the "
        "subprocess tree (on a loaded machine wall time exceeds it). One run per size; stage columns are wall "
        "seconds between the run's own `stage:` log lines.",
        "",
        "| rows | customers | wall | CPU (user+sys) | s per M rows | peak RSS (tree) | largest process | "
        "load 1-min start/end | " + " | ".join(names) + " |",
        "|---:|---:|---:|---:|---:|---:|---:|---|" + "---:|" * len(names),
    ]
    for p in points:
        stages = " | ".join(f"{p['stages'].get(n, float('nan')):.1f} s" for n in names)
        lines.append(
            f"| {p['rows']:,} | {p['customers']:,} | **{p['wall_s']:.1f} s** | {p['cpu_s']:.1f} s | "
            f"{p['wall_s'] / p['rows'] * 1e6:.1f} | "
            f"**{p['tree_peak_gb']:.2f} GB** | {p['largest_process_gb']:.2f} GB | "
            f"{p['load_start']:.2f} / {p['load_end']:.2f} | {stages} |")
    lines += ["", "Peak RSS of the process tree within each stage (GB):", "",
              "| rows | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for p in points:
        lines.append(f"| {p['rows']:,} | " + " | ".join(f"{p['stage_peak_gb'].get(n, float('nan')):.2f}"
                                                     for n in names) + " |")
    lines += ["", "CPU seconds (user + sys of the process tree) within each stage:", "",
              "| rows | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for p in points:
        lines.append(f"| {p['rows']:,} | " + " | ".join(f"{p.get('stage_cpu_s', {}).get(n, float('nan')):.1f}"
                                                     for n in names) + " |")
    big = max(points, key=lambda p: p["rows"])
    verdict = ("met" if big["wall_s"] <= TARGET_SECONDS and big["tree_peak_gb"] <= TARGET_RSS_GB else "NOT met")
    lines += [
        "",
        f"Target at {big['rows']:,} rows: <= {TARGET_SECONDS:.0f} s wall and <= {TARGET_RSS_GB:.0f} GB peak RSS: "
        f"**{verdict}**.",
    ]
    if len(points) > 1:
        small = min(points, key=lambda p: p["rows"])
        ratio = (big["wall_s"] / big["rows"]) / (small["wall_s"] / small["rows"])
        cpu_ratio = (big["cpu_s"] / big["rows"]) / (small["cpu_s"] / small["rows"])
        lines.append(f"Wall time per row at {big['rows']:,} rows is {ratio:.2f}x that at {small['rows']:,} rows, "
                     f"CPU time per row {cpu_ratio:.2f}x (1.0 = linear; below 1: fixed costs such as imports and "
                     "the fresh MLflow store amortised, and bounded boosters). Plot: `bench/train_scaling.png`.")
    lines += ["", "Served-metric sanity check (the simulator's truth is BG/NBD + Gamma-Gamma): " + "; ".join(
        f"{p['rows']:,} rows: served `{p['clv_source']}`, Gini {p['metrics']['clv_gini_norm']:.3f} "
        f"(historical {p['metrics']['baseline_hist_gini_norm']:.3f})" for p in points) + "."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/train_bench"))
    parser.add_argument("--no-write", action="store_true", help="print the figures only; leave RESULTS.md alone")
    parser.add_argument("--child-generate", nargs=3, metavar=("ROWS", "SEED", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_generate:
        n_rows, seed, path = args.child_generate
        child_generate(int(n_rows), int(seed), path)
        return
    points: list[dict[str, Any]] = []
    for n_rows in args.rows:  # in the order given (the largest first when time is short)
        meta = generate(n_rows, args.seed, args.cache)
        work = args.cache / f"run_{n_rows}"
        work.mkdir(parents=True, exist_ok=True)
        config = write_config(meta, work)
        print(f"{meta['rows']:,} rows, {meta['customers']:,} customers: training ...", flush=True)
        point = {**meta, **run_train(config, work)}
        print(json.dumps(point, default=str), flush=True)
        points.append(point)
        points.sort(key=lambda p: p["rows"])
        if not args.no_write:  # after every size, so an interrupted run still leaves its figures
            plot(points)
            write_section("train", report(points, args.seed))


if __name__ == "__main__":
    main()
