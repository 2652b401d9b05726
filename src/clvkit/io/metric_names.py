"""Names under which metrics are logged to MLflow, and back (no MLflow needed).

Metric names are grouped at logging time with a prefix the MLflow UI groups charts by
(:data:`METRIC_GROUPS`, e.g. ``baseline/hist_gini_norm``). A few key metrics (:data:`KEY_METRICS`
and the primary metric) go to the group ``Key`` (``Key/clv_gini_norm``): the UI orders chart
sections by name, upper case first, so they are the first section a user sees (plain names would
land in the last section, "Model metrics"). Code keeps the plain names; :func:`internal_metrics`
maps a run's logged names back (names logged before grouping pass through).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

#: Group of the key metrics: sorts before the lower-case groups in the MLflow UI.
KEY_GROUP = "Key"
#: Metrics logged as ``Key/<name>`` (with the primary metric): the UI shows them first.
KEY_METRICS = (
    "clv_gini_norm", "clv_spearman", "clv_top20_capture", "baseline_hist_gini_norm", "churn_pr_auc",
    "baseline_palive_churn_pr_auc", "baseline_recency_churn_pr_auc", "purchases_mae",
    "served_metrics_losing_to_baseline",
)
#: (pattern on the internal name, UI group, prefix dropped from the name): first match wins.
METRIC_GROUPS: tuple[tuple[str, str, str], ...] = (
    (r"^param_", "fit", "param_"),
    (r"^[a-z]+_(cal|served)_", "diagnostics", ""),
    (r"^baseline_", "baseline", "baseline_"),
    (r"^lift_", "lift", "lift_"),
    (r"^data_", "data", "data_"),
    (r"^inner_", "inner", "inner_"),
    (r"^clv_(btyd|ml|hybrid|blend)_", "candidates", ""),
    (r"^churn_", "churn", "churn_"),
    (r"", "holdout", ""),
)
_DROPPED_PREFIX = {group: dropped for _, group, dropped in METRIC_GROUPS} | {KEY_GROUP: ""}


def metric_key(name: str, key_metrics: tuple[str, ...] = KEY_METRICS) -> str:
    """The name a metric is logged under: ``Key/<name>`` for key metrics, else ``<group>/<name>``."""
    if "/" in name:
        return name
    if name in key_metrics:
        return f"{KEY_GROUP}/{name}"
    for pattern, group, dropped in METRIC_GROUPS:
        if re.match(pattern, name):
            return f"{group}/{name[len(dropped):]}"
    return name


def internal_name(logged: str) -> str:
    """Inverse of :func:`metric_key` (names logged before grouping pass through)."""
    group, slash, rest = logged.partition("/")
    if not slash or group not in _DROPPED_PREFIX:
        return logged
    return _DROPPED_PREFIX[group] + rest


def internal_metrics(logged: Mapping[str, float]) -> dict[str, float]:
    """A run's metrics under the names used in code (``Key/clv_gini_norm`` is ``clv_gini_norm``)."""
    return {internal_name(k): v for k, v in logged.items()}


def grouped_metrics(metrics: Mapping[str, float], primary_metric: str | None = None) -> dict[str, float]:
    """Finite metrics under their logged names."""
    keys = (*KEY_METRICS, primary_metric) if primary_metric else KEY_METRICS
    return {metric_key(k, keys): float(v) for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))}
