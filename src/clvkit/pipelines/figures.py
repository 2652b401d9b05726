"""The evaluation figures and tables of a training run (composition of pure plots)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT, N_DECILES
from clvkit.data.timeframe import TimeFrame
from clvkit.evaluation import metrics, plots, tracking
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.scorer import ClvScorer
from clvkit.pipelines.evaluate import HOLDOUT_PURCHASES, HoldoutEvaluation, customer_rows

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Highest repeat-purchase count shown on its own in count plots; higher counts are pooled.
MAX_FREQUENCY_SHOWN = 7
#: Days between points of the cumulative tracking plot.
TRACKING_STEP_DAYS = 7


def evaluation_figures(
    evaluation: HoldoutEvaluation, transactions: pd.DataFrame, frame: TimeFrame, scorer: ClvScorer,
    served_table: pd.DataFrame, *, served_scores: pd.DataFrame | None = None,
) -> dict[str, Figure]:
    """Every plot of the run report, from the latest evaluation origin (out of sample); fills ``evaluation.tables``.

    ``served_scores``: ``scorer.score(served_table, intervals=False)`` when the caller already has
    it (the segment tables then do not score every served customer again).
    """
    latest = evaluation.latest
    stage, cal, preds = latest.stage, latest.cal, latest.predictions
    table = customer_rows(stage.table, cal.table.index)
    f_cal = table[schemas.FREQUENCY].to_numpy()
    unit_days = DAYS_PER_TIME_UNIT[stage.builder.time_unit]
    calibration = metrics.purchases_calibration_table(
        f_cal, cal.table[schemas.FREQUENCY_HOLDOUT].to_numpy(), preds[HOLDOUT_PURCHASES].to_numpy())
    actual_spend = preds["actual_spend_holdout"].to_numpy()
    served = preds["pred_served"].to_numpy()
    value_scores = {name.removeprefix("pred_"): preds[name].to_numpy() for name in preds if name.startswith("pred_")}
    tables: dict[str, Callable[[], pd.DataFrame]] = {
        "purchases_calibration": lambda: calibration,
        "per_origin": evaluation.per_origin,
    }
    figures_to_draw: dict[str, Callable[[], Figure]] = {
        "calibration_purchases": lambda: plots.plot_calibration_purchases(calibration),
        "cumulative_tracking": lambda: cumulative_tracking_figure(
            stage.bgnbd, transactions, cal.table.index, frame, unit_days, latest.origin, latest.holdout_end),
        "p_alive_matrix": lambda: p_alive_figure(stage.bgnbd, f_cal, table[schemas.T].to_numpy()),
    }
    value_skipped = _value_figures_skipped(actual_spend, stage.clv_available)
    if value_skipped:
        logger.warning("value figures (gain curve, deciles) skipped: %s", value_skipped)
    else:
        figures_to_draw["gain_curve"] = lambda: plots.plot_gain_curve(actual_spend, value_scores)
        if actual_spend.size >= N_DECILES:
            deciles = functools.cache(lambda: metrics.decile_table(actual_spend, served))  # table and plot share it
            tables["deciles"] = deciles
            figures_to_draw["deciles"] = lambda: plots.plot_deciles(actual_spend, served, table=deciles())
        else:
            logger.warning("decile table and plot skipped: %d customer(s) in the evaluation holdout cannot fill "
                           "%d deciles", actual_spend.size, N_DECILES)
    if stage.churn is not None:  # None: one-class labels, no classifier was fitted
        importances = stage.churn.feature_importances_
        tables["churn_feature_importance"] = lambda: _importance_table(importances)
        figures_to_draw["churn_feature_importance"] = lambda: plots.plot_feature_importance(importances)
    if stage.clv_available:
        if served_scores is None:
            served_scores = scorer.score(served_table, intervals=False)
        segments = functools.cache(lambda: plots.segment_summary(served_scores))  # both tables share it
        tables["segments"] = segments
        tables["value_at_risk"] = lambda: plots.value_at_risk_summary(served_scores, summary=segments())
    if "churned_in_window" in preds:
        churn_y = preds["churned_in_window"].to_numpy()
        probabilities = {"served churn": preds["churn_probability"].to_numpy(),
                         "closed form P(no purchase)": preds["closed_form_churn"].to_numpy()}
        reliability = pd.concat(
            [metrics.reliability_table(churn_y, p).assign(model=name) for name, p in probabilities.items()],
            ignore_index=True)
        recency = preds["days_since_last_purchase"].to_numpy()
        ranking = {**probabilities, "days since last purchase": recency / max(float(recency.max()), 1.0),
                   "1 - P(alive) (reference)": 1.0 - preds["p_alive"].to_numpy()}
        tables["churn_reliability"] = lambda: reliability
        figures_to_draw["churn_reliability"] = lambda: plots.plot_reliability(reliability, group_col="model")
        if np.unique(churn_y).size == 2:
            figures_to_draw["churn_roc_pr"] = lambda: plots.plot_roc_pr(churn_y, ranking)
        else:
            logger.warning("churn ROC/PR plot skipped: every one of the %d holdout customers is %s within the "
                           "churn window (one class)", churn_y.size, "churned" if churn_y.all() else "active")
    if hasattr(stage.bgnbd, "probability_of_n_purchases"):  # BG/NBD; not every purchase model has P(X(t) = n)
        figures_to_draw["period_transactions"] = lambda: period_transactions_figure(
            stage.bgnbd, f_cal, table[schemas.T].to_numpy())
    if stage.value_ml is not None:
        value_importances = stage.value_ml.feature_importances_
        figures_to_draw["value_feature_importance"] = lambda: plots.plot_feature_importance(value_importances)
    evaluation.tables.update(_built(tables, "table"))
    return _built(figures_to_draw, "figure")


def _value_figures_skipped(actual_spend: np.ndarray, clv_available: bool) -> str:
    """Why the value figures cannot be drawn (empty string when they can)."""
    if not clv_available:
        return "the run serves no CLV (count-only log without clv.value_per_purchase)"
    total = float(np.sum(actual_spend))
    if not np.isfinite(total) or total <= 0:
        return (f"the realised holdout value of the {actual_spend.size} customer(s) totals {total:g}, so there is "
                "no value to rank (count-only log without clv.value_per_purchase, or no spend in the holdout)")
    return ""


def _built(builders: dict[str, Callable[[], T]], kind: str) -> dict[str, T]:
    """Each figure/table built; one that degenerate data cannot give (ValueError) is skipped and logged.

    A plot of a tiny or degenerate log (one customer, no repeat purchase, a tenure of 0) must not
    end the run: the model and its metrics are still logged.
    """
    out: dict[str, T] = {}
    for name, build in builders.items():
        started = time.perf_counter()
        try:
            out[name] = build()
        except ValueError as err:
            logger.warning("%s %r skipped: %s", kind, name, err)
        logger.debug("%s %r: %.2f s", kind, name, time.perf_counter() - started)
    return out


def segment_table(scorer: ClvScorer, table: pd.DataFrame) -> pd.DataFrame:
    """Customers, current value (gross margin earned), CLV and churn-loss value per quadrant, RFM segment and tier."""
    return plots.segment_summary(scorer.score(table, intervals=False))


def period_transactions_figure(bgnbd: BetaGeoModel, frequency: np.ndarray, T: np.ndarray) -> Figure:
    """Customers by repeat purchases in calibration: actual vs the model's expected counts."""
    actual = plots.frequency_histogram(frequency, MAX_FREQUENCY_SHOWN)
    counts = np.arange(MAX_FREQUENCY_SHOWN)
    # P(X(T) = n) depends on T only: once per distinct age, weighted by its customers
    ages, customers = np.unique(np.asarray(T, dtype=np.float64), return_counts=True)
    probabilities = customers @ bgnbd.probability_of_n_purchases(ages[:, None], counts[None, :])
    expected = np.append(probabilities, len(T) - probabilities.sum())
    return plots.plot_period_transactions(actual, expected)


def cumulative_tracking_figure(bgnbd: BetaGeoModel, transactions: pd.DataFrame, customers: pd.Index,
                               frame: TimeFrame, unit_days: float, origin: dt.date | None = None,
                               holdout_end: dt.date | None = None) -> Figure:
    """Cumulative repeat purchases (distinct customer-days after the first) vs E[X(t)] summed."""
    rows = transactions[transactions[schemas.CUSTOMER_ID].isin(customers)]
    days = _days_since(rows[schemas.TIMESTAMP], frame.first_date)
    codes, _ = pd.factorize(rows[schemas.CUSTOMER_ID])
    span = int(days.max()) + 1 if days.size else 1
    # distinct (customer, day), by customer then day; a sort, not np.unique (numpy >= 2.3 hashes integer
    # arrays there, ~80x slower than sorting on 10M rows)
    pairs = _sorted_distinct(codes.astype(np.int64) * span + days)
    customer, day = pairs // span, pairs % span
    first_of_customer = np.r_[True, customer[1:] != customer[:-1]]
    births = day[first_of_customer]
    origin = origin or frame.calibration_end
    horizon = ((holdout_end or frame.observation_end) - frame.first_date).days
    grid = np.arange(0, horizon + 1, TRACKING_STEP_DAYS)
    # repeat customer-days on or before each grid day: a cumulative count per day, not a sort
    per_day = np.bincount(day[~first_of_customer], minlength=max(span, int(grid.max(initial=0)) + 1))
    actual = np.cumsum(per_day)[grid]
    born, n_born = tracking.birth_cohorts(births)
    predicted = tracking.expected_cumulative_by_cohort(bgnbd, born, n_born, grid, unit_days=unit_days)
    dates = pd.Timestamp(frame.first_date) + pd.to_timedelta(grid, unit="D")
    return plots.plot_cumulative_tracking(dates, actual, predicted, pd.Timestamp(origin))


def _days_since(stamps: pd.Series, first_date: dt.date) -> np.ndarray:
    """Whole days from ``first_date`` to each timestamp's calendar day (integer floor division on
    a naive datetime64 column; the pandas way, 5x slower on 10M rows, for any other dtype)."""
    if isinstance(stamps.dtype, np.dtype) and stamps.dtype.kind == "M":
        return (stamps.to_numpy() - np.datetime64(first_date)) // np.timedelta64(1, "D")
    return (stamps.dt.normalize() - pd.Timestamp(first_date)).dt.days.to_numpy(dtype=np.int64)


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (``np.unique`` by a sort and a neighbour mask)."""
    ordered = np.sort(keys)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def p_alive_figure(bgnbd: BetaGeoModel, frequency: np.ndarray, T: np.ndarray) -> Figure:
    """P(alive) over frequency x recency for a customer of the longest tenure."""
    max_frequency = max(1, int(np.quantile(frequency, 0.99)))
    grid = plots.p_alive_matrix_grid(max_frequency, float(T.max()))
    values = bgnbd.p_alive(grid[schemas.FREQUENCY], grid[schemas.RECENCY], grid[schemas.T])
    return plots.plot_p_alive_matrix(plots.p_alive_matrix_from_grid(grid, values))


def _importance_table(importances: dict[str, float]) -> pd.DataFrame:
    return (pd.Series(importances, name="gain").sort_values(ascending=False)
            .rename_axis("feature").reset_index())
