"""The evaluation figures and tables of a training run (composition of pure plots)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.data.timeframe import TimeFrame
from clvkit.evaluation import metrics, plots, tracking
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.scorer import ClvScorer
from clvkit.pipelines.evaluate import HOLDOUT_PURCHASES, HoldoutEvaluation

#: Highest repeat-purchase count shown on its own in count plots; higher counts are pooled.
MAX_FREQUENCY_SHOWN = 7
#: Days between points of the cumulative tracking plot.
TRACKING_STEP_DAYS = 7


def evaluation_figures(
    evaluation: HoldoutEvaluation, transactions: pd.DataFrame, frame: TimeFrame, scorer: ClvScorer,
    served_table: pd.DataFrame,
) -> dict[str, Figure]:
    """Every plot of the run report, from the latest evaluation origin (out of sample); fills ``evaluation.tables``."""
    latest = evaluation.latest
    stage, cal, preds = latest.stage, latest.cal, latest.predictions
    table = stage.table.loc[cal.table.index]
    f_cal = table[schemas.FREQUENCY].to_numpy()
    unit_days = DAYS_PER_TIME_UNIT[stage.builder.time_unit]
    calibration = metrics.purchases_calibration_table(
        f_cal, cal.table[schemas.FREQUENCY_HOLDOUT].to_numpy(), preds[HOLDOUT_PURCHASES].to_numpy())
    actual_spend = preds["actual_spend_holdout"].to_numpy()
    served = preds["pred_served"].to_numpy()
    value_scores = {name.removeprefix("pred_"): preds[name].to_numpy() for name in preds if name.startswith("pred_")}
    evaluation.tables.update({
        "purchases_calibration": calibration,
        "deciles": metrics.decile_table(actual_spend, served),
        "churn_feature_importance": _importance_table(stage.churn.feature_importances_),
        "per_origin": evaluation.per_origin(),
    })
    if stage.clv_available:
        served_scores = scorer.score(served_table, intervals=False)
        evaluation.tables["segments"] = plots.segment_summary(served_scores)
        evaluation.tables["value_at_risk"] = plots.value_at_risk_summary(served_scores)
    figures = {
        "calibration_purchases": plots.plot_calibration_purchases(calibration),
        "cumulative_tracking": cumulative_tracking_figure(
            stage.bgnbd, transactions, cal.table.index, frame, unit_days, latest.origin, latest.holdout_end),
        "deciles": plots.plot_deciles(actual_spend, served),
        "gain_curve": plots.plot_gain_curve(actual_spend, value_scores),
        "churn_feature_importance": plots.plot_feature_importance(stage.churn.feature_importances_),
        "p_alive_matrix": p_alive_figure(stage.bgnbd, f_cal, table[schemas.T].to_numpy()),
    }
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
        evaluation.tables["churn_reliability"] = reliability
        figures["churn_reliability"] = plots.plot_reliability(reliability, group_col="model")
        figures["churn_roc_pr"] = plots.plot_roc_pr(churn_y, ranking)
    if hasattr(stage.bgnbd, "probability_of_n_purchases"):  # BG/NBD; not every purchase model has P(X(t) = n)
        figures["period_transactions"] = period_transactions_figure(stage.bgnbd, f_cal, table[schemas.T].to_numpy())
    if stage.value_ml is not None:
        figures["value_feature_importance"] = plots.plot_feature_importance(stage.value_ml.feature_importances_)
    return figures


def segment_table(scorer: ClvScorer, table: pd.DataFrame) -> pd.DataFrame:
    """Customers, current value (gross margin earned), CLV and churn-loss value per quadrant, RFM segment and tier."""
    return plots.segment_summary(scorer.score(table, intervals=False))


def period_transactions_figure(bgnbd: BetaGeoModel, frequency: np.ndarray, T: np.ndarray) -> Figure:
    """Customers by repeat purchases in calibration: actual vs the model's expected counts."""
    actual = plots.frequency_histogram(frequency, MAX_FREQUENCY_SHOWN)
    counts = np.arange(MAX_FREQUENCY_SHOWN)
    probabilities = bgnbd.probability_of_n_purchases(T[:, None], counts[None, :]).sum(axis=0)
    expected = np.append(probabilities, len(T) - probabilities.sum())
    return plots.plot_period_transactions(actual, expected)


def cumulative_tracking_figure(bgnbd: BetaGeoModel, transactions: pd.DataFrame, customers: pd.Index,
                               frame: TimeFrame, unit_days: float, origin: dt.date | None = None,
                               holdout_end: dt.date | None = None) -> Figure:
    """Cumulative repeat purchases (distinct customer-days after the first) vs E[X(t)] summed."""
    rows = transactions[transactions[schemas.CUSTOMER_ID].isin(customers)]
    days = (rows[schemas.TIMESTAMP].dt.normalize() - pd.Timestamp(frame.first_date)).dt.days.to_numpy()
    pairs = pd.DataFrame({"c": rows[schemas.CUSTOMER_ID].to_numpy(), "d": days}).drop_duplicates()
    first = pairs.groupby("c")["d"].transform("min").to_numpy()
    repeat_days = np.sort(pairs["d"].to_numpy()[pairs["d"].to_numpy() > first])
    births = np.sort(pairs.groupby("c")["d"].min().to_numpy())
    origin = origin or frame.calibration_end
    horizon = ((holdout_end or frame.observation_end) - frame.first_date).days
    grid = np.arange(0, horizon + 1, TRACKING_STEP_DAYS)
    actual = np.searchsorted(repeat_days, grid, side="right")
    born, n_born = tracking.birth_cohorts(births)
    predicted = tracking.expected_cumulative_by_cohort(bgnbd, born, n_born, grid, unit_days=unit_days)
    dates = pd.Timestamp(frame.first_date) + pd.to_timedelta(grid, unit="D")
    return plots.plot_cumulative_tracking(dates, actual, predicted, pd.Timestamp(origin))


def p_alive_figure(bgnbd: BetaGeoModel, frequency: np.ndarray, T: np.ndarray) -> Figure:
    """P(alive) over frequency x recency for a customer of the longest tenure."""
    max_frequency = max(1, int(np.quantile(frequency, 0.99)))
    grid = plots.p_alive_matrix_grid(max_frequency, float(T.max()))
    values = bgnbd.p_alive(grid[schemas.FREQUENCY], grid[schemas.RECENCY], grid[schemas.T])
    return plots.plot_p_alive_matrix(plots.p_alive_matrix_from_grid(grid, values))


def _importance_table(importances: dict[str, float]) -> pd.DataFrame:
    return (pd.Series(importances, name="gain").sort_values(ascending=False)
            .rename_axis("feature").reset_index())
