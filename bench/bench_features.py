"""Benchmark of clvkit.features: BTYD summary, calibration/holdout split, FeatureBuilder.

Usage::

    python bench/bench_features.py [--rows 10_000_000] [--customers 1_000_000]
                                   [--split-rows 1_000_000] [--seed 42]

Seeded synthetic transactions (string ids as pandas 3 reads them, shuffled rows, several
rows per customer, 2 % returns) are timed with

* ``btyd.summary`` vs lifetimes' ``summary_data_from_transaction_data`` (same process, same
  data, ``freq="D"``), and vs a floor: factorise the ids, day numbers, one ``np.argsort``;
* ``btyd.calibration_holdout`` vs lifetimes' ``calibration_and_holdout_data`` on
  ``--split-rows`` rows (lifetimes runs on pandas 3 when given a monetary column);
* ``FeatureBuilder.fit_transform`` in a fresh subprocess that reads the data from Parquet,
  so that its peak RSS is not polluted by lifetimes;
* ``clvkit features`` end to end on the same Parquet file (a fresh process: imports, read,
  mapping, validation with the default policies incl. netting returns and the quarantine CSV,
  ids factorised once, the builder, the Parquet table and its metadata written): wall time and
  peak RSS.

Writes the ``features`` section of ``bench/RESULTS.md``. Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import peak_rss_gib, timed, write_section
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.features import FeatureBuilder
from clvkit.features.btyd import calibration_holdout, summary

START = np.datetime64("2022-01-01", "s")
ACQUISITION_DAYS = 365
HISTORY_DAYS = 730
SECONDS_PER_DAY = 86_400
RETURN_SHARE = 0.02
OBSERVATION_END = "2023-12-31"
CALIBRATION_END = "2023-06-30"
TARGETS = {"lifetimes": 8.0, "floor": 1.5, "split": 10.0, "builder_s": 10.0, "rss_gb": 3.0, "cli_s": 10.0}


def make_transactions(n_rows: int, n_customers: int, seed: int) -> pd.DataFrame:
    """Seeded transactions: every customer buys once at birth, other rows uniform after it."""
    rng = np.random.default_rng(seed)
    owners = np.concatenate([np.arange(n_customers), rng.integers(0, n_customers, n_rows - n_customers)])
    birth_days = rng.uniform(0, ACQUISITION_DAYS, n_customers)
    offset_days = rng.uniform(0, 1, n_rows) * (HISTORY_DAYS - birth_days[owners])
    offset_days[:n_customers] = 0.0
    seconds = ((birth_days[owners] + offset_days) * SECONDS_PER_DAY).astype(np.int64)
    amount = np.round(rng.gamma(2.0, 15.0, n_rows), 2)
    amount[rng.random(n_rows) < RETURN_SHARE] *= -1
    order = rng.permutation(n_rows)
    ids = np.array([f"C{i:07d}" for i in range(n_customers)], dtype=object)
    return pd.DataFrame({
        "customer_id": pd.Series(ids[owners[order]], dtype="str"),
        "timestamp": (START + seconds[order]).astype("datetime64[us]"),
        "amount": amount[order],
        "quantity": rng.integers(1, 6, n_rows)[order].astype(np.float64),
    })


def floor(tx: pd.DataFrame) -> np.ndarray:
    """Lower bound of any summary: integer ids, day numbers, amounts, one argsort."""
    codes, _ = pd.factorize(tx["customer_id"])
    days = tx["timestamp"].to_numpy().astype("datetime64[D]").astype(np.int64)
    tx["amount"].to_numpy()
    return np.argsort(codes.astype(np.int64) * (int(days.max() - days.min()) + 1) + (days - days.min()))


def lifetimes_summary(tx: pd.DataFrame) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    return summary_data_from_transaction_data(
        tx, "customer_id", "timestamp", monetary_value_col="amount",
        observation_period_end=OBSERVATION_END, freq="D", freq_multiplier=DAYS_PER_TIME_UNIT["D"],
    )


def lifetimes_split(tx: pd.DataFrame) -> pd.DataFrame:
    """lifetimes' split. It compares its end dates with the raw timestamps (midnight), so the
    last microsecond of each day is passed: whole days, as in clvkit's time design."""
    from lifetimes.utils import calibration_and_holdout_data

    def end_of(day: str) -> pd.Timestamp:
        return pd.Timestamp(day) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)

    return calibration_and_holdout_data(
        tx, "customer_id", "timestamp", end_of(CALIBRATION_END), end_of(OBSERVATION_END),
        freq="D", freq_multiplier=DAYS_PER_TIME_UNIT["D"], monetary_value_col="amount",
    )


def check_parity(ours: pd.DataFrame, ref: pd.DataFrame) -> str:
    """'exact' / 'monetary to 1e-12' or what differs."""
    ref = ref.sort_index()
    if not ours.index.equals(ref.index):
        return "DIFFERENT customers"
    exact = all(np.array_equal(ours[c].to_numpy(), ref[c].to_numpy()) for c in ("frequency", "recency", "T"))
    close = np.allclose(ours["monetary_value"], ref["monetary_value"], rtol=1e-12, atol=1e-9)
    return "frequency/recency/T exact, monetary_value within 1e-12" if exact and close else "MISMATCH"


def bench_summary(tx: pd.DataFrame, label: str) -> dict[str, Any]:
    floor_s, _ = timed(lambda: floor(tx), repeat=3)
    ours_s, ours = timed(lambda: summary(tx, OBSERVATION_END, "D"), repeat=3)
    print(f"summary ({label}): ours {ours_s:.2f} s, floor {floor_s:.2f} s", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt_s, ref = timed(lambda: lifetimes_summary(tx))
    print(f"summary ({label}): lifetimes {lt_s:.2f} s", flush=True)
    return {"ours": ours_s, "floor": floor_s, "lifetimes": lt_s, "parity": check_parity(ours, ref),
            "customers": len(ours)}


def bench_split(n_rows: int, seed: int) -> dict[str, Any]:
    tx = make_transactions(n_rows, max(n_rows // 10, 1), seed + 1)
    ours_s, ours = timed(lambda: calibration_holdout(tx, CALIBRATION_END, OBSERVATION_END, "D"), repeat=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt_s, ref = timed(lambda: lifetimes_split(tx))
    ref = ref.sort_index()
    same = ours.table.index.equals(ref.index) and all(
        np.array_equal(ours.table[c].to_numpy(), ref[c].to_numpy())
        for c in ("frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout")
    )
    print(f"split: ours {ours_s:.2f} s, lifetimes {lt_s:.2f} s", flush=True)
    return {"ours": ours_s, "lifetimes": lt_s, "rows": n_rows, "frequency_holdout_equal": same}


def bench_builder(tx: pd.DataFrame) -> dict[str, Any]:
    """FeatureBuilder.fit_transform in a fresh process reading the data from Parquet."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.parquet"
        tx.to_parquet(path, index=False)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-builder", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"builder: {result}", flush=True)
        result["cli"] = bench_cli(path, Path(tmp))
    return result


def bench_cli(path: Path, tmp: Path) -> dict[str, Any]:
    """``clvkit features`` on the Parquet file in a fresh process: wall seconds and its peak RSS."""
    config = tmp / "config.yaml"
    config.write_text(
        f"data:\n  source: {path}\n  quarantine_path: {tmp / 'quarantine.csv'}\n"
        "  columns: {customer_id: customer_id, timestamp: timestamp, amount: amount}\n",
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "clvkit", "features", "-c", str(config), "-o", str(tmp / "features.parquet")]
    out, err = tmp / "cli.out", tmp / "cli.err"
    with out.open("w") as out_handle, err.open("w") as err_handle:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out_handle, stderr=err_handle)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"clvkit features failed:\n{err.read_text()[-2000:]}")
    said = out.read_text().strip().splitlines()[0]
    result = {"seconds": seconds, "peak_rss_gib": usage.ru_maxrss / 2**20, "said": said}
    print(f"clvkit features: {result}", flush=True)
    return result


def _vm_hwm_gib() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child_builder(path: str) -> None:
    """Run in the subprocess: read, fit_transform, report seconds and peak memory as JSON."""
    tx = pd.read_parquet(path)
    after_load = peak_rss_gib()
    reset = _reset_peak_rss()
    start = time.perf_counter()
    table = FeatureBuilder().fit_transform(tx)
    seconds = time.perf_counter() - start
    during = _vm_hwm_gib() if reset else None
    print(json.dumps({
        "seconds": seconds, "rows": len(tx), "customers": len(table), "columns": table.shape[1],
        "peak_rss_gib_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_rss_gib_after_load": after_load, "peak_rss_gib_during_fit_transform": during,
        "input_gib": float(tx.memory_usage(deep=True).sum()) / 2**30,
    }))


def report(args: argparse.Namespace, s: dict[str, Any], s_int: dict[str, Any], split: dict[str, Any],
           b: dict[str, Any], gen_s: float) -> str:
    gb = 2**30 / 1e9
    rss = b["peak_rss_gib_process"] * gb
    during = b["peak_rss_gib_during_fit_transform"]
    rows = [
        ("`btyd.summary` vs lifetimes `summary_data_from_transaction_data`", f"{args.rows:,}",
         f"{s['ours']:.2f} s", f"{s['lifetimes']:.1f} s", f"{s['lifetimes'] / s['ours']:.1f}x faster",
         f">= {TARGETS['lifetimes']:.0f}x"),
        ("`btyd.summary` vs floor (factorize ids + day numbers + one argsort)", f"{args.rows:,}",
         f"{s['ours']:.2f} s", f"{s['floor']:.2f} s", f"{s['ours'] / s['floor']:.2f}x the floor",
         f"<= {TARGETS['floor']}x"),
        ("same, integer ids: vs lifetimes", f"{args.rows:,}", f"{s_int['ours']:.2f} s",
         f"{s_int['lifetimes']:.1f} s", f"{s_int['lifetimes'] / s_int['ours']:.1f}x faster",
         f">= {TARGETS['lifetimes']:.0f}x"),
        ("same, integer ids: vs floor", f"{args.rows:,}", f"{s_int['ours']:.2f} s",
         f"{s_int['floor']:.2f} s", f"{s_int['ours'] / s_int['floor']:.2f}x the floor",
         f"<= {TARGETS['floor']}x"),
        ("`btyd.calibration_holdout` vs lifetimes `calibration_and_holdout_data`", f"{split['rows']:,}",
         f"{split['ours']:.2f} s", f"{split['lifetimes']:.1f} s",
         f"{split['lifetimes'] / split['ours']:.1f}x faster", f">= {TARGETS['split']:.0f}x"),
        ("`FeatureBuilder().fit_transform` (fresh process)", f"{b['rows']:,}", f"{b['seconds']:.2f} s",
         "", f"{b['columns']} columns, {b['customers']:,} customers", f"< {TARGETS['builder_s']:.0f} s"),
        ("peak RSS of that process (read Parquet + fit_transform)", f"{b['rows']:,}", f"{rss:.2f} GB",
         "", f"input frame {b['input_gib'] * gb:.2f} GB; during fit_transform "
         + (f"{during * gb:.2f} GB" if during is not None else "n/a"), f"< {TARGETS['rss_gb']:.0f} GB"),
        ("`clvkit features` CLI, wall time (fresh process, Parquet in, Parquet out)", f"{b['rows']:,}",
         f"{b['cli']['seconds']:.2f} s", "", f"peak RSS {b['cli']['peak_rss_gib'] * gb:.2f} GB",
         f"< {TARGETS['cli_s']:.0f} s"),
    ]
    table = "\n".join(f"| {' | '.join(r)} |" for r in rows)
    return f"""## Features (`bench/bench_features.py`)

Data: {args.rows:,} transactions of {args.customers:,} customers (seed {args.seed}; string ids as
pandas 3 `str`, shuffled rows, timestamps `datetime64[us]`, 2 % returns; generated in {gen_s:.1f} s);
summary as of {OBSERVATION_END}, split at {CALIBRATION_END}. clvkit timings are the best of 3,
lifetimes' one run, same process and data. Summary parity with lifetimes on this data:
{s['parity']} (string ids), {s_int['parity']} (integer ids); split `frequency_cal, recency_cal, T_cal, frequency_holdout,
duration_holdout` equal to lifetimes': {split['frequency_holdout_equal']} (lifetimes is given the last
microsecond of each end day: it compares end dates with raw timestamps; `monetary_value_holdout`
differs by design, per purchase day instead of per line).

| what | rows | clvkit | reference | result | target |
|---|---|---|---|---|---|
{table}

With string ids most of the summary time is hashing them into integer codes (pyarrow
`dictionary_encode`, about 2-3 s for 10M ids here), which the floor pays too; integer ids
with a compact range are coded by a lookup table instead. lifetimes' `calibration_and_holdout_data` runs on pandas 3 when given a
monetary column (as here); without one it raises "No objects to concatenate".
Main process peak RSS (includes lifetimes): {peak_rss_gib() * gb:.1f} GB.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda v: int(v.replace("_", "")), default=10_000_000)
    parser.add_argument("--customers", type=lambda v: int(v.replace("_", "")), default=1_000_000)
    parser.add_argument("--split-rows", type=lambda v: int(v.replace("_", "")), default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true", help="print the section, do not write RESULTS.md")
    parser.add_argument("--child-builder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_builder:
        child_builder(args.child_builder)
        return
    if not 1 <= args.customers <= args.rows:
        parser.error("need 1 <= --customers <= --rows")
    gen_s, tx = timed(lambda: make_transactions(args.rows, args.customers, args.seed))
    print(f"generated {len(tx):,} rows in {gen_s:.1f} s", flush=True)
    builder = bench_builder(tx)
    summary_figures = bench_summary(tx, "string ids")
    tx["customer_id"] = tx["customer_id"].str.slice(1).astype(np.int64)
    int_figures = bench_summary(tx, "integer ids")
    del tx
    split = bench_split(args.split_rows, args.seed)
    markdown = report(args, summary_figures, int_figures, split, builder, gen_s)
    print(markdown)
    if not args.no_write:
        write_section("features", markdown)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
