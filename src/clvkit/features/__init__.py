"""Customer features from canonical transactions (pure pandas/numpy).

* :mod:`clvkit.features.btyd`: BTYD summary (frequency, recency, T, monetary_value) and the
  calibration/holdout split;
* :mod:`clvkit.features.rfm`: RFM scores, segments, value tiers;
* :mod:`clvkit.features.behavioral`: behavioural features in days;
* :mod:`clvkit.features.builder`: :class:`FeatureBuilder`, all of the above as one table.

Names are imported lazily on first use: importing this package does no work.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clvkit.features._periods import FeatureInputError
    from clvkit.features.behavioral import (
        FEATURE_DEFINITIONS,
        BehavioralFeatures,
        behavioral_features,
    )
    from clvkit.features.btyd import CalibrationHoldout, calibration_holdout, summary
    from clvkit.features.builder import FeatureBuilder, build_customer_table
    from clvkit.features.rfm import (
        DEFAULT_SEGMENTS,
        RFMEdges,
        rfm_scores,
        rfm_segments,
        value_tiers,
    )

_EXPORTS = {
    "summary": "btyd",
    "calibration_holdout": "btyd",
    "CalibrationHoldout": "btyd",
    "behavioral_features": "behavioral",
    "BehavioralFeatures": "behavioral",
    "FEATURE_DEFINITIONS": "behavioral",
    "rfm_scores": "rfm",
    "rfm_segments": "rfm",
    "value_tiers": "rfm",
    "RFMEdges": "rfm",
    "DEFAULT_SEGMENTS": "rfm",
    "FeatureBuilder": "builder",
    "build_customer_table": "builder",
    "FeatureInputError": "_periods",
}

__all__ = [
    "DEFAULT_SEGMENTS",
    "FEATURE_DEFINITIONS",
    "BehavioralFeatures",
    "CalibrationHoldout",
    "FeatureBuilder",
    "FeatureInputError",
    "RFMEdges",
    "behavioral_features",
    "build_customer_table",
    "calibration_holdout",
    "rfm_scores",
    "rfm_segments",
    "summary",
    "value_tiers",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clvkit.features' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"clvkit.features.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
