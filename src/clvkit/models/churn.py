"""Calibrated XGBoost churn classifier: P(no purchase in the label window | features).

Training holds out a stratified, seeded validation split; the booster stops early on its
log-loss (Chen & Guestrin 2016), and a calibrator maps the booster's scores to probabilities,
fitted on the same validation predictions: isotonic regression (Zadrozny & Elkan 2002) or
Platt scaling (Platt 1999). The model serialises without pickle: numbers in :meth:`to_dict`
and the booster in xgboost's JSON format (:meth:`booster_json`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Final, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin

from clvkit.constants import (
    DEFAULT_CHURN_EARLY_STOPPING_ROUNDS,
    DEFAULT_CHURN_LEARNING_RATE,
    DEFAULT_CHURN_MAX_DEPTH,
    DEFAULT_CHURN_N_ESTIMATORS,
    DEFAULT_CHURN_VALIDATION_FRACTION,
    DEFAULT_RANDOM_SEED,
    MAX_EXAMPLE_ROWS,
    MIN_CHURN_CLASS_COUNT,
    RELIABILITY_BINS,
)
from clvkit.exceptions import UserInputError
from clvkit.models._lifetimes import check_kind
from clvkit.models._xgboost import (
    FeatureChecks,
    booster_state,
    booster_to_json,
    check_max_train_rows,
    check_n_jobs,
    gain_importances,
    plain,
    predict,
    stratified_sample,
    threads,
)

logger = logging.getLogger(__name__)

MODEL_KIND: Final = "churn_xgboost"
FORMAT_VERSION: Final = 1
CALIBRATIONS: Final = ("isotonic", "sigmoid", "none")
STAGE_UNCALIBRATED: Final = "uncalibrated"
STAGE_CALIBRATED: Final = "calibrated"
RELIABILITY_COLUMNS: Final = (
    "stage",
    "bin",
    "bin_lower",
    "bin_upper",
    "count",
    "mean_predicted",
    "observed_rate",
)

#: Labels of ``classes_``: 0 = active, 1 = churned (columns of ``predict_proba``).
CLASSES: Final = (0, 1)
#: ``predict`` calls a customer churned from this calibrated probability on.
DECISION_THRESHOLD: Final = 0.5

FloatArray = NDArray[np.float64]

_FEATURES: Final = FeatureChecks("churn")


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """XGBoost (hist trees) binary classifier of churn with a probability calibrator.

    scikit-learn estimator: keyword-only hyperparameters, ``clone``/``get_params``/
    ``set_params`` from ``BaseEstimator``, ``predict_proba`` of shape ``(n, 2)`` (columns
    ``classes_ = [0, 1]``: active, churned) and ``predict`` (churned when P >= 0.5).

    Parameters
    ----------
    n_estimators, max_depth, learning_rate : XGBoost settings (config ``churn.*``).
    early_stopping_rounds : int
        Rounds without validation log-loss improvement before training stops.
    validation_fraction : float
        Share of customers in the stratified validation split (early stopping, calibration).
    calibration : {"isotonic", "sigmoid", "none"}
        Calibrator fitted on the validation predictions.
    random_state : int
        Seed of the split and the booster.
    n_jobs : int or None
        Training threads; ``-1`` every core; ``None`` (default) every core, or fewer for a small
        training set (one per ``ROWS_PER_THREAD`` rows), where threads cost more than they save.
        Predictions take one thread per ``ROWS_PER_THREAD`` rows up to every core whatever
        ``n_jobs`` is (their values do not depend on the thread count).
    max_train_rows : int or None
        Above this many rows, the booster and its calibrator see a seeded sample of this size,
        stratified by label (the churn rate is kept). ``None`` (default): every row.

    Attributes
    ----------
    classes_ : ndarray
        ``[0, 1]``: 0 = active, 1 = churned (the column order of ``predict_proba``).
    feature_names_in_ : list[str]
        Columns seen at fit, in order; ``predict_proba`` requires exactly these.
    best_iteration_ : int
        Zero-based best boosting round; the kept booster has ``best_iteration_ + 1`` trees.
    feature_importances_ : dict[str, float]
        Average gain of each feature's splits (xgboost's ``"gain"``; 0.0 for unused features).
    calibrator_ : dict
        ``{"method": "isotonic", "x": [...], "y": [...]}`` (piecewise-linear, clipped),
        ``{"method": "sigmoid", "a": ..., "b": ...}`` (p = expit(a * margin + b)) or
        ``{"method": "none"}`` (p = expit(margin)).
    reliability_table_ : pandas.DataFrame
        Per probability bin of the validation split, before and after calibration: count,
        mean predicted probability, observed churn rate. The calibrated rows are in-sample
        for the calibrator (fitted on the same split), so they flatter it.
    base_rate_ : float
        Churn rate of the training labels (train and validation together).
    n_train_, n_validation_ : int
        Sizes of the two splits.
    """

    def __init__(
        self,
        *,
        n_estimators: int = DEFAULT_CHURN_N_ESTIMATORS,
        max_depth: int = DEFAULT_CHURN_MAX_DEPTH,
        learning_rate: float = DEFAULT_CHURN_LEARNING_RATE,
        early_stopping_rounds: int = DEFAULT_CHURN_EARLY_STOPPING_ROUNDS,
        validation_fraction: float = DEFAULT_CHURN_VALIDATION_FRACTION,
        calibration: str = "isotonic",
        random_state: int = DEFAULT_RANDOM_SEED,
        n_jobs: int | None = None,
        max_train_rows: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.calibration = calibration
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_train_rows = max_train_rows

    # --- fitting ------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> Self:
        """Fit on numeric features ``X`` and labels ``y`` (1 = churned, 0 = active)."""
        self._check_params()
        names = _FEATURES.feature_names(X)
        matrix = _FEATURES.numeric_matrix(X, names, "fit")
        labels = _binary_labels(y, len(X))
        rows = stratified_sample(labels, self.max_train_rows, self.random_state)
        if rows is not None:
            logger.info("churn booster: stratified sample of %d of %d rows (max_train_rows)", rows.size, labels.size)
            X, matrix, labels = X.iloc[rows], matrix[rows], labels[rows]
        train_idx, val_idx = _stratified_split(labels, self.validation_fraction, self.random_state)

        booster, best = self._train(X, labels, train_idx, val_idx)
        val_margin = _margins(booster, matrix[val_idx])
        raw = expit(val_margin)
        calibrator = fit_calibrator(self.calibration, val_margin, labels[val_idx])

        self.classes_ = np.array(CLASSES)
        self.feature_names_in_ = names
        self.n_features_in_ = len(names)
        self.booster_ = booster
        self.best_iteration_ = best
        self.calibrator_ = calibrator
        self.feature_importances_ = gain_importances(booster, names)
        self.reliability_table_ = pd.concat(
            [
                reliability_table(labels[val_idx], raw, STAGE_UNCALIBRATED),
                reliability_table(
                    labels[val_idx], apply_calibrator(calibrator, val_margin), STAGE_CALIBRATED
                ),
            ],
            ignore_index=True,
        )
        self.base_rate_ = float(labels.mean())
        self.n_train_, self.n_validation_ = int(train_idx.size), int(val_idx.size)
        logger.info(
            "churn booster: best iteration %d of %d, %d train / %d validation customers, "
            "base rate %.3f, calibration %s",
            best,
            self.n_estimators,
            self.n_train_,
            self.n_validation_,
            self.base_rate_,
            self.calibration,
        )
        return self

    def _train(
        self,
        X: pd.DataFrame,
        labels: NDArray[np.int64],
        train_idx: NDArray[np.intp],
        val_idx: NDArray[np.intp],
    ) -> tuple[Any, int]:
        import xgboost as xgb

        frame = X.astype("float64")
        classifier = xgb.XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            early_stopping_rounds=self.early_stopping_rounds,
            eval_metric="logloss",
            objective="binary:logistic",
            tree_method="hist",
            n_jobs=threads(self.n_jobs, train_idx.size),
            random_state=self.random_state,
        )
        classifier.fit(
            frame.iloc[train_idx],
            labels[train_idx],
            eval_set=[(frame.iloc[val_idx], labels[val_idx])],
            verbose=False,
        )
        best = int(classifier.best_iteration)
        booster = classifier.get_booster()[: best + 1]  # keep only the trees predictions use
        booster.set_param({"nthread": threads(self.n_jobs)})
        return booster, best

    def _check_params(self) -> None:
        for name in ("n_estimators", "max_depth", "early_stopping_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise UserInputError(
                    f"ChurnClassifier {name} must be a whole number >= 1, got {value!r}"
                )
        check_n_jobs(self)
        check_max_train_rows(self, 2 * MIN_CHURN_CLASS_COUNT)
        if not (0 < float(self.learning_rate) <= 1):
            raise UserInputError(
                f"ChurnClassifier learning_rate must be in (0, 1], got {self.learning_rate!r}"
            )
        if not (0 < float(self.validation_fraction) < 1):
            raise UserInputError(
                f"ChurnClassifier validation_fraction must be in (0, 1), got {self.validation_fraction!r}"
            )
        if self.calibration not in CALIBRATIONS:
            raise UserInputError(
                f"ChurnClassifier calibration must be one of {list(CALIBRATIONS)}, got {self.calibration!r}"
            )
        if isinstance(self.random_state, bool) or not isinstance(
            self.random_state, int | np.integer
        ):
            raise UserInputError(
                f"ChurnClassifier random_state must be an integer seed, got {self.random_state!r}"
            )

    # --- prediction ---------------------------------------------------------------

    def predict_proba(self, X: pd.DataFrame) -> FloatArray:
        """``[P(active), P(churn)]`` per row of ``X`` (shape ``(n, 2)``); the fitted columns in order.

        ``P(churn) = g(f(x))``: ``f`` the booster's margin, ``g`` the calibrator.
        """
        matrix = _FEATURES.prediction_matrix(self, X)
        churn = apply_calibrator(self.calibrator_, _margins(self.booster_, matrix))
        return np.column_stack([1.0 - churn, churn])

    def predict(self, X: pd.DataFrame) -> NDArray[np.int64]:
        """1 (churned) where ``P(churn) >= 0.5``, else 0 (active)."""
        return (self.predict_proba(X)[:, 1] >= DECISION_THRESHOLD).astype(np.int64)

    # --- serialisation ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state except the booster (see :meth:`booster_json`)."""
        return {
            **booster_state(self, MODEL_KIND, FORMAT_VERSION),
            "calibrator": plain(self.calibrator_),
            "feature_importances": {k: float(v) for k, v in self.feature_importances_.items()},
            "reliability_table": [
                plain(r) for r in self.reliability_table_.to_dict(orient="records")
            ],
            "base_rate": self.base_rate_,
            "n_train": self.n_train_,
            "n_validation": self.n_validation_,
        }

    def booster_json(self) -> str:
        """The booster in xgboost's JSON model format."""
        return booster_to_json(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], booster_json: str | bytes) -> ChurnClassifier:
        """Rebuild a fitted classifier from :meth:`to_dict` and :meth:`booster_json` output."""
        check_kind(data, MODEL_KIND, FORMAT_VERSION)
        model = cls(**data["params"])
        _FEATURES.restore_booster(model, data, booster_json, threads(model.n_jobs))
        model.classes_ = np.array(CLASSES)
        model.calibrator_ = dict(data["calibrator"])
        model.feature_importances_ = {k: float(v) for k, v in data["feature_importances"].items()}
        model.reliability_table_ = pd.DataFrame(
            data["reliability_table"], columns=list(RELIABILITY_COLUMNS)
        )
        model.base_rate_ = float(data["base_rate"])
        model.n_train_, model.n_validation_ = int(data["n_train"]), int(data["n_validation"])
        return model


# --- calibration -------------------------------------------------------------------


def fit_calibrator(method: str, margin: FloatArray, y: NDArray[np.int64]) -> dict[str, Any]:
    """Calibrator of booster margins on validation labels (see ``ChurnClassifier.calibrator_``)."""
    if method == "none":
        return {"method": "none"}
    if method == "sigmoid":
        a, b = _platt(margin, y)
        return {"method": "sigmoid", "a": a, "b": b}
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(expit(margin), y.astype(float))
    return {
        "method": "isotonic",
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
    }


def apply_calibrator(calibrator: Mapping[str, Any], margin: FloatArray) -> FloatArray:
    """Calibrated probabilities from booster margins."""
    method = calibrator["method"]
    if method == "none":
        return expit(margin)
    if method == "sigmoid":
        return expit(calibrator["a"] * margin + calibrator["b"])
    if method == "isotonic":
        # IsotonicRegression.predict with out_of_bounds="clip" is this interpolation
        return np.interp(expit(margin), np.asarray(calibrator["x"]), np.asarray(calibrator["y"]))
    raise UserInputError(
        f"unknown churn calibrator method {method!r}; expected one of {list(CALIBRATIONS)}"
    )


def _platt(margin: FloatArray, y: NDArray[np.int64]) -> tuple[float, float]:
    """Platt (1999) scaling p = expit(a f + b), with his smoothed targets against overfitting."""
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    target = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(ab: FloatArray) -> tuple[float, FloatArray]:
        z = ab[0] * margin + ab[1]
        nll = -np.sum(target * log_expit(z) + (1.0 - target) * log_expit(-z))
        residual = expit(z) - target
        return float(nll), np.array([np.sum(residual * margin), np.sum(residual)])

    result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="BFGS")
    a, b = (float(v) for v in result.x)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise UserInputError(
            "Platt calibration failed (non-finite coefficients); use churn.calibration: isotonic"
        )
    return a, b


def reliability_table(
    y: ArrayLike, probability: ArrayLike, stage: str, n_bins: int = RELIABILITY_BINS
) -> pd.DataFrame:
    """Count, mean predicted probability and observed rate per equal-width probability bin."""
    p = np.asarray(probability, dtype=float)
    obs = np.asarray(y, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    used = counts > 0
    mean_p = np.bincount(bins, weights=p, minlength=n_bins)[used] / counts[used]
    rate = np.bincount(bins, weights=obs, minlength=n_bins)[used] / counts[used]
    idx = np.flatnonzero(used)
    return pd.DataFrame(
        {
            "stage": stage,
            "bin": idx,
            "bin_lower": edges[idx],
            "bin_upper": edges[idx + 1],
            "count": counts[used],
            "mean_predicted": mean_p,
            "observed_rate": rate,
        },
        columns=list(RELIABILITY_COLUMNS),
    )


# --- input checks ------------------------------------------------------------------


def _binary_labels(y: ArrayLike, n_rows: int) -> NDArray[np.int64]:
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size != n_rows:
        raise UserInputError(f"churn labels have {arr.size} values for {n_rows} feature rows")
    if np.isnan(arr).any():
        raise UserInputError(
            f"churn labels have {int(np.isnan(arr).sum())} missing value(s): every customer in the "
            "features needs a label (are they known at the cut-off?)"
        )
    if not np.isin(arr, (0.0, 1.0)).all():
        raise UserInputError(
            f"churn labels must be 0 or 1, got values {np.unique(arr)[:MAX_EXAMPLE_ROWS].tolist()}"
        )
    labels = arr.astype(np.int64)
    counts = np.bincount(labels, minlength=2)
    if counts.min() < MIN_CHURN_CLASS_COUNT:
        raise UserInputError(
            f"churn labels need at least {MIN_CHURN_CLASS_COUNT} customers of each class for a "
            f"stratified validation split; got {counts[0]} active and {counts[1]} churned. "
            "Change churn.window_days or churn.inner_cutoff"
        )
    return labels


def _stratified_split(
    labels: NDArray[np.int64], fraction: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    from sklearn.model_selection import train_test_split

    index = np.arange(labels.size)
    try:
        train, val = train_test_split(index, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as exc:
        raise UserInputError(
            f"cannot split {labels.size} labelled customers into train and validation with "
            f"churn.validation_fraction={fraction}: {exc}"
        ) from exc
    return np.sort(train), np.sort(val)


def _margins(booster: Any, matrix: FloatArray) -> FloatArray:
    return np.asarray(predict(booster, matrix, predict_type="margin"), dtype=np.float64)
