"""Input checks and booster (de)serialisation shared by the XGBoost models.

Each model holds a :class:`FeatureChecks` whose ``subject`` ("churn", "value") starts its
messages, so every model keeps its own wording.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from clvkit.constants import MAX_LISTED_COLUMNS
from clvkit.exceptions import FeatureMismatchError, NotFittedError, UserInputError

#: Characters xgboost forbids in feature names.
FORBIDDEN_NAME_CHARS: Final = ("[", "]", "<")

#: ``n_jobs`` meaning "every core" (scikit-learn's convention); ``None`` is every core too,
#: except for small training sets (see :data:`ROWS_PER_THREAD`).
ALL_CORES: Final = -1
#: With ``n_jobs=None`` a training set gets one thread per this many rows (at least one, at most
#: every core): on small data OpenMP start-up and spin-waiting cost more than the threads save
#: (1,000 customers x 4 features on this 2-core machine: 0.45 s CPU with 1 thread, 4.5 s with 2).
ROWS_PER_THREAD: Final = 50_000

FloatArray = NDArray[np.float64]


def threads(n_jobs: int | None, n_rows: int | None = None) -> int:
    """Booster thread count: ``n_jobs``; every core for ``-1``, and for ``None`` unless ``n_rows``
    (a training set's size) is small: then one thread per :data:`ROWS_PER_THREAD` rows."""
    cores = os.cpu_count() or 1
    if n_jobs == ALL_CORES or (n_jobs is None and n_rows is None):
        return cores
    if n_jobs is None:
        return max(1, min(cores, int(n_rows or 0) // ROWS_PER_THREAD))
    return int(n_jobs)


def predict(booster: Any, matrix: FloatArray, **kwargs: Any) -> NDArray[np.float32]:
    """``booster.inplace_predict(matrix, **kwargs)`` on one thread per :data:`ROWS_PER_THREAD` rows, up to every core.

    Each row's prediction is computed on its own, so the thread count never changes a value
    (unlike training, whose threads ``n_jobs`` sets); small batches (serving) stay on one thread.
    The count is set on the booster only when it changes.
    """
    wanted = threads(None, max(int(matrix.shape[0]), ROWS_PER_THREAD))
    if getattr(booster, "_clvkit_nthread", None) != wanted:
        booster.set_param({"nthread": wanted})
        booster._clvkit_nthread = wanted
    return booster.inplace_predict(matrix, **kwargs)


def stratified_sample(strata: NDArray[np.integer], size: int | None, seed: int) -> NDArray[np.intp] | None:
    """Seeded rows of a training set kept for fitting: ``size`` of them, each stratum in proportion.

    ``None`` (keep every row) when ``size`` is ``None`` or not below the number of rows. Each
    stratum gets its share of ``size`` by largest remainder (at least one row of a non-empty
    stratum while room remains), so rare classes keep their rate; rows are drawn at random within
    a stratum and returned sorted.
    """
    n = strata.size
    if size is None or size >= n:
        return None
    inverse, labels = pd.factorize(strata, sort=True)  # np.unique's outputs; its integer hash is slow
    counts = np.bincount(inverse, minlength=labels.size)
    exact = counts * (size / n)
    quota = np.floor(exact).astype(np.int64)
    quota = np.where((quota == 0) & (counts > 0), 1, quota)
    short = size - int(quota.sum())
    if short > 0:
        quota[np.argsort(quota - exact, kind="stable")[:short]] += 1
    elif short < 0:  # the minimum of one row per stratum overshot: trim the largest strata
        quota[np.argsort(-quota, kind="stable")[:-short]] -= 1
    keys = np.random.default_rng(seed).random(n)
    order = np.lexsort((keys, inverse))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    within = np.arange(n) - np.repeat(starts, counts)
    kept = order[within < np.repeat(quota, counts)]
    return np.sort(kept)


def value_strata(target: FloatArray, n_bins: int) -> NDArray[np.int64]:
    """Strata of a non-negative value target: 0 for zero, else its quantile bin among positives (1..n_bins)."""
    strata = np.zeros(target.size, dtype=np.int64)
    positive = target > 0
    if positive.any():
        edges = np.quantile(target[positive], np.linspace(0, 1, n_bins + 1)[1:-1])
        strata[positive] = 1 + np.searchsorted(edges, target[positive], side="right")
    return strata


def check_max_train_rows(model: Any, minimum: int) -> None:
    """``model.max_train_rows`` must be ``None`` or a whole number >= ``minimum``."""
    value = model.max_train_rows
    whole = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if not (value is None or (whole and value >= minimum)):
        raise UserInputError(
            f"{type(model).__name__} max_train_rows must be None (every row) or a whole number >= {minimum}, "
            f"got {value!r}"
        )


def check_n_jobs(model: Any) -> None:
    """``model.n_jobs`` must be ``None``, ``-1`` or a whole number >= 1."""
    value = model.n_jobs
    whole = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if not (value is None or (whole and (value == -1 or value >= 1))):
        raise UserInputError(
            f"{type(model).__name__} n_jobs must be a whole number >= 1, or None/-1 for every core, got {value!r}"
        )


class EstimatorNotFittedError(NotFittedError, SklearnNotFittedError):
    """clvkit's ``NotFittedError`` that scikit-learn's checks also recognise as theirs."""


def check_fitted(model: Any) -> None:
    """scikit-learn's ``check_is_fitted`` (attributes ending in ``_``), with clvkit's message."""
    try:
        check_is_fitted(model, "booster_")
    except SklearnNotFittedError:
        raise EstimatorNotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit() or load it with from_dict()"
        ) from None


@dataclass(frozen=True)
class FeatureChecks:
    """Checks of a model's feature frames, worded for ``subject``.

    ``require_rows`` also refuses a frame without rows at fit; ``order_hint`` is appended to
    the message about columns in another order than at fit.
    """

    subject: str
    require_rows: bool = False
    order_hint: str = ""

    def feature_names(self, X: Any) -> list[str]:
        """Column names of ``X``: a DataFrame with unique string names xgboost accepts."""
        if not isinstance(X, pd.DataFrame):
            raise UserInputError(
                f"{self.subject} features must be a pandas DataFrame with named columns, "
                f"got {type(X).__name__}"
            )
        if X.shape[1] == 0:
            raise UserInputError(f"{self.subject} features have no columns")
        if self.require_rows and X.shape[0] == 0:
            raise UserInputError(f"{self.subject} features have no rows")
        names = list(X.columns)
        bad = [
            c
            for c in names
            if not isinstance(c, str) or any(ch in c for ch in FORBIDDEN_NAME_CHARS)
        ]
        if bad:
            raise UserInputError(
                f"{self.subject} feature names must be strings without "
                f"{list(FORBIDDEN_NAME_CHARS)}; offending: {bad}"
            )
        if len(set(names)) != len(names):
            dupes = sorted({c for c in names if names.count(c) > 1})
            raise UserInputError(
                f"{self.subject} feature names must be unique; duplicated: {dupes}"
            )
        return names

    def numeric_matrix(self, X: pd.DataFrame, names: list[str], stage: str) -> FloatArray:
        """Float matrix of the named columns; NaN stays (xgboost's missing value), inf is refused."""
        dtypes = dict(zip(X.columns, X.dtypes, strict=True))  # one lookup, not a Series per column
        non_numeric = {
            c: str(dtypes[c])
            for c in names
            if not (pd.api.types.is_numeric_dtype(dtypes[c]) or pd.api.types.is_bool_dtype(dtypes[c]))
        }
        if non_numeric:
            raise UserInputError(
                f"{self.subject} features must be numeric at {stage}; non-numeric column(s) "
                f"{non_numeric}. Encode or drop them before training"
            )
        matrix = X[names].to_numpy(dtype="float64", na_value=np.nan)
        infinite = [] if not np.isinf(matrix).any() else [
            c for c, col in zip(names, matrix.T, strict=True) if np.isinf(col).any()
        ]
        if infinite:
            raise UserInputError(
                f"{self.subject} features hold infinite values in column(s) {infinite}"
            )
        return matrix

    def check_same_features(self, X: Any, expected: list[str]) -> None:
        """Raise ``FeatureMismatchError`` unless ``X`` has exactly the ``expected`` columns."""
        if not isinstance(X, pd.DataFrame):
            raise FeatureMismatchError(
                f"{self.subject} features must be a DataFrame with columns {listed(expected)}, "
                f"got {type(X).__name__}"
            )
        got = list(X.columns)
        if got == expected:
            return
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        if missing or extra:
            raise FeatureMismatchError(
                f"{self.subject} features differ from those seen at fit: missing "
                f"{listed(missing)}, unexpected {listed(extra)}"
            )
        raise FeatureMismatchError(
            f"{self.subject} feature columns are in a different order than at fit; expected "
            f"{listed(expected)}{self.order_hint}"
        )

    def prediction_matrix(self, model: Any, X: Any) -> FloatArray:
        """Float matrix of ``X`` for a fitted ``model``, which needs its fitted columns in order."""
        check_fitted(model)
        self.check_same_features(X, model.feature_names_in_)
        return self.numeric_matrix(X, model.feature_names_in_, "predict")

    def load_booster(
        self, booster_json: str | bytes, data: Mapping[str, Any]
    ) -> tuple[Any, list[str]]:
        """Booster from xgboost's JSON model and the feature names of the model state ``data``."""
        import xgboost as xgb

        raw = booster_json.encode("utf-8") if isinstance(booster_json, str) else booster_json
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        names = list(data["feature_names"])
        if list(booster.feature_names or []) != names:
            raise UserInputError(
                f"{self.subject} booster JSON has features {booster.feature_names}, the model "
                f"state {names}: they come from different models"
            )
        return booster, names

    def restore_booster(
        self, model: Any, data: Mapping[str, Any], booster_json: str | bytes, nthread: Any
    ) -> None:
        """Set ``model``'s booster, feature names and best iteration from its serialised state."""
        booster, names = self.load_booster(booster_json, data)
        booster.set_param({"nthread": nthread})
        model.booster_ = booster
        model.feature_names_in_ = names
        model.n_features_in_ = len(names)
        model.best_iteration_ = int(data["best_iteration"])


def booster_state(model: Any, kind: str, version: int) -> dict[str, Any]:
    """First fields of a fitted model's ``to_dict``: kind, version, params, features, best round."""
    check_fitted(model)
    return {
        "model": kind,
        "format_version": version,
        "params": plain(model.get_params()),
        "feature_names": list(model.feature_names_in_),
        "best_iteration": model.best_iteration_,
    }


def booster_to_json(model: Any) -> str:
    """A fitted model's booster in xgboost's JSON model format."""
    check_fitted(model)
    return bytes(model.booster_.save_raw("json")).decode("utf-8")


def listed(names: list[Any]) -> str:
    """At most ``MAX_LISTED_COLUMNS`` names, and how many more there are."""
    shown = [str(n) for n in names[:MAX_LISTED_COLUMNS]]
    more = len(names) - len(shown)
    return str(shown) + (f" and {more} more" if more > 0 else "")


def gain_importances(booster: Any, names: list[str]) -> dict[str, float]:
    """Average gain of each feature's splits (0.0 for features no split uses)."""
    gains = booster.get_score(importance_type="gain")
    return {name: float(gains.get(name, 0.0)) for name in names}


def plain(value: Any) -> Any:
    """numpy scalars and containers of them as plain Python, for JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
