"""Benchmark of the run report's costly figures on 1M customers (clvkit old way vs new way).

Usage::

    python bench/bench_figures.py [--customers 1_000_000] [--seed 7]

* Cumulative tracking: the model's expected cumulative repeat purchases at each weekly grid
  point, summed over customers. Before: ``expected_purchases_unconditional`` over every
  customer born by each grid point (what ``pipelines/figures.py`` did); now: once per distinct
  birth day weighted by counts (``clvkit.evaluation.tracking``). Same BG/NBD parameters
  (CDNOW, weeks), births spread over 365 days, a 2-year weekly grid; the two curves are compared.
* Gain curve and ROC/PR figures on 1M customers rendered to PNG: thinned to at most
  ``plots.MAX_CURVE_POINTS`` points per curve with fixed legend corners, both curves and both
  areas of a score from one sort (``metrics.binary_curves``), the Gini read off the gain curve;
  against the same figure drawn from every point with ``legend(loc="best")`` and a sort per
  curve and per area (the old way).
* The tracking plot's actual repeat purchases (distinct customer-days after the first) over 10M
  transaction rows: ``np.unique`` of the (customer, day) keys (numpy >= 2.3 hashes integer
  arrays: slow) + ``searchsorted``, against a sort with a neighbour mask + a cumulative
  ``bincount`` per day (``pipelines/figures.py``). Same counts (checked).
* Evaluation metrics on 1M customers: the RFM baseline's dense rank (``np.unique(axis=0)`` vs one
  ``lexsort``); ROC AUC + average precision of a churn score (two sorts vs ``ranking_areas``, one
  sort); value metrics of 4 predictions (``value_metrics`` each vs ``value_metrics_by_prefix``,
  the realised side once and one sort per prediction for deciles and Spearman); the segment and
  value-at-risk tables (text label per row, summary built twice vs labels per distinct value,
  summary shared). Same numbers, bit for bit (checked).

Writes the ``figures`` section of ``bench/RESULTS.md``. Not a pytest test.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import timed, write_section
from clvkit import schemas
from clvkit.data.simulate import simulate_transactions
from clvkit.evaluation import baselines, metrics, plots, tracking
from clvkit.evaluation.report import figure_to_png
from clvkit.features.btyd import summary
from clvkit.models.bgnbd import BetaGeoModel

#: lifetimes' CDNOW estimates (weeks), used as fitted parameters.
CDNOW_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
ACQUISITION_DAYS = 365
HORIZON_DAYS = 730
STEP_DAYS = 7
UNIT_DAYS = 7.0


def model() -> BetaGeoModel:
    """A fitted BG/NBD (small simulation) whose parameters are set to lifetimes' CDNOW estimates."""
    sim = simulate_transactions(5_000, 1)
    table = summary(sim.transactions, sim.transactions["timestamp"].max(), "W")
    state = BetaGeoModel().fit(table[["frequency", "recency", "T"]]).to_dict()
    return BetaGeoModel.from_dict({**state, "params": dict(CDNOW_PARAMS)})


def per_customer(bgnbd: BetaGeoModel, births: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return np.array([bgnbd.expected_purchases_unconditional((g - births[births <= g]) / UNIT_DAYS).sum()
                     for g in grid])


def old_style_curves(actual: np.ndarray, score: np.ndarray, y: np.ndarray) -> bytes:
    """The same two figures drawn the pre-change way: every point, ``legend(loc="best")``."""
    fig, (ax,) = plots._figure()
    ax.plot(*metrics.gain_curve(actual, score), label=f"model (Gini {metrics.normalized_gini(actual, score):.3f})")
    ax.plot(*metrics.gain_curve(actual, actual), "k--", label="perfect")
    ax.plot([0.0, 1.0], [0.0, 1.0], "k:", label="random")
    ax.legend(loc="best")
    fig2, (roc_ax, pr_ax) = plots._figure(2)
    fpr, tpr, _ = metrics.roc_curve(y, score)
    roc_ax.plot(fpr, tpr, label=f"model (AUC {metrics.roc_auc(y, score):.3f})")
    precision, recall, _ = metrics.precision_recall_curve(y, score)
    pr_ax.plot(recall, precision, label=f"model (AP {metrics.average_precision(y, score):.3f})")
    roc_ax.plot([0.0, 1.0], [0.0, 1.0], "k:", label="chance")
    pr_ax.axhline(y.mean(), color="k", linestyle=":", label="base rate")
    roc_ax.legend(loc="best")
    pr_ax.legend(loc="best")
    return figure_to_png(fig) + figure_to_png(fig2)


def cpu_timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU (user + sys, this process) seconds of one call, and its result."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, wall = usage.ru_utime + usage.ru_stime, time.perf_counter()
    result = fn()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter() - wall, usage.ru_utime + usage.ru_stime - cpu, result


def old_actual_repeats(codes: np.ndarray, days: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The tracking plot's actual counts the former way: np.unique of the keys, sorted repeat days searched."""
    span = int(days.max()) + 1
    pairs = np.unique(codes * span + days)
    customer, day = pairs // span, pairs % span
    first = np.r_[True, customer[1:] != customer[:-1]]
    return np.searchsorted(np.sort(day[~first]), grid, side="right")


def new_actual_repeats(codes: np.ndarray, days: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """As ``pipelines.figures.cumulative_tracking_figure`` counts them now."""
    span = int(days.max()) + 1
    keys = np.sort(codes * span + days)
    pairs = keys[np.r_[True, keys[1:] != keys[:-1]]]
    customer, day = pairs // span, pairs % span
    first = np.r_[True, customer[1:] != customer[:-1]]
    per_day = np.bincount(day[~first], minlength=max(span, int(grid.max()) + 1))
    return np.cumsum(per_day)[grid]


def old_rfm_rank(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    _, dense = np.unique(np.column_stack([r + f + m, m, f, r]), axis=0, return_inverse=True)
    return dense.reshape(-1).astype(float) + 1.0


def old_segment_tables(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment and value-at-risk tables the former way: a text label per row, the summary built twice."""
    def block(col: str) -> pd.DataFrame:
        labels = df[col].astype(object).where(df[col].notna(), plots.MISSING_GROUP).astype(str)
        grouped = df[[schemas.CURRENT_VALUE, schemas.CLV, schemas.CHURN_LOSS_VALUE]].groupby(labels.to_numpy(), sort=True)
        return pd.DataFrame({plots.GROUP: grouped.size().index.astype(str), plots.CUSTOMERS: grouped.size().to_numpy(),
                             plots.CLV: grouped[schemas.CLV].sum().to_numpy()})
    cols = (schemas.VALUE_QUADRANT, schemas.RFM_SEGMENT, schemas.VALUE_TIER)
    first = pd.concat([block(c) for c in cols])
    return first, pd.concat([block(c) for c in cols])


def new_segment_tables(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = plots.segment_summary(df)
    return summary, plots.value_at_risk_summary(df, summary=summary)


def metric_rows(rng: np.random.Generator, n: int) -> tuple[list[str], float]:
    """Table rows (before / now, wall and CPU) of the evaluation metrics and tables on ``n`` customers; worst mismatch."""
    rows, mismatch = [], 0.0

    def row(what: str, old: Callable[[], Any], new: Callable[[], Any], same: Callable[[Any, Any], bool]) -> None:
        nonlocal mismatch
        old_wall, old_cpu, old_out = cpu_timed(old)
        new_wall, new_cpu, new_out = cpu_timed(new)
        mismatch = max(mismatch, 0.0 if same(old_out, new_out) else 1.0)
        rows.append(f"| {what} | {old_wall:.2f} s ({old_cpu:.2f} s CPU) | {new_wall:.2f} s ({new_cpu:.2f} s CPU) "
                    f"| {old_wall / new_wall:.1f}x |")
        print(rows[-1], flush=True)

    r, f, m = (rng.integers(1, 6, n).astype(float) for _ in range(3))
    row(f"RFM baseline dense rank, {n:,} customers", lambda: old_rfm_rank(r, f, m),
        lambda: baselines.rfm_score_baseline(r, f, m), np.array_equal)
    y = (rng.random(n) < 0.3).astype(float)
    churn = np.clip(0.3 + 0.2 * (y - 0.3) + rng.normal(0, 0.2, n), 0.0, 1.0)
    row(f"churn ROC AUC + average precision, {n:,} customers",
        lambda: (metrics.roc_auc(y, churn), metrics.average_precision(y, churn)),
        lambda: metrics.ranking_areas(y, churn), lambda a, b: a == b)
    actual = rng.gamma(0.5, 20.0, n) * (rng.random(n) < 0.4)
    predictions = {"clv": actual * rng.lognormal(0, 1, n) + 1.0, "clv_btyd": rng.gamma(1.0, 5.0, n),
                   "baseline_hist": np.round(rng.gamma(0.5, 20.0, n), 0), "baseline_rfm": old_rfm_rank(r, f, m)}
    row(f"value metrics of {len(predictions)} predictions, {n:,} customers",
        lambda: {k: v for p, x in predictions.items() for k, v in metrics.value_metrics(actual, x, p).items()},
        lambda: metrics.value_metrics_by_prefix(actual, predictions), lambda a, b: a == b)
    scores = pd.DataFrame({
        schemas.VALUE_QUADRANT: rng.choice(["Stars", "Fading", "Rising", "Dormant"], n),
        schemas.RFM_SEGMENT: rng.choice(["Champions", "Loyal", "At risk", "Lost", "New", "Hibernating"], n),
        schemas.VALUE_TIER: rng.choice(["A", "B", "C"], n), schemas.CURRENT_VALUE: rng.gamma(0.5, 20.0, n),
        schemas.CLV: rng.gamma(0.5, 50.0, n), schemas.CHURN_LOSS_VALUE: rng.gamma(0.5, 10.0, n),
    })

    def same_tables(old: tuple[pd.DataFrame, pd.DataFrame], new: tuple[pd.DataFrame, pd.DataFrame]) -> bool:
        want = old[0].set_index(plots.GROUP)[plots.CLV].sort_index()
        got = new[0].set_index(plots.GROUP)[plots.CLV].sort_index()
        return bool(want.index.equals(got.index) and (want.to_numpy() == got.to_numpy()).all())

    row(f"segment + value-at-risk tables, {n:,} scored customers", lambda: old_segment_tables(scores),
        lambda: new_segment_tables(scores), same_tables)
    return rows, mismatch


def new_style_curves(actual: np.ndarray, score: np.ndarray, y: np.ndarray) -> bytes:
    return figure_to_png(plots.plot_gain_curve(actual, {"model": score})) + figure_to_png(
        plots.plot_roc_pr(y, {"model": score}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--grid-stride", type=int, default=10,
                        help="time the per-customer loop on every k-th grid point and scale up")
    parser.add_argument("--rows-per-customer", type=int, default=10,
                        help="transaction rows per customer for the tracking plot's actual counts")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    rng = np.random.default_rng(args.seed)
    bgnbd = model()
    births = np.sort(rng.integers(0, ACQUISITION_DAYS, args.customers)).astype(np.int64)
    grid = np.arange(0, HORIZON_DAYS + 1, STEP_DAYS)
    sub_grid = grid[::args.grid_stride]  # the per-customer loop is timed on a subset of the grid
    old_sub_s, old = timed(lambda: per_customer(bgnbd, births, sub_grid))
    old_s = old_sub_s * grid.size / sub_grid.size
    born, _counts = tracking.birth_cohorts(births)
    new_s, new = timed(lambda: tracking.expected_cumulative_by_cohort(
        bgnbd, *tracking.birth_cohorts(births), grid, unit_days=UNIT_DAYS), repeat=3)
    rel = float(np.max(np.abs(new[::args.grid_stride] - old) / np.maximum(np.abs(old), 1.0)))
    print(f"tracking: per customer {old_s:.2f} s, per cohort {new_s:.3f} s, max rel diff {rel:.1e}", flush=True)

    actual = rng.gamma(0.5, 20.0, args.customers)
    score = actual * rng.lognormal(0.0, 1.0, args.customers)
    y = (rng.random(args.customers) < 0.3).astype(int)
    old_plot_s, old_plot_cpu, _ = cpu_timed(lambda: old_style_curves(actual, score, y))
    new_plot_s, new_plot_cpu, _ = cpu_timed(lambda: new_style_curves(actual, score, y))
    print(f"curves: every point + best legend {old_plot_s:.2f} s, thinned {new_plot_s:.2f} s", flush=True)

    n_rows = args.customers * args.rows_per_customer
    codes = rng.integers(0, args.customers, n_rows).astype(np.int64)  # purchases spread over customers and days
    days = rng.integers(0, 2 * ACQUISITION_DAYS, n_rows).astype(np.int64)
    count_grid = np.arange(0, 2 * ACQUISITION_DAYS + 1, STEP_DAYS)
    old_count_s, old_count_cpu, old_counts = cpu_timed(lambda: old_actual_repeats(codes, days, count_grid))
    new_count_s, new_count_cpu, new_counts = cpu_timed(lambda: new_actual_repeats(codes, days, count_grid))
    counts_same = bool(np.array_equal(old_counts, new_counts))
    print(f"actual repeats on {n_rows:,} rows: {old_count_s:.2f} s -> {new_count_s:.2f} s, same {counts_same}", flush=True)
    metric_table, mismatch = metric_rows(rng, args.customers)
    end_load = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    text = "\n".join([
        f"## Report figures on {args.customers:,} customers (`bench/bench_figures.py`)",
        "",
        f"BG/NBD with the CDNOW parameters (weeks); {born.size:,} distinct birth days over "
        f"{ACQUISITION_DAYS} days; {grid.size} weekly grid points over {HORIZON_DAYS} days.",
        "",
        "| what | before | now | speed-up |",
        "|---|---:|---:|---:|",
        f"| cumulative tracking: model E[X(t)] summed over customers at each grid point | {old_s:.2f} s "
        f"(per customer; {old_sub_s:.1f} s measured on {sub_grid.size} of the points, scaled) | {new_s:.3f} s (per birth day, weighted) | {old_s / new_s:.0f}x |",
        f"| gain curve and ROC/PR figures of {args.customers:,} customers rendered to PNG | {old_plot_s:.2f} s "
        f"({old_plot_cpu:.2f} s CPU; every point, `loc=\"best\"`, a sort per curve and per area) | {new_plot_s:.2f} s "
        f"({new_plot_cpu:.2f} s CPU; ≤ {plots.MAX_CURVE_POINTS:,} points per curve, fixed legend corners, one sort "
        f"per score) | {old_plot_s / new_plot_s:.1f}x |",
        f"| cumulative tracking: actual repeat purchases (distinct customer-days) over {n_rows:,} transaction rows "
        f"| {old_count_s:.2f} s ({old_count_cpu:.2f} s CPU; `np.unique` + `searchsorted`) | {new_count_s:.2f} s "
        f"({new_count_cpu:.2f} s CPU; sort + neighbour mask + `bincount`) | {old_count_s / new_count_s:.0f}x |",
        *metric_table,
        "",
        f"Largest relative difference between the two tracking curves: {rel:.1e} (the test pins 1e-9). Actual "
        f"counts identical: {counts_same}; metrics and tables identical bit for bit: {mismatch == 0.0}. "
        "One run for the per-customer loop (on the grid subset), best of 3 for the cohort sum; one run for each "
        "other row (wall, with this process's CPU user+sys beside it). "
        f"**Timings under load** (2 shared cores; load average {load} at the start, {end_load} at the end).",
    ])
    print(text)
    if not args.no_write:
        write_section("figures", text)


if __name__ == "__main__":
    main()
