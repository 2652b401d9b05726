"""Evaluation plots as matplotlib ``Figure`` objects, plus the segment summary table.

Every figure is built with :class:`matplotlib.figure.Figure` on an Agg canvas: nothing here
touches ``matplotlib.pyplot`` or any other global state, and nothing is written to disk
(:func:`clvkit.evaluation.report.figure_to_png` renders a figure to PNG bytes). Inputs are
plain arrays and DataFrames; the diagnostic plots follow lifetimes' ``plotting`` module
(calibration vs holdout purchases, period transactions, cumulative tracking, P(alive)
matrix).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from clvkit import schemas
from clvkit.constants import (
    DEFAULT_CALIBRATION_MAX_FREQUENCY,
    FEATURE_IMPORTANCE_TOP_N,
    FIGURE_DPI,
    FIGURE_SIZE_INCHES,
    P_ALIVE_GRID_POINTS,
    VALUE_AT_RISK_TOP_FRACTION,
    WIDE_FIGURE_SIZE_INCHES,
)
from clvkit.evaluation import metrics

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: Width of one bar of a side-by-side pair (the pair spans 0.8 of a category).
BAR_WIDTH: Final = 0.4
#: Transparency of reference lines (perfect, random, chance).
REFERENCE_ALPHA: Final = 0.6
P_ALIVE_COLORMAP: Final = "viridis"
#: Most points drawn per curve: longer curves (one point per customer) are thinned to
#: evenly spaced points, first and last kept (deterministic), so rendering stays cheap.
MAX_CURVE_POINTS: Final = 50_000
#: Fixed legend corners: ``loc="best"`` (matplotlib's default) scans every drawn point.
LEGEND_UPPER_LEFT: Final = "upper left"
LEGEND_LOWER_RIGHT: Final = "lower right"
LEGEND_UPPER_RIGHT: Final = "upper right"

# --- segment summary columns -----------------------------------------------------
GROUPING: Final = "grouping"
GROUP: Final = "group"
CUSTOMERS: Final = "customers"
CURRENT_VALUE: Final = "current_value"
CLV: Final = "clv"
CHURN_LOSS: Final = "churn_loss_value"
CLV_SHARE: Final = "clv_share"
CHURN_LOSS_SHARE: Final = "churn_loss_share"
MISSING_GROUP: Final = "(missing)"


# --- helpers ------------------------------------------------------------------------


def _figure(n_axes: int = 1) -> tuple[Figure, list[Axes]]:
    """A new figure on its own Agg canvas with ``n_axes`` panels side by side."""
    size = FIGURE_SIZE_INCHES if n_axes == 1 else WIDE_FIGURE_SIZE_INCHES
    fig = Figure(figsize=size, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, n_axes, i + 1) for i in range(n_axes)]


def _vector(values: ArrayLike, name: str) -> FloatArray:
    """Non-empty, finite, one-dimensional float copy (the metrics' check, worded for a plot)."""
    return metrics.as_vector(values, name, advice="drop or fill them before plotting")


def _check_lengths(**arrays: Sequence[Any] | FloatArray) -> None:
    lengths = {name: len(values) for name, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"arrays must be aligned, got lengths {listed}")


def _check_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(table.columns)}")


def _check_scores(scores: Mapping[str, ArrayLike], n: int) -> dict[str, FloatArray]:
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping of name -> array of scores")
    vectors = {str(name): _vector(values, f"scores[{name!r}]") for name, values in scores.items()}
    wrong = {name: v.size for name, v in vectors.items() if v.size != n}
    if wrong:
        raise ValueError(f"every score array must have {n} values (one per customer), got lengths {wrong}")
    return vectors


def thin_curve(x: ArrayLike, y: ArrayLike, max_points: int = MAX_CURVE_POINTS) -> tuple[FloatArray, FloatArray]:
    """At most ``max_points`` evenly spaced points of a curve, its first and last kept (deterministic)."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.size <= max_points:
        return xs, ys
    keep = np.unique(np.linspace(0, xs.size - 1, max_points).round().astype(np.int64))
    return xs[keep], ys[keep]


def _bin_labels(n_bins: int) -> list[str]:
    """``"0", "1", ..., "k+"``: the last bin is open-ended."""
    return [str(k) for k in range(n_bins - 1)] + [f"{n_bins - 1}+"]


# --- BTYD diagnostics -----------------------------------------------------------------


def plot_calibration_purchases(calibration_table: pd.DataFrame) -> Figure:
    """Mean actual vs predicted holdout purchases by calibration frequency.

    ``calibration_table`` is :func:`clvkit.evaluation.metrics.purchases_calibration_table`
    (lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``).
    """
    _check_columns(
        calibration_table, [metrics.BIN_LABEL, metrics.ACTUAL_MEAN, metrics.PREDICTED_MEAN], "calibration_table"
    )
    fig, (ax,) = _figure()
    x = np.arange(len(calibration_table))
    ax.plot(x, calibration_table[metrics.ACTUAL_MEAN].to_numpy(dtype=float), "o-", label="actual")
    ax.plot(x, calibration_table[metrics.PREDICTED_MEAN].to_numpy(dtype=float), "s--", label="model")
    ax.set_xticks(x, [str(label) for label in calibration_table[metrics.BIN_LABEL]])
    ax.set_title("Actual vs predicted holdout purchases by calibration frequency")
    ax.set_xlabel("Repeat purchases in calibration")
    ax.set_ylabel("Mean purchases in holdout")
    ax.legend(loc=LEGEND_UPPER_LEFT)
    return fig


def frequency_histogram(
    frequency: ArrayLike, max_frequency: int = DEFAULT_CALIBRATION_MAX_FREQUENCY
) -> NDArray[np.int64]:
    """Customers per repeat-purchase count ``0 .. max_frequency``, the last bin ``>= max_frequency``."""
    counts = _vector(frequency, "frequency")
    if counts.min() < 0:
        raise ValueError(f"frequency must be non-negative, got minimum {counts.min():g}")
    if isinstance(max_frequency, bool) or not isinstance(max_frequency, int) or max_frequency < 1:
        raise ValueError(f"max_frequency must be an integer >= 1, got {max_frequency!r}")
    bins = np.minimum(np.floor(counts), max_frequency).astype(int)
    return np.bincount(bins, minlength=max_frequency + 1)


def plot_period_transactions(
    actual_counts: ArrayLike, model_counts: ArrayLike, labels: Sequence[str] | None = None
) -> Figure:
    """Customers by number of repeat purchases, actual vs model, bars side by side.

    Both inputs are histograms over the same bins (customers with 0, 1, ... repeat
    purchases): :func:`frequency_histogram` of the observed frequencies and either of a
    simulation from the fitted model (lifetimes' ``plot_period_transactions``) or the
    model's expected counts. ``labels`` default to ``"0", "1", ..., "k+"``.
    """
    actual = _vector(actual_counts, "actual_counts")
    model = _vector(model_counts, "model_counts")
    _check_lengths(actual_counts=actual, model_counts=model)
    tick_labels = list(labels) if labels is not None else _bin_labels(actual.size)
    _check_lengths(actual_counts=actual, labels=tick_labels)
    fig, (ax,) = _figure()
    x = np.arange(actual.size)
    ax.bar(x - BAR_WIDTH / 2, actual, BAR_WIDTH, label="actual")
    ax.bar(x + BAR_WIDTH / 2, model, BAR_WIDTH, label="model")
    ax.set_xticks(x, tick_labels)
    ax.set_title("Customers by number of repeat purchases")
    ax.set_xlabel("Repeat purchases")
    ax.set_ylabel("Customers")
    ax.legend(loc=LEGEND_UPPER_RIGHT)
    return fig


def plot_cumulative_tracking(
    dates: ArrayLike, actual_cum: ArrayLike, predicted_cum: ArrayLike, calibration_end: Any
) -> Figure:
    """Cumulative repeat transactions, actual vs model, over calibration and holdout.

    ``dates`` are the x positions (datetimes or numbers), ``calibration_end`` where the
    vertical line marks the end of calibration (lifetimes' cumulative tracking plot).
    """
    x = pd.Index(dates)
    actual = _vector(actual_cum, "actual_cum")
    predicted = _vector(predicted_cum, "predicted_cum")
    _check_lengths(dates=x, actual_cum=actual, predicted_cum=predicted)
    fig, (ax,) = _figure()
    ax.plot(x, actual, "-", label="actual")
    ax.plot(x, predicted, "--", label="model")
    ax.axvline(calibration_end, color="grey", linestyle=":", label="end of calibration")
    ax.set_title("Cumulative repeat transactions")
    ax.set_xlabel("Date")
    ax.set_ylabel("Cumulative repeat transactions")
    ax.legend(loc=LEGEND_UPPER_LEFT)
    return fig


def p_alive_matrix_grid(
    max_frequency: int, max_T: float, n: int = P_ALIVE_GRID_POINTS
) -> pd.DataFrame:
    """Grid on which to evaluate P(alive) for :func:`plot_p_alive_matrix`.

    Frequencies ``0 .. max_frequency`` (integers) times ``n`` recencies evenly spaced on
    ``[0, max_T]``, every customer aged ``T = max_T`` (lifetimes'
    ``plot_probability_alive_matrix``). Columns ``frequency, recency, T``; points with
    frequency 0 and recency > 0 cannot occur in data but are kept for a full rectangle.
    """
    if isinstance(max_frequency, bool) or not isinstance(max_frequency, int) or max_frequency < 1:
        raise ValueError(f"max_frequency must be an integer >= 1, got {max_frequency!r}")
    if not (np.isfinite(max_T) and max_T > 0):
        raise ValueError(f"max_T must be a positive number of time units, got {max_T!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    frequency, recency = np.meshgrid(np.arange(max_frequency + 1, dtype=float), np.linspace(0.0, max_T, n), indexing="ij")
    return pd.DataFrame(
        {
            schemas.FREQUENCY: frequency.ravel(),
            schemas.RECENCY: recency.ravel(),
            schemas.T: np.full(frequency.size, float(max_T)),
        }
    )


def p_alive_matrix_from_grid(grid: pd.DataFrame, p_alive: ArrayLike) -> pd.DataFrame:
    """Pivot P(alive) evaluated on :func:`p_alive_matrix_grid` into frequency x recency."""
    _check_columns(grid, [schemas.FREQUENCY, schemas.RECENCY], "grid")
    values = _vector(p_alive, "p_alive")
    _check_lengths(grid=grid, p_alive=values)
    long = pd.DataFrame(
        {schemas.FREQUENCY: grid[schemas.FREQUENCY].to_numpy(), schemas.RECENCY: grid[schemas.RECENCY].to_numpy(),
         schemas.P_ALIVE: values}
    )
    return long.pivot(index=schemas.FREQUENCY, columns=schemas.RECENCY, values=schemas.P_ALIVE)


def plot_p_alive_matrix(matrix: pd.DataFrame) -> Figure:
    """Heat map of P(alive): frequency (rows, index) by recency (columns), with a colour bar."""
    if not isinstance(matrix, pd.DataFrame) or matrix.empty:
        raise ValueError("matrix must be a non-empty DataFrame indexed by frequency with recency columns")
    values = matrix.to_numpy(dtype=float)
    frequency = matrix.index.to_numpy(dtype=float)
    recency = matrix.columns.to_numpy(dtype=float)
    fig, (ax,) = _figure()
    image = ax.imshow(
        values, origin="lower", aspect="auto", cmap=P_ALIVE_COLORMAP, vmin=0.0, vmax=1.0,
        extent=(recency.min(), recency.max(), frequency.min(), frequency.max()),
    )
    fig.colorbar(image, ax=ax, label="P(alive)")
    ax.set_title("Probability of being alive by frequency and recency")
    ax.set_xlabel("Recency (time of last purchase)")
    ax.set_ylabel("Frequency (repeat purchases)")
    return fig


# --- value ranking -----------------------------------------------------------------


def plot_deciles(actual: ArrayLike, predicted: ArrayLike, *, table: pd.DataFrame | None = None) -> Figure:
    """Mean predicted vs mean actual value per prediction decile (decile 1 = highest).

    ``table``: :func:`clvkit.evaluation.metrics.decile_table` of the same arrays when the caller has it.
    """
    if table is None:
        table = metrics.decile_table(actual, predicted)
    fig, (ax,) = _figure()
    x = table[metrics.DECILE].to_numpy()
    ax.bar(x - BAR_WIDTH / 2, table[metrics.PREDICTED_MEAN], BAR_WIDTH, label="predicted")
    ax.bar(x + BAR_WIDTH / 2, table[metrics.ACTUAL_MEAN], BAR_WIDTH, label="actual")
    ax.set_xticks(x)
    ax.set_title("Mean value per predicted decile")
    ax.set_xlabel("Decile of prediction (1 = highest)")
    ax.set_ylabel("Mean value per customer")
    ax.legend(loc=LEGEND_UPPER_RIGHT)
    return fig


def plot_gain_curve(actual: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """Gain (Lorenz) curves: cumulative share of actual value vs share of customers.

    One line per model or baseline in ``scores`` (legend with its normalized Gini), plus the
    perfect ranking and the random diagonal.
    """
    a = _vector(actual, "actual")
    vectors = _check_scores(scores, a.size)
    fig, (ax,) = _figure()
    for name, (x, y, gini) in metrics.gain_curves(a, vectors).items():  # each Gini read off its curve
        ax.plot(*thin_curve(x, y), label=f"{name} (Gini {gini:.3f})")
    x, y = thin_curve(np.arange(a.size + 1) / a.size, np.r_[0.0, np.cumsum(np.sort(a)[::-1])] / a.sum())
    ax.plot(x, y, "k--", alpha=REFERENCE_ALPHA, label="perfect")
    ax.plot([0.0, 1.0], [0.0, 1.0], "k:", alpha=REFERENCE_ALPHA, label="random")
    ax.set_title("Gain curve of realised value")
    ax.set_xlabel("Share of customers (ranked by score)")
    ax.set_ylabel("Cumulative share of actual value")
    ax.legend(loc=LEGEND_LOWER_RIGHT)
    return fig


def plot_feature_importance(importances: Mapping[str, float], top_n: int = FEATURE_IMPORTANCE_TOP_N) -> Figure:
    """Horizontal bars of the ``top_n`` most important features, the largest at the top."""
    if not isinstance(importances, Mapping) or not importances:
        raise ValueError("importances must be a non-empty mapping of feature name -> importance")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"top_n must be an integer >= 1, got {top_n!r}")
    values = _vector(list(importances.values()), "importances")
    names = [str(name) for name in importances]
    order = np.argsort(-values, kind="stable")[:top_n][::-1]
    fig, (ax,) = _figure()
    ax.barh([names[i] for i in order], values[order])
    ax.set_title(f"Feature importance (top {min(top_n, len(names))})")
    ax.set_xlabel("Importance")
    ax.set_ylabel("Feature")
    return fig


# --- churn -------------------------------------------------------------------------


def plot_reliability(table: pd.DataFrame, group_col: str | None = None) -> Figure:
    """Reliability diagram: observed rate vs mean predicted probability per bin.

    ``table`` has columns ``mean_predicted`` and ``observed_rate``
    (:func:`clvkit.evaluation.metrics.reliability_table`); empty bins (NaN) are skipped. With
    ``group_col`` (e.g. a calibration stage) one line per group.
    """
    columns = [metrics.MEAN_PREDICTED, metrics.OBSERVED_RATE] + ([group_col] if group_col else [])
    _check_columns(table, columns, "table")
    groups = table.groupby(group_col, sort=False) if group_col else [("model", table)]
    fig, (ax,) = _figure()
    ax.plot([0.0, 1.0], [0.0, 1.0], "k:", alpha=REFERENCE_ALPHA, label="perfectly calibrated")
    for name, rows in groups:
        filled = rows.dropna(subset=[metrics.MEAN_PREDICTED, metrics.OBSERVED_RATE])
        ax.plot(filled[metrics.MEAN_PREDICTED], filled[metrics.OBSERVED_RATE], "o-", label=str(name))
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_title("Reliability diagram")
    ax.set_xlabel("Mean predicted probability")
    ax.set_ylabel("Observed rate")
    ax.legend(loc=LEGEND_UPPER_LEFT)
    return fig


def plot_roc_pr(y: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """ROC (left) and precision-recall (right) curves, one line per score, with references."""
    labels = _vector(y, "y")
    vectors = _check_scores(scores, labels.size)
    fig, (roc_ax, pr_ax) = _figure(2)
    for name, score in vectors.items():
        curves = metrics.binary_curves(labels, score)  # both curves and both areas from one sort
        roc_ax.plot(*thin_curve(curves.fpr, curves.tpr), label=f"{name} (AUC {curves.roc_auc:.3f})")
        pr_ax.plot(*thin_curve(curves.recall, curves.precision), label=f"{name} (AP {curves.average_precision:.3f})")
    roc_ax.plot([0.0, 1.0], [0.0, 1.0], "k:", alpha=REFERENCE_ALPHA, label="chance")
    pr_ax.axhline(labels.mean(), color="k", linestyle=":", alpha=REFERENCE_ALPHA, label="base rate")
    roc_ax.set_title("ROC curve")
    roc_ax.set_xlabel("False positive rate")
    roc_ax.set_ylabel("True positive rate")
    pr_ax.set_title("Precision-recall curve")
    pr_ax.set_xlabel("Recall")
    pr_ax.set_ylabel("Precision")
    roc_ax.legend(loc=LEGEND_LOWER_RIGHT)
    pr_ax.legend(loc=LEGEND_UPPER_RIGHT)
    return fig


# --- segment table (data, not a plot) --------------------------------------------------


def segment_summary(
    df: pd.DataFrame,
    segment_col: str = schemas.RFM_SEGMENT,
    tier_col: str = schemas.VALUE_TIER,
    *,
    current_value_col: str = schemas.CURRENT_VALUE,
    clv_col: str = schemas.CLV,
    churn_loss_col: str = schemas.CHURN_LOSS_VALUE,
    quadrant_col: str | None = schemas.VALUE_QUADRANT,
) -> pd.DataFrame:
    """Customers, current value, future value (CLV) and churn-loss value per group.

    Returns a long table: rows of ``grouping == quadrant_col`` (when that column is in ``df``),
    then ``segment_col``, then ``tier_col``; each block sorted by descending churn-loss value.
    Columns ``grouping, group, customers, current_value, clv, churn_loss_value, clv_share,
    churn_loss_share`` (shares of the totals). Missing labels form the group ``"(missing)"``;
    sums skip missing values.
    """
    value_cols = [current_value_col, clv_col, churn_loss_col]
    groupings = [c for c in (quadrant_col, segment_col, tier_col) if c is not None and (c in df or c != quadrant_col)]
    _check_columns(df, [*groupings, *value_cols], "df")
    non_numeric = [c for c in value_cols if not pd.api.types.is_numeric_dtype(df[c].dtype)]
    if non_numeric:
        raise ValueError(f"df column(s) {non_numeric} must be numeric")
    totals = (float(df[clv_col].sum()), float(df[churn_loss_col].sum()))
    blocks = [_summary_block(df, col, value_cols, totals) for col in groupings]
    return pd.concat(blocks, ignore_index=True)


def churn_loss_concentration(values: Sequence[float] | np.ndarray, top_fraction: float = VALUE_AT_RISK_TOP_FRACTION) -> float:
    """Share of the total churn-loss value held by the ``top_fraction`` of customers (ceil, at least 1) ranked by it."""
    array = np.sort(np.clip(np.nan_to_num(np.asarray(values, dtype=float)), 0.0, None))[::-1]
    if array.size == 0 or array.sum() <= 0:
        return float("nan")
    top = max(1, int(np.ceil(top_fraction * array.size)))
    return float(array[:top].sum() / array.sum())


def value_at_risk_summary(df: pd.DataFrame, top_fraction: float = VALUE_AT_RISK_TOP_FRACTION, *,
                          summary: pd.DataFrame | None = None, **columns: str) -> pd.DataFrame:
    """Where the value at risk is: :func:`segment_summary` led by a row for the top customers.

    The first row (``grouping == "top customers"``) holds the ``top_fraction`` of customers with
    the highest churn-loss value: their count, values and ``churn_loss_share`` (the share of the
    total churn-loss value they hold). ``summary``: :func:`segment_summary` of the same ``df``
    and ``columns`` when the caller already has it (not computed twice).
    """
    if summary is None:
        summary = segment_summary(df, **columns)
    loss_col = columns.get("churn_loss_col", schemas.CHURN_LOSS_VALUE)
    current_col = columns.get("current_value_col", schemas.CURRENT_VALUE)
    clv_col = columns.get("clv_col", schemas.CLV)
    n_top = max(1, int(np.ceil(top_fraction * len(df)))) if len(df) else 0
    top = df.nlargest(n_top, loss_col) if n_top else df.iloc[:0]
    total_clv, total_loss = float(df[clv_col].sum()), float(df[loss_col].sum())
    row = pd.DataFrame({
        GROUPING: ["top customers"], GROUP: [f"top {top_fraction:.0%} by churn-loss value"],
        CUSTOMERS: [len(top)], CURRENT_VALUE: [float(top[current_col].sum())], CLV: [float(top[clv_col].sum())],
        CHURN_LOSS: [float(top[loss_col].sum())],
        CLV_SHARE: [float(top[clv_col].sum()) / total_clv if total_clv else np.nan],
        CHURN_LOSS_SHARE: [float(top[loss_col].sum()) / total_loss if total_loss else np.nan],
    })
    return pd.concat([row, summary], ignore_index=True)


def _summary_block(df: pd.DataFrame, group_col: str, value_cols: list[str], totals: tuple[float, float]) -> pd.DataFrame:
    # the labels of the distinct values only (not of every row): missing -> "(missing)", then text;
    # distinct values with the same text (1 and "1") form one group
    codes, distinct = pd.factorize(df[group_col], use_na_sentinel=False)
    texts = pd.Series(distinct, dtype=object)
    texts = texts.where(texts.notna(), MISSING_GROUP).astype(str)
    text_codes, names = pd.factorize(texts)
    current, clv, loss = value_cols
    grouped = df[value_cols].groupby(text_codes[codes], sort=True)
    sizes = grouped.size()
    block = pd.DataFrame(
        {
            GROUP: names[sizes.index.to_numpy()].astype(str),
            CUSTOMERS: sizes.to_numpy(),
            CURRENT_VALUE: grouped[current].sum().to_numpy(),
            CLV: grouped[clv].sum().to_numpy(),
            CHURN_LOSS: grouped[loss].sum().to_numpy(),
        }
    )
    total_clv, total_loss = totals
    block[CLV_SHARE] = block[CLV] / total_clv if total_clv else np.nan
    block[CHURN_LOSS_SHARE] = block[CHURN_LOSS] / total_loss if total_loss else np.nan
    block.insert(0, GROUPING, group_col)
    return block.sort_values([CHURN_LOSS, GROUP], ascending=[False, True], kind="stable").reset_index(drop=True)
