"""Benchmark of the BTYD summary: clvkit vs lifetimes vs DuckDB, same process and data.

Usage::

    python bench/bench_summary.py [--rows 10_000_000] [--customers 1_000_000] [--seed 42]
                                  [--repeat 2] [--no-lifetimes]

The seeded transactions of ``bench_features.make_transactions`` (string ids as pandas 3
``str``, shuffled rows, 2 % returns) are summarised as of 2023-12-31 in days
(``frequency, recency, T, monetary_value``) with three id forms:

* string ids;
* the same ids as a pandas ``category`` (ids factorised once upstream, e.g. at ingestion:
  clvkit then reuses the codes instead of hashing the strings on every summary);
* dense int64 ids;
* from the file: the string-id transactions (amounts made non-negative, so that every row
  passes validation and both engines summarise the same rows) written once to Parquet, then
  clvkit reads, maps, validates and reconciles them (``clvkit.pipelines.ingest.ingest``, which
  factorises the ids into a ``category``) and summarises, vs DuckDB's same SQL on
  ``read_parquet`` of the file. This is the fair comparison when ids are factorised at ingestion.

Each form is timed with ``clvkit.features.btyd.summary`` (best of ``--repeat``), lifetimes'
``summary_data_from_transaction_data`` (one run) and DuckDB (one SQL query on the same
pandas frame, result fetched as a pandas frame sorted by id; best of ``--repeat``; DuckDB
uses all cores). Results are checked for parity: frequency/recency/T exactly equal,
monetary_value within 1e-12 relative. Writes the ``summary`` section of ``bench/RESULTS.md``.
DuckDB comes with the ``bench`` extra (``pip install -e '.[bench]'``). Not a pytest test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import peak_rss_gib, timed, write_section
from bench_features import OBSERVATION_END, lifetimes_summary, make_transactions
from clvkit.features.btyd import summary

COLUMNS = ("frequency", "recency", "T", "monetary_value")

DUCKDB_SQL = f"""
WITH days AS (
    SELECT customer_id, CAST("timestamp" AS DATE) AS day, SUM(amount) AS spend
    FROM tx WHERE CAST("timestamp" AS DATE) <= DATE '{OBSERVATION_END}'
    GROUP BY customer_id, day
), customers AS (
    SELECT customer_id, COUNT(*) - 1 AS n_repeat, MIN(day) AS first_day, MAX(day) AS last_day,
           SUM(spend) AS total, arg_min(spend, day) AS first_spend
    FROM days GROUP BY customer_id
)
SELECT customer_id,
       CAST(n_repeat AS DOUBLE) AS frequency,
       CAST(datediff('day', first_day, last_day) AS DOUBLE) AS recency,
       CAST(datediff('day', first_day, DATE '{OBSERVATION_END}') AS DOUBLE) AS "T",
       CASE WHEN n_repeat > 0 THEN (total - first_spend) / n_repeat ELSE 0.0 END AS monetary_value
FROM customers ORDER BY customer_id
"""


def duckdb_file_summary(con: Any, path: Path) -> pd.DataFrame:
    """The same SQL on the Parquet file (DuckDB reads it itself)."""
    sql = DUCKDB_SQL.replace("FROM tx WHERE", f"FROM read_parquet('{path}') WHERE")
    return con.execute(sql).df().set_index("customer_id")


def clvkit_file_summary(path: Path) -> pd.DataFrame:
    """Read + map + validate + reconcile (ids factorised once) + summary, as the pipelines do."""
    from clvkit.config.models import DataConfig, ValidationPolicies
    from clvkit.pipelines.ingest import ingest

    data = DataConfig(source=str(path), time_unit="D",
                      validation=ValidationPolicies(duplicate_rows="keep"))  # every check runs
    transactions = ingest(data, write_quarantine=False).validated.transactions
    return summary(transactions, OBSERVATION_END, "D")


def run_file_form(tx: pd.DataFrame, repeat: int, con: Any) -> dict[str, Any]:
    """The string-id transactions, non-negative amounts, from a Parquet file."""
    label = "string ids, from the Parquet file (read + ingest + summary)"
    with tempfile.TemporaryDirectory(prefix="bench-summary-") as tmp:
        path = Path(tmp) / "transactions.parquet"
        tx.assign(amount=tx["amount"].abs()).to_parquet(path, index=False)
        row, _ = time_against_duckdb(label, lambda: clvkit_file_summary(path),
                                     None if con is None else lambda: duckdb_file_summary(con, path), repeat)
    return row


def time_against_duckdb(label: str, ours_fn: Callable[[], pd.DataFrame],
                        duckdb_fn: Callable[[], pd.DataFrame] | None, repeat: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """Time clvkit's summary and (when DuckDB is installed) DuckDB's on the same input; the row and our result."""
    ours_s, ours = timed(ours_fn, repeat=repeat)
    print(f"{label}: clvkit {ours_s:.2f} s", flush=True)
    row: dict[str, Any] = {"form": label, "clvkit": ours_s, "customers": len(ours)}
    if duckdb_fn is not None:
        row["duckdb"], ref = timed(duckdb_fn, repeat=repeat)
        row["duckdb_parity"] = parity(ours, ref)
        print(f"{label}: duckdb {row['duckdb']:.2f} s ({row['duckdb_parity']})", flush=True)
    return row, ours


def duckdb_summary(con: Any, tx: pd.DataFrame) -> pd.DataFrame:
    """The same summary in DuckDB SQL on the pandas frame (scanned in place)."""
    con.register("tx", tx)
    try:
        return con.execute(DUCKDB_SQL).df().set_index("customer_id")
    finally:
        con.unregister("tx")


def parity(ours: pd.DataFrame, ref: pd.DataFrame) -> str:
    """'exact' (frequency/recency/T equal, monetary_value within 1e-12) or what differs."""
    ref = ref.sort_index()
    if not np.array_equal(np.asarray(ours.index.astype(str)), np.asarray(ref.index.astype(str))):
        return "DIFFERENT customers"
    exact = all(np.array_equal(ours[c].to_numpy(), ref[c].to_numpy(dtype=np.float64)) for c in COLUMNS[:3])
    close = np.allclose(ours["monetary_value"], ref["monetary_value"].to_numpy(dtype=np.float64),
                        rtol=1e-12, atol=1e-9)
    return "exact" if exact and close else "MISMATCH"


def run_form(tx: pd.DataFrame, label: str, repeat: int, con: Any, with_lifetimes: bool) -> dict[str, Any]:
    row, ours = time_against_duckdb(label, lambda: summary(tx, OBSERVATION_END, "D"),
                                    None if con is None else lambda: duckdb_summary(con, tx), repeat)
    if with_lifetimes and label != "categorical ids":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row["lifetimes"], ref = timed(lambda: lifetimes_summary(tx))
        row["lifetimes_parity"] = parity(ours, ref)
        print(f"{label}: lifetimes {row['lifetimes']:.2f} s ({row['lifetimes_parity']})", flush=True)
    return row


def _cell(row: dict[str, Any], key: str) -> str:
    if key not in row:
        return "n/a"
    parity_note = "" if row.get(f"{key}_parity", "exact") == "exact" else f" ({row[f'{key}_parity']})"
    return f"{row[key]:.2f} s{parity_note}"


def _ratio(row: dict[str, Any], key: str) -> str:
    return f"{row[key] / row['clvkit']:.1f}x" if key in row else "n/a"


def report(rows: list[dict[str, Any]], args: argparse.Namespace, gen_s: float, load: str,
           duckdb_version: str) -> str:
    lines = [
        f"## BTYD summary on {args.rows:,} rows (`bench/bench_summary.py`)",
        "",
        f"Data: {args.rows:,} transactions of {rows[0]['customers']:,} customers (seed {args.seed}, "
        f"shuffled rows, `datetime64[us]`, 2 % returns; generated in {gen_s:.1f} s); summary as of "
        f"{OBSERVATION_END} in days. Same process, same frame for every implementation. clvkit and "
        f"DuckDB {duckdb_version}: best of {args.repeat}; lifetimes 0.11.3: one run. DuckDB reads the "
        "categorical column as an ENUM; its result is fetched into a pandas frame sorted by id (included in its time). "
        "The last row starts from a Parquet file of the string-id rows with non-negative amounts (every row valid): "
        "clvkit reads, validates and reconciles it (`ingest`, ids factorised once into a category, exact-duplicate "
        "check included) and summarises; DuckDB runs the same SQL on `read_parquet` of the file.",
        "",
        "| ids | clvkit `btyd.summary` | DuckDB SQL | lifetimes | DuckDB / clvkit | lifetimes / clvkit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['form']} | {row['clvkit']:.2f} s | {_cell(row, 'duckdb')} | {_cell(row, 'lifetimes')} "
            f"| {_ratio(row, 'duckdb')} | {_ratio(row, 'lifetimes')} |"
        )
    lines += [
        "",
        "A ratio above 1x means clvkit is faster. Parity: every result above matches clvkit's "
        "(frequency/recency/T exactly, monetary_value within 1e-12) unless marked.",
        f"**Timings under load**: the 2-core machine was shared with other running jobs during "
        f"this run (load average {load} at the start), so absolute times are inflated and noisy; "
        "ratios from the same process are the figures to compare. "
        f"Process peak RSS {peak_rss_gib():.1f} GiB.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    load = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    try:
        import duckdb

        con, duckdb_version = duckdb.connect(), duckdb.__version__
    except ImportError:
        print("duckdb not installed (pip install -e '.[bench]'): skipped", flush=True)
        con, duckdb_version = None, "(not installed)"
    start = time.perf_counter()
    tx = make_transactions(args.rows, args.customers, args.seed).drop(columns="quantity")
    gen_s = time.perf_counter() - start
    forms = {
        "string ids": tx,
        "categorical ids": tx.assign(customer_id=tx["customer_id"].astype("category")),
        "dense int64 ids": tx.assign(customer_id=tx["customer_id"].str[1:].astype(np.int64)),
    }
    rows = [run_form(frame, label, args.repeat, con, not args.no_lifetimes) for label, frame in forms.items()]
    rows.append(run_file_form(tx, args.repeat, con))
    text = report(rows, args, gen_s, load, duckdb_version)
    print(text)
    if not args.no_write:
        write_section("summary", text)


if __name__ == "__main__":
    main()
