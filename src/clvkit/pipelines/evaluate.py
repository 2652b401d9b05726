"""Evaluation of the whole training recipe at origins inside the history (composition).

At each origin ``o`` the recipe (:func:`clvkit.pipelines.fitting.fit_stage`: features, every
model, every choice, the served scorer) is applied to the history up to ``o`` only, and the
scorer it would serve is compared with what happened in ``(o, o + holdout]``. Nothing after
``o`` chooses anything: changing holdout rows changes these figures, never the choices.
``clvkit train`` reports these figures; ``clvkit backtest`` is the same code over more origins.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.config.models import ClvkitConfig
from clvkit.constants import DAYS_PER_MONTH, DAYS_PER_TIME_UNIT
from clvkit.evaluation import baselines, metrics
from clvkit.exceptions import UserInputError
from clvkit.features.btyd import CalibrationHoldout, calibration_holdout
from clvkit.features.labels import churn_labels
from clvkit.models.scorer import ORDER_VALUE_FEATURE, P_ALIVE_FEATURE, ClvScorer, closed_form_churn
from clvkit.pipelines.fitting import StageModels, fit_stage, scorer_and_scores

logger = logging.getLogger(__name__)

#: Candidate CLV sources and the baselines they are compared with.
MODEL_PREFIXES = {"btyd": "clv_btyd"}
BASELINE_PREFIXES = {"historical": "baseline_hist", "rfm": "baseline_rfm"}
#: Metrics that need predictions in money (not a bare ranking score).
MONEY_ONLY_METRICS = ("decile_mape", "aggregate_error_pct")
SERVED_PREFIX = "clv"
#: Metrics on which the served CLV and the churn model are compared with the best baseline.
VALUE_COMPARED = ("gini_norm", "spearman", "decile_mape", "top10_capture", "top20_capture")
CHURN_COMPARED = ("roc_auc", "pr_auc", "brier")
CHURN_PREFIX = "churn"
#: Honest churn baselines: days since the last purchase (a ranking) and the purchase model's
#: closed-form P(no purchase in the window); 1 - P(alive) is logged as a reference only.
CHURN_BASELINE_PREFIXES = ("baseline_recency_churn", "baseline_closed_form_churn")
CHURN_REFERENCE_PREFIX = "reference_palive_churn"
#: Column of the holdout predictions with the purchase model's expected holdout purchases.
HOLDOUT_PURCHASES = "btyd_holdout_purchases"


@dataclass
class OriginEvaluation:
    """The recipe fitted at one origin and scored on the holdout after it."""

    origin: dt.date
    holdout_end: dt.date
    stage: StageModels
    scorer: ClvScorer
    cal: CalibrationHoldout
    metrics: dict[str, float]
    predictions: pd.DataFrame


@dataclass
class HoldoutEvaluation:
    """Metrics (mean over origins), the latest origin's choices, tables and predictions."""

    metrics: dict[str, float]
    chosen_clv_source: str
    choice_reason: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    origins: list[OriginEvaluation] = field(default_factory=list)

    @property
    def latest(self) -> OriginEvaluation:
        """The evaluation at the latest origin (its figures and tables are the run's)."""
        return self.origins[-1]

    def describe_origins(self) -> str:
        """``1997-06-30..1997-09-30; ...`` for tags and logs."""
        return "; ".join(f"{o.origin}..{o.holdout_end}" for o in self.origins)

    def per_origin(self) -> pd.DataFrame:
        """One row of metrics per origin."""
        return pd.DataFrame([{"origin": str(o.origin), "holdout_end": str(o.holdout_end), **o.metrics}
                             for o in self.origins]).set_index("origin")


def evaluation_origins(calibration_end: dt.date, observation_end: dt.date, n_origins: int) -> list[tuple[dt.date, dt.date]]:
    """``n`` origins stepping back from ``calibration_end`` by the holdout length, earliest first."""
    holdout = observation_end - calibration_end
    return [(calibration_end - k * holdout, observation_end - k * holdout) for k in reversed(range(n_origins))]


def evaluate_recipe(transactions: pd.DataFrame, origins: Sequence[tuple[dt.date, dt.date]], first_date: dt.date,
                    config: ClvkitConfig) -> HoldoutEvaluation:
    """Apply the recipe at every origin that leaves enough history; metrics averaged over them.

    An earlier origin whose history is too short is skipped (logged); the latest one must work.
    """
    results: list[OriginEvaluation] = []
    for i, (origin, end) in enumerate(origins):
        try:
            results.append(evaluate_origin(transactions, origin, end, first_date, config))
        except UserInputError as err:
            if i == len(origins) - 1:
                raise
            logger.info("evaluation origin %s skipped: %s", origin, err)
    per_origin = pd.DataFrame([r.metrics for r in results])
    mean = per_origin.mean(numeric_only=True)
    summary = {k: float(v) for k, v in mean.items() if np.isfinite(v)}
    if len(results) > 1:
        spread = per_origin.std(numeric_only=True)
        summary.update({f"{k}_std": float(v) for k, v in spread.items() if np.isfinite(v)})
    summary["evaluation_origins"] = float(len(results))
    latest = results[-1]
    logger.info("recipe evaluated at %d origin(s): %s", len(results),
                ", ".join(f"{r.origin}..{r.holdout_end}" for r in results))
    return HoldoutEvaluation(summary, latest.stage.clv_source, latest.stage.clv_reason,
                             predictions=latest.predictions, origins=results)


def evaluate_origin(transactions: pd.DataFrame, origin: dt.date, holdout_end: dt.date, first_date: dt.date,
                    config: ClvkitConfig) -> OriginEvaluation:
    """Fit the recipe on the history up to ``origin`` and score ``(origin, holdout_end]``."""
    if holdout_end <= origin:
        raise UserInputError(f"evaluation origin {origin} leaves no holdout before {holdout_end}")
    history = transactions.loc[transactions[schemas.TIMESTAMP] < pd.Timestamp(origin) + pd.Timedelta(days=1)]
    check_holdout_purchases(transactions, history, origin, holdout_end)
    horizon_days = int(round(config.clv.horizon_months * DAYS_PER_MONTH))
    stage = fit_stage(history, origin, first_date, horizon_days, config)
    holdout_days = (holdout_end - origin).days
    scorer, learnt_scores, learnt_revenue = scorer_and_scores(stage, config, revenue_window_days=holdout_days)
    unit = config.data.time_unit
    within = transactions.loc[transactions[schemas.TIMESTAMP] < pd.Timestamp(holdout_end) + pd.Timedelta(days=1)]
    if schemas.AMOUNT not in within.columns:  # count-only: purchase counts only (spend columns are 0)
        within = within.assign(**{schemas.AMOUNT: 0.0})
    cal = calibration_holdout(within, origin, holdout_end, unit)
    table = customer_rows(stage.table, cal.table.index)
    if schemas.AMOUNT in transactions.columns:
        actual = cal.table[schemas.SPEND_HOLDOUT].to_numpy(dtype=float)
    else:  # count-only: realised purchases valued at clv.value_per_purchase
        actual = cal.table[schemas.FREQUENCY_HOLDOUT].to_numpy(dtype=float) * float(config.clv.value_per_purchase or 0.0)
    # only churn is read from the scores (no Monte Carlo interval); one pass with the revenue forecast,
    # the one that learnt the scorer's thresholds when the holdout customers are the stage's
    if table is stage.table and learnt_scores is not None and learnt_revenue is not None:
        scores, served_revenue = learnt_scores, learnt_revenue
    else:
        scores, served_revenue = scorer.score_with_revenue(table, holdout_days)
    f, r, t = (table[c].to_numpy(dtype=float) for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))
    btyd = stage.btyd_features(table)
    purchases = stage.bgnbd.expected_purchases(cal.duration_holdout, f, r, t)
    predictions = {
        "served": served_revenue,
        "btyd": purchases * btyd[ORDER_VALUE_FEATURE].to_numpy(),
    }
    if "total_spend" in table:
        predictions["historical"] = baselines.historical_spend_baseline(
            table["total_spend"].to_numpy(), t, cal.duration_holdout)
    if {"r_score", "f_score", "m_score"} <= set(table.columns):
        predictions["rfm"] = baselines.rfm_score_baseline(
            table["r_score"].to_numpy(), table["f_score"].to_numpy(), table["m_score"].to_numpy())
    results: dict[str, float] = {}
    if stage.clv_available:
        prefixes = {"served": SERVED_PREFIX, **MODEL_PREFIXES, **BASELINE_PREFIXES}
        # one pass: the realised-value side of the metrics (ranks, perfect Gini) is shared
        value = metrics.value_metrics_by_prefix(actual, {prefixes[k]: v for k, v in predictions.items()})
        rfm = BASELINE_PREFIXES["rfm"]
        results.update({k: v for k, v in value.items()
                        if not (k.startswith(f"{rfm}_") and k.endswith(MONEY_ONLY_METRICS))})
        results["clv_holdout_total_predicted"] = float(predictions["served"].sum())
        results["clv_holdout_total_actual"] = float(actual.sum())
    results.update(_purchase_and_spend_metrics(table, cal, purchases, btyd[ORDER_VALUE_FEATURE].to_numpy()))
    churn = _churn_evaluation(transactions, stage, table, scores, origin, holdout_end, f, r, t)
    results.update(churn.pop("metrics"))
    results.update(_lifts(results))
    results.update(stage.inner_metrics)
    results["served_clv_is_baseline_formula"] = float(stage.clv_source == "historical")
    results["served_churn_is_classifier"] = float(stage.churn_source == "classifier")
    frame = pd.DataFrame({
        **{f"pred_{k}": v for k, v in predictions.items()}, "actual_spend_holdout": actual,
        "p_alive": btyd[P_ALIVE_FEATURE].to_numpy(), HOLDOUT_PURCHASES: purchases, **churn,
    }, index=cal.table.index)
    logger.info("origin %s..%s: served %s CLV gini %.4f (historical %.4f), aggregate error %.1f%%", origin,
                holdout_end, stage.clv_source, results.get("clv_gini_norm", np.nan),
                results.get("baseline_hist_gini_norm", np.nan), results.get("clv_aggregate_error_pct", np.nan))
    return OriginEvaluation(origin, holdout_end, stage, scorer, cal, results, frame)


def customer_rows(table: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    """``table.loc[customers]``; the table itself when it already holds exactly those customers in that order
    (the usual case: a label lookup of a million customer ids costs about a second)."""
    return table if table.index.equals(customers) else table.loc[customers]


def check_holdout_purchases(transactions: pd.DataFrame, history: pd.DataFrame, origin: dt.date,
                            holdout_end: dt.date) -> None:
    """The holdout ``(origin, holdout_end]`` must hold purchases by customers known at ``origin``.

    Without them every holdout metric is undefined; the message names the dates to move.
    """
    stamps = transactions[schemas.TIMESTAMP]
    after = transactions.loc[(stamps >= pd.Timestamp(origin) + pd.Timedelta(days=1))
                             & (stamps < pd.Timestamp(holdout_end) + pd.Timedelta(days=1))]
    known = after[schemas.CUSTOMER_ID].isin(history[schemas.CUSTOMER_ID].unique())
    if known.any():
        return
    last = stamps.max().date() if len(stamps) else origin
    holdout_days = (holdout_end - origin).days
    raise UserInputError(
        f"the evaluation holdout {origin + dt.timedelta(days=1)} .. {holdout_end} has no purchases by the "
        f"{history[schemas.CUSTOMER_ID].nunique()} customers known at {origin} "
        f"({f'{len(after)} purchase row(s), all by new customers' if len(after) else 'no purchase row at all'}), "
        f"so nothing can be evaluated; the last purchase in the log is on {last}. "
        f"Move data.calibration_end earlier (to {last - dt.timedelta(days=holdout_days)} or before for a "
        f"{holdout_days}-day holdout) or set data.observation_end to {last}"
    )


def _churn_evaluation(transactions: pd.DataFrame, stage: StageModels, table: pd.DataFrame, scores: pd.DataFrame,
                      origin: dt.date, holdout_end: dt.date, f: np.ndarray, r: np.ndarray,
                      t: np.ndarray) -> dict:
    """Served churn vs the honest baselines on the holdout (when the window fits in it)."""
    window = stage.churn_window_days
    served = scores[schemas.CHURN_PROBABILITY].to_numpy(dtype=float)
    closed = closed_form_churn(stage.bgnbd, window / DAYS_PER_TIME_UNIT[stage.builder.time_unit], f, r, t)
    recency = table["days_since_last_purchase"].to_numpy(dtype=float) if "days_since_last_purchase" in table \
        else (t - r)
    out: dict = {"churn_probability": served, "closed_form_churn": closed, "days_since_last_purchase": recency}
    found: dict[str, float] = {}
    if origin + dt.timedelta(days=window) > holdout_end:
        logger.info("churn not evaluated at origin %s: the %d-day window does not fit in the holdout", origin, window)
        out["metrics"] = found
        return out
    y = churn_labels(transactions, origin, window).reindex(table.index).fillna(1).to_numpy().astype(int)
    out["churned_in_window"] = y
    found.update(metrics.churn_metrics(y, served, CHURN_PREFIX))
    found.update(metrics.churn_metrics(y, closed, "baseline_closed_form_churn"))
    found["baseline_recency_churn_roc_auc"], found["baseline_recency_churn_pr_auc"] = metrics.ranking_areas(y, recency)
    p_alive = np.clip(np.asarray(stage.bgnbd.p_alive(f, r, t), dtype=float), 0.0, 1.0)
    found.update(metrics.churn_metrics(y, baselines.churn_baseline_from_p_alive(p_alive), CHURN_REFERENCE_PREFIX))
    found["churn_window_days"] = float(window)
    out["metrics"] = found
    return out


def _purchase_and_spend_metrics(table: pd.DataFrame, cal: CalibrationHoldout, purchases: np.ndarray,
                                order_value: np.ndarray) -> dict[str, float]:
    f = table[schemas.FREQUENCY].to_numpy()
    actual = cal.table[schemas.FREQUENCY_HOLDOUT].to_numpy()
    out = metrics.purchase_metrics(actual, purchases, f)
    if schemas.MONETARY_VALUE_HOLDOUT in cal.table:
        out.update(metrics.spend_metrics(cal.table[schemas.MONETARY_VALUE_HOLDOUT].to_numpy(), order_value, f, actual))
    return out


def _lifts(results: dict[str, float]) -> dict[str, float]:
    """Relative lift of the served CLV and churn over the best baseline, with loss counts.

    ``lift_<model>_<metric>`` (positive: the model is better), ``<model>_metrics_losing`` per
    model, and ``served_metrics_losing_to_baseline`` for what the scorer serves (CLV and churn).
    """
    out: dict[str, float] = {}
    served_losses: list[str] = []
    for prefix in (SERVED_PREFIX, *MODEL_PREFIXES.values()):
        pairs = [(suffix, results[f"{prefix}_{suffix}"], _best_baseline(results, BASELINE_PREFIXES.values(), suffix))
                 for suffix in VALUE_COMPARED if f"{prefix}_{suffix}" in results]
        losses = _record_lifts(out, prefix, [(sfx, m, b) for sfx, m, b in pairs if b is not None])
        if prefix == SERVED_PREFIX:
            served_losses += losses
    churn_pairs = [(suffix, results[f"{CHURN_PREFIX}_{suffix}"],
                    _best_baseline(results, CHURN_BASELINE_PREFIXES, suffix))
                   for suffix in CHURN_COMPARED if f"{CHURN_PREFIX}_{suffix}" in results]
    served_losses += _record_lifts(out, CHURN_PREFIX, [(s, m, b) for s, m, b in churn_pairs if b is not None])
    for name in served_losses:
        logger.warning("served %s loses to the best baseline", name)
    out["served_metrics_losing_to_baseline"] = float(len(served_losses))
    return out


def _best_baseline(results: dict[str, float], prefixes: Sequence[str], suffix: str) -> float | None:
    values = [results[f"{p}_{suffix}"] for p in prefixes
              if f"{p}_{suffix}" in results and np.isfinite(results[f"{p}_{suffix}"])]
    if not values:
        return None
    return min(values) if metrics.metric_direction(f"_{suffix}") == metrics.LOWER else max(values)


def _record_lifts(out: dict[str, float], prefix: str, pairs: list[tuple[str, float, float]]) -> list[str]:
    """Write ``lift_<prefix>_<suffix>`` and ``<prefix>_metrics_losing``; return the losing metric names."""
    losing = []
    for suffix, model, baseline in pairs:
        direction = metrics.metric_direction(f"_{suffix}")
        out[f"lift_{prefix}_{suffix}"] = metrics.relative_lift(model, baseline, direction)
        if metrics.loses_to_baseline(model, baseline, direction):
            losing.append(f"{prefix}_{suffix}")
    out[f"{prefix}_metrics_losing"] = float(len(losing))
    return losing
