"""The evaluation figures and tables of a training run (composition of pure plots)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.data.timeframe import TimeFrame
from clvkit.evaluation import metrics, plots
from clvkit.features.btyd import CalibrationHoldout
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.scorer import ClvScorer, customer_margin
from clvkit.pipelines.evaluate import HOLDOUT_PURCHASES, HoldoutEvaluation
from clvkit.pipelines.fitting import StageModels

#: Highest repeat-purchase count shown on its own in count plots; higher counts are pooled.
MAX_FREQUENCY_SHOWN = 7
#: Days between points of the cumulative tracking plot.
TRACKING_STEP_DAYS = 7
#: Column of the segment table with the margin earned so far.
CURRENT_VALUE = "current_value"


def evaluation_figures(
    stage: StageModels, cal: CalibrationHoldout, evaluation: HoldoutEvaluation, transactions: pd.DataFrame,
    frame: TimeFrame, scorer: ClvScorer, served_table: pd.DataFrame,
) -> dict[str, Figure]:
    """Every plot of the run report; also fills ``evaluation.tables``."""
    preds = evaluation.predictions
    assert preds is not None
    table = stage.table.loc[cal.table.index]
    f_cal = table[schemas.FREQUENCY].to_numpy()
    unit_days = DAYS_PER_TIME_UNIT[stage.builder.time_unit]
    calibration = metrics.purchases_calibration_table(
        f_cal, cal.table[schemas.FREQUENCY_HOLDOUT].to_numpy(), preds[HOLDOUT_PURCHASES].to_numpy())
    actual_spend = preds["actual_spend_holdout"].to_numpy()
    served = preds[f"pred_{evaluation.chosen_clv_source}"].to_numpy()
    value_scores = {name.removeprefix("pred_"): preds[name].to_numpy() for name in preds if name.startswith("pred_")}
    churn_y = preds["churned_in_window"].to_numpy()
    churn_scores = {"churn model": preds["churn_probability"].to_numpy(),
                    "1 - P(alive)": 1.0 - preds["p_alive"].to_numpy()}
    reliability = pd.concat(
        [metrics.reliability_table(churn_y, p).assign(model=name) for name, p in churn_scores.items()],
        ignore_index=True)
    segments = segment_table(scorer, served_table)
    evaluation.tables.update({
        "purchases_calibration": calibration,
        "deciles": metrics.decile_table(actual_spend, served),
        "churn_reliability": reliability,
        "segments": segments,
        "churn_feature_importance": _importance_table(stage.churn.feature_importances_),
        "churn_reliability_validation": stage.churn.reliability_table_,
    })
    figures = {
        "calibration_purchases": plots.plot_calibration_purchases(calibration),
        "period_transactions": period_transactions_figure(stage.bgnbd, f_cal, table[schemas.T].to_numpy()),
        "cumulative_tracking": cumulative_tracking_figure(stage.bgnbd, transactions, cal.table.index, frame, unit_days),
        "deciles": plots.plot_deciles(actual_spend, served),
        "gain_curve": plots.plot_gain_curve(actual_spend, value_scores),
        "churn_reliability": plots.plot_reliability(reliability, group_col="model"),
        "churn_roc_pr": plots.plot_roc_pr(churn_y, churn_scores),
        "churn_feature_importance": plots.plot_feature_importance(stage.churn.feature_importances_),
        "p_alive_matrix": p_alive_figure(stage.bgnbd, f_cal, table[schemas.T].to_numpy()),
    }
    chosen_model = {"ml": stage.value_ml, "hybrid": stage.value_hybrid}.get(evaluation.chosen_clv_source)
    if chosen_model is not None:
        figures["value_feature_importance"] = plots.plot_feature_importance(chosen_model.feature_importances_)
    return figures


def segment_table(scorer: ClvScorer, table: pd.DataFrame) -> pd.DataFrame:
    """Customers, margin earned so far, CLV and value at risk per RFM segment and value tier."""
    scores = scorer.score(table)
    scores[CURRENT_VALUE] = table["total_spend"].clip(lower=0.0) * customer_margin(table, scorer.settings.margin)
    return plots.segment_summary(scores, current_value_col=CURRENT_VALUE)


def period_transactions_figure(bgnbd: BetaGeoModel, frequency: np.ndarray, T: np.ndarray) -> Figure:
    """Customers by repeat purchases in calibration: actual vs the model's expected counts."""
    actual = plots.frequency_histogram(frequency, MAX_FREQUENCY_SHOWN)
    counts = np.arange(MAX_FREQUENCY_SHOWN)
    probabilities = bgnbd.probability_of_n_purchases(T[:, None], counts[None, :]).sum(axis=0)
    expected = np.append(probabilities, len(T) - probabilities.sum())
    return plots.plot_period_transactions(actual, expected)


def cumulative_tracking_figure(bgnbd: BetaGeoModel, transactions: pd.DataFrame, customers: pd.Index,
                               frame: TimeFrame, unit_days: float) -> Figure:
    """Cumulative repeat purchases (distinct customer-days after the first) vs E[X(t)] summed."""
    rows = transactions[transactions[schemas.CUSTOMER_ID].isin(customers)]
    days = (rows[schemas.TIMESTAMP].dt.normalize() - pd.Timestamp(frame.first_date)).dt.days.to_numpy()
    pairs = pd.DataFrame({"c": rows[schemas.CUSTOMER_ID].to_numpy(), "d": days}).drop_duplicates()
    first = pairs.groupby("c")["d"].transform("min").to_numpy()
    repeat_days = np.sort(pairs["d"].to_numpy()[pairs["d"].to_numpy() > first])
    births = np.sort(pairs.groupby("c")["d"].min().to_numpy())
    horizon = (frame.observation_end - frame.first_date).days
    grid = np.arange(0, horizon + 1, TRACKING_STEP_DAYS)
    actual = np.searchsorted(repeat_days, grid, side="right")
    predicted = np.array([
        bgnbd.expected_purchases_unconditional((g - births[births <= g]) / unit_days).sum() for g in grid
    ])
    dates = pd.Timestamp(frame.first_date) + pd.to_timedelta(grid, unit="D")
    return plots.plot_cumulative_tracking(dates, actual, predicted, pd.Timestamp(frame.calibration_end))


def p_alive_figure(bgnbd: BetaGeoModel, frequency: np.ndarray, T: np.ndarray) -> Figure:
    """P(alive) over frequency x recency for a customer of the longest tenure."""
    max_frequency = max(1, int(np.quantile(frequency, 0.99)))
    grid = plots.p_alive_matrix_grid(max_frequency, float(T.max()))
    values = bgnbd.p_alive(grid[schemas.FREQUENCY], grid[schemas.RECENCY], grid[schemas.T])
    return plots.plot_p_alive_matrix(plots.p_alive_matrix_from_grid(grid, values))


def _importance_table(importances: dict[str, float]) -> pd.DataFrame:
    return (pd.Series(importances, name="gain").sort_values(ascending=False)
            .rename_axis("feature").reset_index())
