"""The one table of metric names: direction, group, human label and definition.

Every name a run logs, the report shows or a config names (``evaluation.primary_metric``) is
resolved here. Purchase and spend metrics have fixed names (``purchases_mae``); value-ranking
and churn metrics are suffixes after a model prefix (``clv_gini_norm``, ``clv_ml_gini_norm``,
``baseline_rfm_gini_norm``, ``churn_roc_auc``). Pure Python: importing it costs nothing, so
the config layer can check names without loading numpy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

HIGHER: Final = "higher"
LOWER: Final = "lower"
#: Signed errors (bias): the smaller the absolute value, the better.
CLOSER_TO_ZERO: Final = "closer_to_zero"
DIRECTIONS: Final = (HIGHER, LOWER, CLOSER_TO_ZERO)

PURCHASES: Final = "purchases"
SPEND: Final = "spend"
VALUE: Final = "value"
CHURN: Final = "churn"
#: Groups whose metric names are ``<model prefix>_<suffix>``.
PREFIXED_GROUPS: Final = (VALUE, CHURN)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``key`` is the full name (fixed groups) or the suffix (prefixed groups)."""

    key: str
    group: str
    direction: str
    label: str
    definition: str

    @property
    def prefixed(self) -> bool:
        """True when the logged name is ``<prefix>_<key>``."""
        return self.group in PREFIXED_GROUPS

    @property
    def higher_is_better(self) -> bool:
        """True for ``higher``; ``lower`` and ``closer_to_zero`` metrics are better small."""
        return self.direction == HIGHER


METRICS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec("purchases_mae", PURCHASES, LOWER, "Purchases MAE",
               "Mean absolute error of predicted vs actual holdout purchases per customer."),
    MetricSpec("purchases_rmse", PURCHASES, LOWER, "Purchases RMSE",
               "Root mean squared error of predicted vs actual holdout purchases per customer."),
    MetricSpec("purchases_cum_error_pct", PURCHASES, CLOSER_TO_ZERO, "Cumulative purchases error (%)",
               "100 * (sum predicted - sum actual) / sum actual holdout purchases: the error of the "
               "cumulative repeat-transaction curve at the end of the holdout (NaN if no purchases)."),
    MetricSpec("purchases_calibration_mae", PURCHASES, LOWER, "Purchases calibration MAE",
               "Customer-weighted mean |mean actual - mean predicted| holdout purchases over the "
               "calibration-frequency bins 0..7+ (the lifetimes conditional-expectations plot)."),
    MetricSpec("spend_mae", SPEND, LOWER, "Order value MAE",
               "Mean absolute error of the predicted expected order value vs the realised mean holdout "
               "spend per purchase, over customers with frequency_cal > 0 and >= 1 holdout purchase."),
    MetricSpec("gini_norm", VALUE, HIGHER, "Normalized Gini",
               "Gini of the Lorenz curve of realised value with customers sorted by descending "
               "prediction (ties share their mean value), divided by the Gini of the perfect sort. "
               "1 = perfect ranking, 0 = random or constant, -1 = reversed."),
    MetricSpec("spearman", VALUE, HIGHER, "Spearman correlation",
               "Spearman rank correlation of prediction and realised value (average ranks)."),
    MetricSpec("decile_mape", VALUE, LOWER, "Decile MAPE (%)",
               "Customers split into 10 near-equal groups by descending prediction (stable order); mean "
               "over groups of 100 * |sum predicted - sum actual| / |sum actual|; groups whose actual "
               "sum is zero are left out (NaN when all are, or with fewer than 10 customers)."),
    MetricSpec("top10_capture", VALUE, HIGHER, "Value captured by the top 10 %",
               "Share of total realised value held by the top 10 % of customers by prediction "
               "(ties share their mean value)."),
    MetricSpec("top20_capture", VALUE, HIGHER, "Value captured by the top 20 %",
               "Share of total realised value held by the top 20 % of customers by prediction."),
    MetricSpec("aggregate_error_pct", VALUE, CLOSER_TO_ZERO, "Total value error (%)",
               "100 * (sum predicted - sum actual) / sum actual value."),
    MetricSpec("roc_auc", CHURN, HIGHER, "ROC AUC",
               "Area under the ROC curve (scikit-learn roc_auc_score; tied scores count one half)."),
    MetricSpec("pr_auc", CHURN, HIGHER, "Average precision",
               "Average precision (scikit-learn average_precision_score): sum over score thresholds "
               "of (recall_k - recall_k-1) * precision_k."),
    MetricSpec("brier", CHURN, LOWER, "Brier score",
               "Mean squared difference of probability and 0/1 outcome (scikit-learn brier_score_loss)."),
    MetricSpec("ece", CHURN, LOWER, "Expected calibration error",
               "10 equal-width probability bins on [0, 1] (the last closed); sum over bins of "
               "(n_bin / n) * |observed rate - mean probability|."),
    MetricSpec("top_decile_lift", CHURN, HIGHER, "Top-decile lift",
               "Outcome rate among the top 10 % of customers by score (ties share their mean outcome) "
               "divided by the overall rate."),
)

_BY_KEY: Final = {spec.key: spec for spec in METRICS}


def group_keys(group: str) -> tuple[str, ...]:
    """Keys of one group in registry order (suffixes for the prefixed groups)."""
    if not any(spec.group == group for spec in METRICS):
        raise ValueError(f"unknown metric group {group!r}; known: {sorted({s.group for s in METRICS})}")
    return tuple(spec.key for spec in METRICS if spec.group == group)


def find_metric(name: str) -> MetricSpec | None:
    """The spec of a logged metric name, or None when the registry does not know it.

    A fixed name matches exactly; ``<prefix>_<suffix>`` matches the longest registered suffix
    of a prefixed group (the prefix must be non-empty). A leading ``lift_`` is not a metric.
    """
    if name in _BY_KEY and not _BY_KEY[name].prefixed:
        return _BY_KEY[name]
    matches = [spec for spec in METRICS
               if spec.prefixed and name.endswith("_" + spec.key) and len(name) > len(spec.key) + 1]
    return max(matches, key=lambda spec: len(spec.key)) if matches else None


def metric_spec(name: str) -> MetricSpec:
    """The spec of ``name``; ``ValueError`` listing the known names when there is none."""
    spec = find_metric(name)
    if spec is None:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(example_names())}")
    return spec


def metric_direction(name: str) -> str:
    """``higher``, ``lower`` or ``closer_to_zero`` for a logged metric name, or a bare ``_<suffix>``."""
    bare = _BY_KEY.get(name.removeprefix("_")) if name.startswith("_") else None
    return (bare or metric_spec(name)).direction


def example_names(prefixes: Iterable[tuple[str, str]] = ((VALUE, "clv"), (CHURN, "churn"))) -> list[str]:
    """Every fixed name and each prefixed suffix under the given ``(group, prefix)`` pairs."""
    prefix_of = dict(prefixes)
    names = []
    for spec in METRICS:
        if not spec.prefixed:
            names.append(spec.key)
        elif spec.group in prefix_of:
            names.append(f"{prefix_of[spec.group]}_{spec.key}")
    return names
