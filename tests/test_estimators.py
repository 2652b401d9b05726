"""Every estimator of the pure layers honours the scikit-learn contract.

Estimators are discovered (any class of clvkit.features/models/evaluation with ``fit`` and
``get_params``), so a new one is checked without editing this file: ``clone``, a
``get_params``/``set_params`` round trip, keyword-only hyperparameters, and the checks of
``sklearn.utils.estimator_checks`` that apply to estimators whose input is a DataFrame of named
features or a BTYD summary rather than any numeric array (the data-driven checks of
``check_estimator`` feed bare numpy arrays, which these estimators refuse by design).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.utils import estimator_checks as checks

import clvkit

PURE_PACKAGES = ("clvkit.features", "clvkit.models", "clvkit.evaluation")
#: Checks of sklearn.utils.estimator_checks that need no fitting data.
API_CHECKS = (
    checks.check_estimator_cloneable,
    checks.check_estimator_repr,
    checks.check_no_attributes_set_in_init,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_mixin_order,
    checks.check_estimators_unfitted,
)


def _estimator_classes() -> list[type]:
    found = {}
    for package_name in PURE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (obj.__module__ == module.__name__ and not obj.__name__.startswith("_")
                        and callable(getattr(obj, "fit", None)) and callable(getattr(obj, "get_params", None))):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


ESTIMATORS = _estimator_classes()


def _ids(cls: type) -> str:
    return cls.__name__


def test_the_known_estimators_are_discovered() -> None:
    names = {cls.__name__ for cls in ESTIMATORS}
    assert {"ChurnClassifier", "ValueRegressor", "FeatureBuilder", "BetaGeoModel", "GammaGammaModel",
            "ModifiedBetaGeoModel", "ParetoNBDModel"} <= names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_clone_and_parameter_round_trip(cls: type) -> None:
    estimator = cls()
    params = estimator.get_params()
    assert params, f"{cls.__name__} has no hyperparameters to report"
    copy = clone(estimator)
    assert copy is not estimator and type(copy) is cls
    assert _same(copy.get_params(), params)
    assert copy.set_params(**params) is copy
    assert _same(copy.get_params(), params)
    assert _same(cls(**params).get_params(), params)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_is_a_base_estimator_with_keyword_only_hyperparameters(cls: type) -> None:
    assert issubclass(cls, BaseEstimator), f"{cls.__name__} must derive from sklearn.base.BaseEstimator"
    positional = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self" and p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not positional, f"{cls.__name__} hyperparameters must be keyword-only: {positional}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_scikit_learn_api_checks(cls: type, check: Any) -> None:
    check(cls.__name__, cls())


def test_public_building_blocks_are_estimators() -> None:
    for name in ("ChurnClassifier", "ValueRegressor", "FeatureBuilder", "BetaGeoModel", "GammaGammaModel",
                 "ModifiedBetaGeoModel", "ParetoNBDModel"):
        assert getattr(clvkit, name) in ESTIMATORS


def _same(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Parameter dicts equal, treating NaN as equal and comparing arrays/frames by value."""
    if left.keys() != right.keys():
        return False
    for key in left:
        a, b = left[key], right[key]
        if isinstance(a, np.ndarray | pd.DataFrame | pd.Series):
            if not np.array_equal(np.asarray(a), np.asarray(b)):
                return False
        elif a != b and not (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b)):
            return False
    return True
