"""Benchmark of the run report's costly figures on 1M customers (clvkit old way vs new way).

Usage::

    python bench/bench_figures.py [--customers 1_000_000] [--seed 7]

* Cumulative tracking: the model's expected cumulative repeat purchases at each weekly grid
  point, summed over customers. Before: ``expected_purchases_unconditional`` over every
  customer born by each grid point (what ``pipelines/figures.py`` did); now: once per distinct
  birth day weighted by counts (``clvkit.evaluation.tracking``). Same BG/NBD parameters
  (CDNOW, weeks), births spread over 365 days, a 2-year weekly grid; the two curves are compared.
* Gain curve and ROC/PR figures on 1M customers rendered to PNG: thinned to at most
  ``plots.MAX_CURVE_POINTS`` points per curve with fixed legend corners, against the same
  figure drawn from every point with ``legend(loc="best")`` (the old way).

Writes the ``figures`` section of ``bench/RESULTS.md``. Not a pytest test.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import timed, write_section
from clvkit.data.simulate import simulate_transactions
from clvkit.evaluation import metrics, plots, tracking
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


def new_style_curves(actual: np.ndarray, score: np.ndarray, y: np.ndarray) -> bytes:
    return figure_to_png(plots.plot_gain_curve(actual, {"model": score})) + figure_to_png(
        plots.plot_roc_pr(y, {"model": score}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--grid-stride", type=int, default=10,
                        help="time the per-customer loop on every k-th grid point and scale up")
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
    old_plot_s, _ = timed(lambda: old_style_curves(actual, score, y))
    new_plot_s, _ = timed(lambda: new_style_curves(actual, score, y))
    print(f"curves: every point + best legend {old_plot_s:.2f} s, thinned {new_plot_s:.2f} s", flush=True)
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
        f"(every point, `loc=\"best\"`) | {new_plot_s:.2f} s (≤ {plots.MAX_CURVE_POINTS:,} points per "
        f"curve, fixed legend corners) | {old_plot_s / new_plot_s:.1f}x |",
        "",
        f"Largest relative difference between the two tracking curves: {rel:.1e} (the test pins 1e-9). "
        "One run for the per-customer loop (on the grid subset), best of 3 for the cohort sum; one run for each figure. "
        f"**Timings under load** (2 shared cores; load average {load} at the start).",
    ])
    print(text)
    if not args.no_write:
        write_section("figures", text)


if __name__ == "__main__":
    main()
