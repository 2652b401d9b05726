"""Holdout evaluation of the calibration-stage models against baselines (composition)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.evaluation import baselines, metrics
from clvkit.features.btyd import CalibrationHoldout
from clvkit.features.labels import churn_labels
from clvkit.models.scorer import ORDER_VALUE_FEATURE, P_ALIVE_FEATURE
from clvkit.pipelines.fitting import StageModels

logger = logging.getLogger(__name__)

#: Candidate CLV sources and the baselines they are compared with.
MODEL_PREFIXES = {"btyd": "clv_btyd", "ml": "clv_ml", "hybrid": "clv_hybrid"}
BASELINE_PREFIXES = {"historical": "baseline_hist", "rfm": "baseline_rfm"}
#: Metrics that need predictions in money (not a bare ranking score).
MONEY_ONLY_METRICS = ("decile_mape", "aggregate_error_pct")
SERVED_PREFIX = "clv"
#: Metrics on which the served CLV and the churn model are compared with the best baseline.
VALUE_COMPARED = ("gini_norm", "spearman", "decile_mape", "top10_capture", "top20_capture")
CHURN_COMPARED = ("roc_auc", "pr_auc", "brier")
CHURN_PREFIX = "churn"
CHURN_BASELINE_PREFIX = "baseline_palive_churn"
#: Column of the holdout predictions with BG/NBD's expected holdout purchases.
HOLDOUT_PURCHASES = "btyd_holdout_purchases"


@dataclass
class HoldoutEvaluation:
    """Metrics, tables and figures of one holdout evaluation."""

    metrics: dict[str, float]
    chosen_clv_source: str
    choice_reason: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None


@dataclass(frozen=True)
class _HoldoutInputs:
    """Per-customer model outputs at calibration end, computed once for every metric and plot."""

    table: pd.DataFrame
    features: pd.DataFrame
    holdout_purchases: np.ndarray

    @property
    def expected_order_value(self) -> np.ndarray:
        return self.features[ORDER_VALUE_FEATURE].to_numpy()

    @property
    def p_alive(self) -> np.ndarray:
        return self.features[P_ALIVE_FEATURE].to_numpy()


def _holdout_inputs(stage: StageModels, cal: CalibrationHoldout) -> _HoldoutInputs:
    table = stage.table.loc[cal.table.index]
    purchases = stage.bgnbd.expected_purchases(
        cal.duration_holdout, table[schemas.FREQUENCY].to_numpy(), table[schemas.RECENCY].to_numpy(),
        table[schemas.T].to_numpy())
    return _HoldoutInputs(table, stage.supervised_features(table), purchases)


def holdout_value_predictions(stage: StageModels, cal: CalibrationHoldout,
                              inputs: _HoldoutInputs | None = None) -> dict[str, np.ndarray]:
    """Predicted holdout spend per customer from each candidate model and baseline."""
    inputs = inputs or _holdout_inputs(stage, cal)
    table = inputs.table
    out = {"btyd": inputs.holdout_purchases * inputs.expected_order_value}
    holdout_days = cal.duration_holdout * DAYS_PER_TIME_UNIT[stage.builder.time_unit]
    scale = holdout_days / stage.value_window_days
    for name, model in (("ml", stage.value_ml), ("hybrid", stage.value_hybrid)):
        if model is not None:
            out[name] = model.predict(inputs.features[list(model.feature_names_in_)]) * scale
    out["historical"] = baselines.historical_spend_baseline(
        table["total_spend"].to_numpy(), table[schemas.T].to_numpy(), cal.duration_holdout
    )
    out["rfm"] = baselines.rfm_score_baseline(
        table["r_score"].to_numpy(), table["f_score"].to_numpy(), table["m_score"].to_numpy()
    )
    return out


def evaluate_holdout(stage: StageModels, cal: CalibrationHoldout, transactions: pd.DataFrame,
                     policy: str, primary_metric: str, higher_is_better: bool) -> HoldoutEvaluation:
    """All holdout metrics, the CLV choice, tables and figures."""
    actual_spend = cal.table[schemas.SPEND_HOLDOUT].to_numpy()
    inputs = _holdout_inputs(stage, cal)
    predictions = holdout_value_predictions(stage, cal, inputs)
    results: dict[str, float] = {}
    for name, prefix in {**MODEL_PREFIXES, **BASELINE_PREFIXES}.items():
        if name not in predictions:
            continue
        values = metrics.value_metrics(actual_spend, predictions[name], prefix)
        if name == "rfm":
            values = {k: v for k, v in values.items() if not k.endswith(MONEY_ONLY_METRICS)}
        results.update(values)
    chosen, reason = choose_clv_source(results, policy, primary_metric, higher_is_better)
    results.update({k.replace(MODEL_PREFIXES[chosen], SERVED_PREFIX, 1): v
                    for k, v in results.items() if k.startswith(MODEL_PREFIXES[chosen] + "_")})
    results.update(_purchase_and_spend_metrics(inputs, cal))
    churn_y = churn_labels(transactions, stage.as_of, stage.churn_window_days).reindex(inputs.table.index)
    churn_y = churn_y.to_numpy().astype(int)
    churn_p = stage.churn.predict_proba(inputs.features[list(stage.churn.feature_names_in_)])
    results.update(metrics.churn_metrics(churn_y, churn_p, CHURN_PREFIX))
    results.update(metrics.churn_metrics(churn_y, baselines.churn_baseline_from_p_alive(inputs.p_alive),
                                         CHURN_BASELINE_PREFIX))
    results.update(_lifts(results))
    evaluation = HoldoutEvaluation(results, chosen, reason)
    evaluation.predictions = pd.DataFrame(
        {**{f"pred_{k}": v for k, v in predictions.items()}, "actual_spend_holdout": actual_spend,
         "churn_probability": churn_p, "churned_in_window": churn_y, "p_alive": inputs.p_alive,
         HOLDOUT_PURCHASES: inputs.holdout_purchases},
        index=cal.table.index,
    )
    return evaluation


def choose_clv_source(results: dict[str, float], policy: str, primary_metric: str,
                      higher_is_better: bool = True) -> tuple[str, str]:
    """Apply the CLV policy: a fixed source, or the best candidate on the holdout.

    Candidates are compared on the primary metric when it is a CLV metric (``clv_*``),
    otherwise on the normalized Gini; ties go to the simpler model (btyd, ml, hybrid).
    """
    if policy != "best_on_holdout":
        return policy, f"fixed by models.value.clv_policy={policy}"
    suffix = primary_metric.removeprefix(SERVED_PREFIX + "_")
    if not any(f"{prefix}_{suffix}" in results for prefix in MODEL_PREFIXES.values()):
        suffix, higher_is_better = "gini_norm", True
    scores = {name: results[f"{prefix}_{suffix}"] for name, prefix in MODEL_PREFIXES.items()
              if f"{prefix}_{suffix}" in results}
    sign = 1.0 if higher_is_better else -1.0
    best = max(scores, key=lambda name: (sign * scores[name], -list(MODEL_PREFIXES).index(name)))
    ranking = ", ".join(f"{n} {v:.4f}" for n, v in sorted(scores.items(), key=lambda kv: -sign * kv[1]))
    return best, f"best holdout {suffix} among candidates ({ranking})"


def _purchase_and_spend_metrics(inputs: _HoldoutInputs, cal: CalibrationHoldout) -> dict[str, float]:
    f = inputs.table[schemas.FREQUENCY].to_numpy()
    actual = cal.table[schemas.FREQUENCY_HOLDOUT].to_numpy()
    out = metrics.purchase_metrics(actual, inputs.holdout_purchases, f)
    out.update(metrics.spend_metrics(cal.table[schemas.MONETARY_VALUE_HOLDOUT].to_numpy(),
                                     inputs.expected_order_value, f, actual))
    return out


def _lifts(results: dict[str, float]) -> dict[str, float]:
    """Relative lift over the best baseline of every CLV model and the churn model, with loss counts.

    ``lift_<model>_<metric>`` (positive: the model is better), ``<model>_metrics_losing`` per
    model, and ``served_metrics_losing_to_baseline`` for what the scorer serves (CLV and churn).
    """
    out: dict[str, float] = {}
    served_losses: list[str] = []
    for prefix in (SERVED_PREFIX, *MODEL_PREFIXES.values()):
        pairs = [(suffix, results[f"{prefix}_{suffix}"], _best_baseline(results, suffix))
                 for suffix in VALUE_COMPARED if f"{prefix}_{suffix}" in results]
        losses = _record_lifts(out, prefix, [(sfx, m, b) for sfx, m, b in pairs if b is not None])
        if prefix == SERVED_PREFIX:
            served_losses += losses
    churn_pairs = [(suffix, results[f"{CHURN_PREFIX}_{suffix}"], results[f"{CHURN_BASELINE_PREFIX}_{suffix}"])
                   for suffix in CHURN_COMPARED
                   if f"{CHURN_PREFIX}_{suffix}" in results and f"{CHURN_BASELINE_PREFIX}_{suffix}" in results]
    served_losses += _record_lifts(out, CHURN_PREFIX, churn_pairs)
    for name in served_losses:
        logger.warning("served %s loses to the best baseline", name)
    out["served_metrics_losing_to_baseline"] = float(len(served_losses))
    return out


def _best_baseline(results: dict[str, float], suffix: str) -> float | None:
    values = [results[f"{p}_{suffix}"] for p in BASELINE_PREFIXES.values() if f"{p}_{suffix}" in results]
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
