"""Benchmark: the pandas engine vs the Spark engine (local mode) on 1M, 10M and 30M rows.

Usage::

    python bench/bench_spark.py --model models:/NAME@champion [--rows 1000000 10000000 30000000]
                                [--engines pandas spark] [--spark-master local[2]] [--driver-memory 6g]
                                [--data-dir /tmp/spark_bench] [--results results.jsonl] [--report-only]

Seeded transactions simulated from BG/NBD + Gamma-Gamma (``clvkit.data.simulate``, CDNOW
parameters, about 2.8 rows per customer, string ids) are written once to one Parquet file per
size (in chunks of at most ``--chunk-rows`` rows, each chunk its own seed and id prefix, so the
generator never holds more than one chunk). Each engine then runs in a fresh process (its peak
memory is its own) and times four stages, as the CLI runs them:

* **validate**: read Parquet, every policy, reconciliation (Spark: quarantine as Parquet; the
  validated rows are persisted for the later stages);

(run in the order validate, fit, features, score: the driver-bound fit comes first on long runs)
* **features**: the customer table of ``clvkit features`` (RFM/tier edges learnt, every
  column of the behavioural catalogue), written as Parquet;
* **fit**: the BTYD summary as of the last day and the BG/NBD + Gamma-Gamma fits (pandas: per
  customer; Spark: on the collapsed distinct rows with counts, built by Spark);
* **score**: what ``clvkit predict`` does after validation, with the registered model
  ``--model``: the customer table with the model's learnt edges, the scorer (pandas: in
  process; Spark: ``mlflow.pyfunc.spark_udf`` on the executors), scores written as Parquet
  (Spark: partitioned by ``value_tier``).

Memory, per stage: the Python driver's peak RSS (``VmHWM``, reset before each stage through
``/proc/self/clear_refs``), the JVM's peak RSS (Spark local mode: the executors live there) and
the peak summed RSS of the Python workers the JVM starts (``applyInPandas``, ``spark_udf``),
sampled every 0.2 s. Each result is appended to ``--results`` (JSON lines), and the ``spark``
section of ``bench/RESULTS.md`` is rendered from that file. Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

#: Simulated rows per customer with the default (CDNOW) parameters, to size the simulations.
ROWS_PER_CUSTOMER = 2.76
#: Largest simulation held in memory at once; bigger files are written chunk by chunk.
DEFAULT_CHUNK_ROWS = 10_000_000
#: Seconds between two samples of the Python workers' memory.
SAMPLE_EVERY_S = 0.2
STAGES = ("validate", "fit", "features", "score")
GIB = 2**30


# --- memory probes ---------------------------------------------------------------------------------

def _status(pid: int | str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _kib_gib(value: str | None) -> float:
    return int(value.split()[0]) * 1024 / GIB if value else 0.0


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            ppid = _status(name).get("PPid")
            if ppid:
                parents.setdefault(int(ppid), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _is_java(pid: int) -> bool:
    try:
        return b"java" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False


def _reset_peak(pid: int | str = "self") -> None:
    """Reset a process's VmHWM to its current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


class WorkerSampler:
    """Peak summed RSS of the JVM's Python workers, sampled in a background thread."""

    def __init__(self, jvm: int | None) -> None:
        self.jvm, self.peak_gib, self._stop = jvm, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            if self.jvm is None:
                continue
            total = sum(_kib_gib(_status(p).get("VmRSS")) for p in _children(self.jvm))
            self.peak_gib = max(self.peak_gib, total)

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(out: dict[str, Any], name: str, fn: Callable[[], Any], jvm: int | None) -> Any:
    """Run ``fn``; record its wall time and the driver's, JVM's and Python workers' peaks."""
    _reset_peak()
    if jvm is not None:
        _reset_peak(jvm)
    with WorkerSampler(jvm) as sampler:
        start = time.perf_counter()
        result = fn()
        out[f"{name}_s"] = time.perf_counter() - start
    out[f"{name}_driver_gib"] = _kib_gib(_status("self").get("VmHWM"))
    if jvm is not None:
        out[f"{name}_jvm_gib"] = _kib_gib(_status(jvm).get("VmHWM"))
        out[f"{name}_workers_gib"] = sampler.peak_gib
    if out.get("progress"):  # each stage's figures as soon as it ends (long runs)
        with open(out["progress"], "a") as fh:
            done = {k: v for k, v in out.items() if k.startswith(name)}
            fh.write(json.dumps(done | {"stage": name, "load_start": out["load_start"],
                                        "load_end": os.getloadavg()[0]}) + "\n")
    return result


# --- data ------------------------------------------------------------------------------------------

def generate(n_rows: int, path: str, seed: int, chunk_rows: int) -> dict[str, Any]:
    """Simulate about ``n_rows`` transactions to one Parquet file, ``chunk_rows`` at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clvkit import schemas
    from clvkit.data.simulate import simulate_transactions

    n_chunks = max(1, -(-n_rows // chunk_rows))
    rows, last, writer = 0, None, None
    for chunk in range(n_chunks):
        customers = int(min(chunk_rows, n_rows - chunk * chunk_rows) / ROWS_PER_CUSTOMER)
        tx = simulate_transactions(customers, seed=seed + chunk).transactions
        if n_chunks > 1:  # customers of different chunks must stay different customers
            tx[schemas.CUSTOMER_ID] = f"c{chunk}-" + tx[schemas.CUSTOMER_ID].astype(str)
        table = pa.Table.from_pandas(tx, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        rows += len(tx)
        last = max(last, tx[schemas.TIMESTAMP].max()) if last is not None else tx[schemas.TIMESTAMP].max()
        del tx, table
    writer.close()
    return {"cutoff": str(last.date()), "rows": rows}


# --- one engine on one file (own process) ------------------------------------------------------------

def _configs(path: str, engine: str, master: str, driver_memory: str) -> Any:
    from clvkit.config.loading import config_from_dict

    return config_from_dict({
        "engine": engine,
        "data": {"source": path, "time_unit": "W", "validation": {"duplicate_rows": "keep"},
                 "quarantine_path": str(Path(path).with_name(f"quarantine_{engine}.csv"))},
        "clv": {"margin": 0.3},
        "spark": {"master": master, "conf": {"spark.driver.memory": driver_memory}},
        "seed": 42,
    })


def worker(engine: str, path: str, cutoff: str, model_uri: str, master: str, driver_memory: str) -> dict[str, Any]:
    """Run one engine on one file; return timings (s), peaks (GiB) and the fitted parameters."""
    import datetime as dt

    from clvkit.models.bgnbd import BetaGeoModel
    from clvkit.models.gamma_gamma import GammaGammaModel
    from clvkit.pipelines.predict import load_scorer

    config = _configs(path, engine, master, driver_memory)
    as_of = dt.date.fromisoformat(cutoff)
    out_dir = Path(path).with_name(f"out_{Path(path).stem}_{engine}")
    out: dict[str, Any] = {"engine": engine, "load_start": os.getloadavg()[0],
                           "progress": str(out_dir.with_suffix(".progress.jsonl"))}
    loaded = load_scorer(model_uri)
    start = time.perf_counter()
    if engine == "pandas":
        from clvkit.features.btyd import summary
        from clvkit.features.builder import FeatureBuilder
        from clvkit.pipelines.features import customer_table, make_builder
        from clvkit.pipelines.ingest import ingest
        from clvkit.pipelines.predict import score_in_batches

        jvm = None
        out_dir.mkdir(exist_ok=True)
        validated = run_stage(out, "validate", lambda: ingest(config.data).validated, jvm)
        transactions = validated.transactions

        def features() -> int:
            builder = make_builder(config).fit(transactions, as_of=as_of)
            table = customer_table(builder, transactions, as_of)
            table.to_parquet(out_dir / "features.parquet")
            return len(table)

        def fit() -> tuple[Any, Any, int]:
            table = summary(transactions, as_of, "W")
            out["fit_customers"] = len(table)
            return BetaGeoModel().fit(table), GammaGammaModel().fit(table), len(table)

        def score() -> int:
            builder = FeatureBuilder.from_dict(loaded[1]["feature_builder"])
            scores = score_in_batches(loaded[0], customer_table(builder, transactions, as_of))
            scores.to_parquet(out_dir / "scores.parquet")
            return len(scores)

        bg, gg, out["fit_rows"] = run_stage(out, "fit", fit, jvm)
        out["customers"] = run_stage(out, "features", features, jvm)
        out["scored"] = run_stage(out, "score", score, jvm)
    else:
        from clvkit.features.spark_engine import COUNT, collapsed_summary, summary_spark
        from clvkit.io.spark import session_from_config, write_spark_table
        from clvkit.pipelines.spark_features import feature_table_spark
        from clvkit.pipelines.spark_ingest import ingest_spark
        from clvkit.pipelines.spark_predict import write_scores_spark

        spark = session_from_config(config.spark)
        spark.sparkContext.setLogLevel("ERROR")
        out["session_s"] = time.perf_counter() - start
        jvms = [p for p in _children(os.getpid()) if _is_java(p)]
        jvm = jvms[0] if jvms else None

        def validate() -> Any:
            validated = ingest_spark(config.data, spark).validated
            validated.transactions.count()  # persisted by validation; materialised here
            return validated

        transactions = run_stage(out, "validate", validate, jvm).transactions

        def features() -> int:
            table, _ = feature_table_spark(spark, transactions, config, as_of)
            written = write_spark_table(table, out_dir / "features")
            return spark.read.parquet(str(written)).count()

        def fit() -> tuple[Any, Any, int]:
            table = summary_spark(transactions, as_of, "W").persist()
            rows = collapsed_summary(table).toPandas()
            spend = collapsed_summary(table, ("frequency", "monetary_value")).toPandas()
            table.unpersist()
            out["fit_customers"] = int(rows[COUNT].sum())
            return (BetaGeoModel().fit(rows, sample_weight=rows[COUNT].to_numpy()),
                    GammaGammaModel().fit(spend, sample_weight=spend[COUNT].to_numpy()), len(rows))

        def score() -> int:
            written = write_scores_spark(spark, transactions, model_uri, loaded, as_of, out_dir / "scores")
            return spark.read.parquet(str(written)).count()

        bg, gg, out["fit_rows"] = run_stage(out, "fit", fit, jvm)
        out["customers"] = run_stage(out, "features", features, jvm)
        out["scored"] = run_stage(out, "score", score, jvm)
    out["total_s"] = time.perf_counter() - start
    out["load_end"] = os.getloadavg()[0]
    out["bgnbd"], out["gamma_gamma"] = bg.params_, gg.params_
    return out


# --- driver --------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 30_000_000])
    parser.add_argument("--engines", nargs="+", default=["pandas", "spark"], choices=["pandas", "spark"])
    parser.add_argument("--model", help="Registered scorer URI (e.g. models:/NAME@champion) for the score stage.")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/spark_bench"))
    parser.add_argument("--results", type=Path, help="JSON lines of results (default: DATA_DIR/results.jsonl).")
    parser.add_argument("--report-only", action="store_true", help="Only render RESULTS.md from --results.")
    parser.add_argument("--note", default="", help="A sentence on the conditions, printed under the table.")
    parser.add_argument("--extra", default="", help="A paragraph appended under the tables (--report-only).")
    parser.add_argument("--no-write", action="store_true", help="Print the section instead of writing it.")
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "PATH", "CUTOFF"))
    parser.add_argument("--generate", nargs=2, metavar=("ROWS", "PATH"))
    args = parser.parse_args()
    if args.generate:
        print(json.dumps(generate(int(args.generate[0]), args.generate[1], args.seed, args.chunk_rows)))
        return
    if args.worker:
        print(json.dumps(worker(*args.worker, args.model, args.spark_master, args.driver_memory), default=float))
        return
    results_path = args.results or args.data_dir / "results.jsonl"
    if not args.report_only:
        if not args.model:
            parser.error("--model is required to run (the score stage scores with it)")
        args.data_dir.mkdir(parents=True, exist_ok=True)
        for n_rows in args.rows:
            run_size(n_rows, args, results_path)
    results = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
    if args.report_only:
        results += partial_results(args.data_dir, results, args.note)
    section = render(results, args)
    if args.no_write:
        print(section)
    else:
        write_section("spark", section)


def run_size(n_rows: int, args: argparse.Namespace, results_path: Path) -> None:
    """Generate (once) the file of ``n_rows`` rows and run each engine on it."""
    path = args.data_dir / f"tx_{n_rows}.parquet"
    facts_path = path.with_suffix(".json")
    if not facts_path.exists():
        made = subprocess.run([sys.executable, __file__, "--generate", str(n_rows), str(path), "--seed",
                               str(args.seed), "--chunk-rows", str(args.chunk_rows)],
                              capture_output=True, text=True, check=True)
        facts_path.write_text(made.stdout.strip().splitlines()[-1])
    facts = json.loads(facts_path.read_text())
    for engine in args.engines:
        cmd = [sys.executable, __file__, "--worker", engine, str(path), facts["cutoff"], "--model", args.model,
               "--spark-master", args.spark_master, "--driver-memory", args.driver_memory]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-5000:], file=sys.stderr)
            raise SystemExit(f"{engine} on {n_rows:,} rows failed")
        result = json.loads(done.stdout.strip().splitlines()[-1]) | {"rows": facts["rows"], "target": n_rows,
                                                                       "note": args.note}
        print(json.dumps(result), flush=True)
        with results_path.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


def partial_results(data_dir: Path, results: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """Rows for runs that were stopped before their end, from their per-stage progress files."""
    done = {(r["engine"], r["target"]) for r in results}
    out = []
    for progress in sorted(data_dir.glob("out_tx_*_*.progress.jsonl")):
        _, _, target, engine = progress.name.split(".")[0].split("_")
        if (engine, int(target)) in done:
            continue
        row: dict[str, Any] = {"engine": engine, "target": int(target), "partial": True, "note": note}
        for line in progress.read_text().splitlines():
            row.update({k: v for k, v in json.loads(line).items() if k != "stage"})
        facts = data_dir / f"tx_{target}.json"
        row["rows"] = json.loads(facts.read_text())["rows"] if facts.exists() else int(target)
        out.append(row)
    return out


def _peak(r: dict[str, Any], kind: str) -> float:
    return max((r.get(f"{s}_{kind}_gib") or 0.0 for s in STAGES), default=0.0)


def _seconds(r: dict[str, Any], stage: str) -> str:
    return f"{r[f'{stage}_s']:.1f}" if f"{stage}_s" in r else "not finished"


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The ``spark`` section: one row per (size, engine), then growth relative to the smallest size."""
    latest = {(r["engine"], r["target"]): r for r in results}  # a re-run replaces the earlier row
    rows = sorted(latest.values(), key=lambda r: (r["target"], r["engine"]))
    lines = [
        "## Spark engine vs pandas engine (`bench/bench_spark.py`)",
        "",
        f"Transactions simulated from BG/NBD + Gamma-Gamma (`clvkit.data.simulate`, CDNOW parameters, "
        f"seed {args.seed}, string ids) in one Parquet file per size; each engine in a fresh process; Spark "
        f"`{args.spark_master}` with `spark.driver.memory` {args.driver_memory}. Stages, run in the order "
        "validate, fit, features, score: **validate** = read + every policy + reconciliation (+ quarantine); "
        "**fit** = BTYD summary + BG/NBD + Gamma-Gamma (pandas per customer, Spark on the collapsed distinct "
        "rows with counts); **features** = the customer table of `clvkit features` (edges learnt from every "
        "customer, full behavioural catalogue) written as Parquet; **score** = what `clvkit predict` does after "
        "validation with one registered model (customer table with the model's edges, the scorer, Parquet "
        "out; Spark: `mlflow.pyfunc.spark_udf`, partitioned by `value_tier`).",
        "",
        "Memory: *driver* = peak RSS of the Python process (VmHWM, reset before each stage); *JVM* = the Spark "
        "JVM's peak RSS (in local mode the executors live there); *workers* = peak summed RSS of the Python "
        "workers the JVM starts (`applyInPandas`, `spark_udf`), sampled every 0.2 s.",
        "",
        "| rows | engine | customers | validate s | fit s (rows fitted) | features s | score s | total s "
        "| driver peak GiB: validate / fit / features / score | JVM peak GiB | workers peak GiB | load avg start→end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = ("validate", "fit", "features", "score")
    for r in rows:
        spark = r["engine"] == "spark"
        driver = " / ".join(f"{r[f'{s}_driver_gib']:.2f}" if f"{s}_driver_gib" in r else "–" for s in order)
        customers = r.get("customers") or r.get("fit_customers")
        customers = f"{customers:,}" if customers else "–"
        fitted = f" ({r['fit_rows']:,})" if "fit_rows" in r else ""
        total = f"{r['total_s']:.1f}" if "total_s" in r else "> " + f"{sum(r.get(f'{s}_s', 0.0) for s in order):.0f}"
        load = (f"{r['load_start']:.1f}→{r['load_end']:.1f}" if "load_start" in r and "load_end" in r
                else "see the note")
        extra = (f"| {_peak(r, 'jvm'):.2f} | {_peak(r, 'workers'):.2f} " if spark else "| – | – ")
        lines.append(
            f"| {r['rows']:,} | {r['engine']} | {customers} | {_seconds(r, 'validate')} | {_seconds(r, 'fit')}{fitted} "
            f"| {_seconds(r, 'features')} | {_seconds(r, 'score')} | {total} | {driver} {extra}| {load} |")
    lines += ["", "Growth relative to the smallest size (same engine): time per stage and the driver peak "
              "(the largest over the stages both runs finished).", "",
              "| engine | rows | × rows | validate | fit | features | score | driver peak |",
              "|---|---|---|---|---|---|---|---|"]
    for engine in ("pandas", "spark"):
        sizes = sorted(t for e, t in latest if e == engine)
        if len(sizes) < 2:
            continue
        base = latest[(engine, sizes[0])]
        for size in sizes[1:]:
            r = latest[(engine, size)]
            both = [s for s in order if f"{s}_s" in r and f"{s}_s" in base]
            times = " | ".join(f"{r[f'{s}_s'] / base[f'{s}_s']:.1f}x" if s in both else "–" for s in order)
            peak = max(r[f"{s}_driver_gib"] for s in both) / max(base[f"{s}_driver_gib"] for s in both)
            lines.append(f"| {engine} | {r['rows']:,} | {r['rows'] / base['rows']:.0f}x | {times} | {peak:.2f}x |")
    notes = sorted({r["note"] for r in rows if r.get("note")})
    lines += ["", *notes, *([""] + [args.extra] if getattr(args, "extra", "") else [])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
