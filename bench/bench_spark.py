"""Benchmark: the pandas engine vs the Spark engine (local mode) on 1M, 10M (and 30M) rows.

Usage::

    python bench/bench_spark.py [--rows 1_000_000 10_000_000] [--spark-master local[2]]
                                [--driver-memory 6g]

Seeded transactions simulated from BG/NBD + Gamma-Gamma (``clvkit.data.simulate``, CDNOW
parameters, about 2.8 rows per customer, string ids) are written once to Parquet; then each
engine runs in a fresh process (so that its peak RSS is its own) and times

* validation (read Parquet, every policy, reconciliation; Spark: quarantine written as Parquet),
* the BTYD summary as of the last day,
* the BG/NBD + Gamma-Gamma fits (pandas: per customer; Spark: on the collapsed distinct rows
  with counts, built by Spark).

Peak RSS is that of the Python driver process (``ru_maxrss``); in Spark local mode the
executors live in the JVM, a separate process, whose peak is reported beside it.
Writes the ``spark`` section of ``bench/RESULTS.md``. Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_description, write_section

#: Simulated rows per customer with the default (CDNOW) parameters, to size the simulations.
ROWS_PER_CUSTOMER = 2.76


def _rss_gib() -> float:
    """Peak RSS of this process (VmHWM): unlike ru_maxrss it does not inherit the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def generate(n_rows: int, path: str, seed: int) -> dict[str, Any]:
    """Simulate about ``n_rows`` transactions to Parquet (in its own process: the parent stays small)."""
    from clvkit.data.simulate import simulate_transactions

    tx = simulate_transactions(int(n_rows / ROWS_PER_CUSTOMER), seed=seed).transactions
    tx.to_parquet(path, index=False)
    return {"cutoff": str(tx["timestamp"].max().date()), "rows": len(tx)}


def _jvm_peak_gib() -> float | None:
    """Peak RSS (VmHWM) of this process's Java children, in GiB (None when none)."""
    import os

    peak = None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"java" not in cmd or f"PPid:\t{os.getpid()}\n" not in status:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                value = int(line.split()[1]) / 2**20
                peak = value if peak is None else max(peak, value)
    return peak


def worker(engine: str, path: str, cutoff: str, master: str, driver_memory: str) -> dict[str, Any]:
    """Run one engine on one file; return timings (s) and peaks (GiB)."""
    from clvkit.config.models import ColumnMapping, DataConfig, ValidationPolicies
    from clvkit.models.bgnbd import BetaGeoModel
    from clvkit.models.gamma_gamma import GammaGammaModel

    out: dict[str, Any] = {"engine": engine}
    quarantine = str(Path(path).with_name(f"quarantine_{engine}.csv"))
    data = DataConfig(source=path, columns=ColumnMapping(), time_unit="W",
                      validation=ValidationPolicies(duplicate_rows="keep"), quarantine_path=quarantine)
    start = time.perf_counter()
    if engine == "pandas":
        from clvkit.features.btyd import summary
        from clvkit.pipelines.ingest import ingest

        validated = ingest(data).validated
        out["validate_s"] = time.perf_counter() - start
        out["rows_used"] = validated.report.rows_used
        t = time.perf_counter()
        table = summary(validated.transactions, cutoff, "W")
        out["summary_s"] = time.perf_counter() - t
        out["customers"] = len(table)
        t = time.perf_counter()
        bg = BetaGeoModel().fit(table)
        gg = GammaGammaModel().fit(table)
        out["fit_s"] = time.perf_counter() - t
        out["fit_rows"] = len(table)
    else:
        from clvkit.features.spark_engine import COUNT, collapsed_summary, summary_spark
        from clvkit.io.spark import spark_session
        from clvkit.pipelines.spark_ingest import ingest_spark

        spark = spark_session(master, {"spark.driver.memory": driver_memory})
        spark.sparkContext.setLogLevel("ERROR")
        out["session_s"] = time.perf_counter() - start
        t = time.perf_counter()
        validated = ingest_spark(data, spark).validated
        out["validate_s"] = time.perf_counter() - t
        out["rows_used"] = validated.report.rows_used
        t = time.perf_counter()
        table = summary_spark(validated.transactions, cutoff, "W").persist()
        out["customers"] = table.count()
        out["summary_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rows = collapsed_summary(table).toPandas()
        spend = collapsed_summary(table, ("frequency", "monetary_value")).toPandas()
        bg = BetaGeoModel().fit(rows, sample_weight=rows[COUNT].to_numpy())
        gg = GammaGammaModel().fit(spend, sample_weight=spend[COUNT].to_numpy())
        out["fit_s"] = time.perf_counter() - t
        out["fit_rows"] = len(rows)
        out["jvm_peak_gib"] = _jvm_peak_gib()
    out["total_s"] = time.perf_counter() - start
    out["bgnbd"] = bg.params_
    out["gamma_gamma"] = gg.params_
    out["driver_peak_gib"] = _rss_gib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "PATH", "CUTOFF"))
    parser.add_argument("--generate", nargs=2, metavar=("ROWS", "PATH"))
    parser.add_argument("--no-write", action="store_true", help="Print the section instead of writing it.")
    parser.add_argument("--engines", nargs="+", default=["pandas", "spark"], choices=["pandas", "spark"])
    parser.add_argument("--previous", type=Path, help="JSON lines of earlier results to include in the table.")
    args = parser.parse_args()
    if args.generate:
        print(json.dumps(generate(int(args.generate[0]), args.generate[1], args.seed)))
        return
    if args.worker:
        print(json.dumps(worker(*args.worker, args.spark_master, args.driver_memory), default=float))
        return
    results = [json.loads(line) for line in args.previous.read_text().splitlines() if line.strip()] \
        if args.previous else []
    with tempfile.TemporaryDirectory(prefix="clvkit-bench-spark-") as tmp:
        for n_rows in args.rows:
            path = Path(tmp) / f"tx_{n_rows}.parquet"
            made = subprocess.run([sys.executable, __file__, "--generate", str(n_rows), str(path),
                                   "--seed", str(args.seed)], capture_output=True, text=True, check=True)
            facts = json.loads(made.stdout.strip().splitlines()[-1])
            cutoff, n_actual = facts["cutoff"], facts["rows"]
            for engine in args.engines:
                cmd = [sys.executable, __file__, "--worker", engine, str(path), cutoff,
                       "--spark-master", args.spark_master, "--driver-memory", args.driver_memory]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{engine} on {n_rows:,} rows failed")
                result = json.loads(done.stdout.strip().splitlines()[-1]) | {"rows": n_actual, "target": n_rows}
                print(json.dumps(result), flush=True)
                results.append(result)
    section = render(results, args)
    if args.no_write:
        print(section)
    else:
        write_section("spark", section)


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "## Spark engine vs pandas engine (`bench/bench_spark.py`)",
        "",
        f"Transactions simulated from BG/NBD + Gamma-Gamma (`clvkit.data.simulate`, CDNOW parameters, "
        f"seed {args.seed}, string ids) in one Parquet file; "
        f"each engine in a fresh process; Spark `{args.spark_master}` with `spark.driver.memory` "
        f"{args.driver_memory}. Validation = read + every policy + reconciliation (+ quarantine); "
        "summary as of the last day; fit = BG/NBD + Gamma-Gamma (pandas per customer, Spark on the "
        "collapsed distinct rows with counts). Driver peak = the Python process's peak RSS; the JVM "
        "(executors in local mode) is a separate process.",
        "",
        "| rows | engine | customers | validate s | summary s | fit s (rows fitted) | total s | Python driver peak GiB | JVM peak GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        jvm = f"{r['jvm_peak_gib']:.2f}" if r.get("jvm_peak_gib") else ""
        lines.append(
            f"| {r['rows']:,} | {r['engine']} | {r['customers']:,} | {r['validate_s']:.1f} | {r['summary_s']:.1f} | "
            f"{r['fit_s']:.1f} ({r['fit_rows']:,}) | {r['total_s']:.1f} | {r['driver_peak_gib']:.2f} | {jvm} |")
    by = {(r["engine"], r["target"]): r for r in results}
    sizes = sorted({r["target"] for r in results})
    small, large = sizes[0], sizes[-1]
    if ("spark", small) in by and ("spark", large) in by and large > small:
        ratio = by[("spark", large)]["driver_peak_gib"] / by[("spark", small)]["driver_peak_gib"]
        lines += ["", f"Spark engine: Python driver peak at {large:,} rows = {ratio:.2f}x the peak at {small:,} rows "
                  f"(time {by[('spark', large)]['total_s'] / by[('spark', small)]['total_s']:.1f}x for "
                  f"{large / small:.0f}x the rows)."]
    if ("pandas", small) in by and ("pandas", large) in by and large > small:
        ratio = by[("pandas", large)]["driver_peak_gib"] / by[("pandas", small)]["driver_peak_gib"]
        lines.append(f"pandas engine: peak at {large:,} rows = {ratio:.2f}x the peak at {small:,} rows.")
    lines += ["", f"Measured on {machine_description()}, shared with other jobs (load average 7-19 on 2 cores "
              "while measured): the Spark timings in particular are pessimistic."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
