"""Backtest summaries (pure): mean and spread of each metric over origins, and one plot per key metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Size (inches) of a backtest plot.
BACKTEST_FIGURE_SIZE = (6.4, 3.6)
SUMMARY_COLUMNS = ("mean", "std", "min", "max", "n_origins")


def spread_summary(per_origin: pd.DataFrame) -> pd.DataFrame:
    """Per metric: mean, standard deviation (ddof=1; 0 with one origin), min, max and origins counted.

    Missing values are skipped; a metric with no finite value at any origin is left out, so the
    summary holds no NaN.
    """
    numeric = per_origin.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    rows = {}
    for name in numeric.columns:
        values = numeric[name].dropna().to_numpy(dtype=float)
        if values.size == 0:
            continue
        spread = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
        rows[name] = (float(values.mean()), spread, float(values.min()), float(values.max()), float(values.size))
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(SUMMARY_COLUMNS))


def metric_across_origins(per_origin: pd.DataFrame, metric: str, baselines: Sequence[str] = ()) -> Figure:
    """One metric (and its baselines) at each origin, with the mean as a dashed line."""
    figure = Figure(figsize=BACKTEST_FIGURE_SIZE)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    origins = [str(o) for o in per_origin.index]
    for name, style in ((metric, "o-"), *((b, "s--") for b in baselines)):
        if name not in per_origin:
            continue
        values = pd.to_numeric(per_origin[name], errors="coerce").to_numpy(dtype=float)
        axes.plot(origins, values, style, label=name)
    if metric in per_origin:
        mean = float(np.nanmean(pd.to_numeric(per_origin[metric], errors="coerce").to_numpy(dtype=float)))
        axes.axhline(mean, color="grey", linestyle=":", label=f"mean {mean:.4f}")
    axes.set_xlabel("origin (cut-off)")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} across origins")
    axes.legend(loc="best", fontsize="small")
    axes.tick_params(axis="x", labelrotation=30)
    figure.tight_layout()
    return figure


def backtest_figures(per_origin: pd.DataFrame, key_metrics: Mapping[str, Sequence[str]]) -> dict[str, Figure]:
    """``backtest_<metric>`` figures for the key metrics the backtest measured (metric -> its baselines)."""
    return {f"backtest_{name}": metric_across_origins(per_origin, name, baselines)
            for name, baselines in key_metrics.items() if name in per_origin}
