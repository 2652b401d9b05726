"""clvkit: customer lifetime value from raw transactions.

The public API is the names in ``__all__``::

    import clvkit
    model = clvkit.CLVModel(horizon_months=12).fit(transactions)   # a pandas DataFrame
    scores = model.predict(transactions)                            # one row per customer

plus the building blocks (:class:`FeatureBuilder`, the purchase and spend models,
:class:`ChurnClassifier`, :class:`ValueRegressor`, :func:`discounted_clv`). Importing the
package does no work: each name is imported on first use, and MLflow only when a model is
logged.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it (imported on first access).
_EXPORTS: dict[str, str] = {
    "CLVModel": "clvkit.api",
    "ClvkitConfig": "clvkit.config.models",
    "load_config": "clvkit.config.loading",
    "FeatureBuilder": "clvkit.features.builder",
    "BetaGeoModel": "clvkit.models.bgnbd",
    "ModifiedBetaGeoModel": "clvkit.models.mbgnbd",
    "ParetoNBDModel": "clvkit.models.pareto_nbd",
    "make_purchase_model": "clvkit.models.purchase",
    "GammaGammaModel": "clvkit.models.gamma_gamma",
    "ChurnClassifier": "clvkit.models.churn",
    "ValueRegressor": "clvkit.models.value_regressor",
    "discounted_clv": "clvkit.models.clv",
    "ClvScorer": "clvkit.models.scorer",
    "simulate_transactions": "clvkit.data.simulate",
    "load_builtin_transactions": "clvkit.io.datasets",
    "UserInputError": "clvkit.exceptions",
    "NotFittedError": "clvkit.exceptions",
}

__all__ = [
    "__version__",
    "CLVModel",
    "ClvkitConfig",
    "load_config",
    "FeatureBuilder",
    "BetaGeoModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "make_purchase_model",
    "GammaGammaModel",
    "ChurnClassifier",
    "ValueRegressor",
    "discounted_clv",
    "ClvScorer",
    "simulate_transactions",
    "load_builtin_transactions",
    "UserInputError",
    "NotFittedError",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from clvkit.api import CLVModel
    from clvkit.config.loading import load_config
    from clvkit.config.models import ClvkitConfig
    from clvkit.data.simulate import simulate_transactions
    from clvkit.exceptions import NotFittedError, UserInputError
    from clvkit.features.builder import FeatureBuilder
    from clvkit.io.datasets import load_builtin_transactions
    from clvkit.models.bgnbd import BetaGeoModel
    from clvkit.models.churn import ChurnClassifier
    from clvkit.models.clv import discounted_clv
    from clvkit.models.gamma_gamma import GammaGammaModel
    from clvkit.models.mbgnbd import ModifiedBetaGeoModel
    from clvkit.models.pareto_nbd import ParetoNBDModel
    from clvkit.models.purchase import make_purchase_model
    from clvkit.models.scorer import ClvScorer
    from clvkit.models.value_regressor import ValueRegressor


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'clvkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
