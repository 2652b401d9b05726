"""Churn classifier: discrimination and calibration on simulated data, determinism, errors, JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from clvkit.exceptions import FeatureMismatchError, NotFittedError, UserInputError
from clvkit.features.labels import churn_labels
from clvkit.models.churn import ChurnClassifier, reliability_table

WINDOW_DAYS = 90
FEATURES = ["frequency", "recency", "T", "monetary_value"]
#: AUC threshold: ~1,000 held-out customers with ~110 non-churners give an AUC standard
#: error near 0.03 (Hanley & McNeil 1982); observed AUCs are 0.81-0.84, so 0.70 is >3 SE
#: below them and >6 SE above chance.
MIN_AUC = 0.70
#: Mean calibrated probability vs held-out churn rate: binomial SE of a rate near 0.9 over
#: ~1,000 customers is ~0.01, plus the calibrator's own error on ~200 validation customers.
BASE_RATE_ATOL = 0.04


@pytest.fixture(scope="module")
def churn_data(simulation, make_summary) -> tuple[pd.DataFrame, pd.Series]:
    """Features at an inner cut-off 90 days before the end of observation, labels after it."""
    end = pd.Timestamp(simulation.params.start_date) + pd.Timedelta(days=simulation.params.observation_days)
    cutoff = end - pd.Timedelta(days=WINDOW_DAYS)
    features = make_summary(simulation.transactions, cutoff)[FEATURES]
    labels = churn_labels(simulation.transactions, cutoff, WINDOW_DAYS).reindex(features.index)
    return features, labels


@pytest.fixture(scope="module")
def split(churn_data):
    X, y = churn_data
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[: len(X) // 2], order[len(X) // 2 :]
    return X.iloc[train], y.iloc[train], X.iloc[test], y.iloc[test]


@pytest.fixture(scope="module")
def fitted(split) -> ChurnClassifier:
    X, y, _, _ = split
    return ChurnClassifier().fit(X, y.to_numpy())


@pytest.mark.parametrize("calibration", ["isotonic", "sigmoid", "none"])
def test_discriminates_and_is_calibrated(split, calibration) -> None:
    X, y, X_test, y_test = split
    model = ChurnClassifier(calibration=calibration).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    p = proba[:, 1]
    assert np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(y_test, p) > MIN_AUC
    assert p.mean() == pytest.approx(y_test.mean(), abs=BASE_RATE_ATOL)


def test_fit_state(fitted: ChurnClassifier, split) -> None:
    X, y, _, _ = split
    assert fitted.feature_names_in_ == FEATURES
    assert 0 <= fitted.best_iteration_ < fitted.n_estimators
    assert fitted.booster_.num_boosted_rounds() == fitted.best_iteration_ + 1
    assert set(fitted.feature_importances_) == set(FEATURES)
    assert all(v >= 0 for v in fitted.feature_importances_.values())
    assert fitted.n_train_ + fitted.n_validation_ == len(X)
    assert fitted.n_validation_ == pytest.approx(0.2 * len(X), abs=1)
    assert fitted.base_rate_ == pytest.approx(float(y.mean()))
    assert fitted.calibrator_["method"] == "isotonic"
    assert all(type(v) is float for v in fitted.calibrator_["x"])


def test_reliability_table(fitted: ChurnClassifier) -> None:
    table = fitted.reliability_table_
    assert list(table.columns) == ["stage", "bin", "bin_lower", "bin_upper", "count", "mean_predicted", "observed_rate"]
    for stage in ("uncalibrated", "calibrated"):
        rows = table[table["stage"] == stage]
        assert rows["count"].sum() == fitted.n_validation_
        assert rows["mean_predicted"].between(rows["bin_lower"], rows["bin_upper"]).all()


def test_reliability_table_bins() -> None:
    table = reliability_table([0, 1, 1, 0], [0.05, 0.07, 0.95, 1.0], "s", n_bins=10)
    assert table["bin"].tolist() == [0, 9]
    assert table["count"].tolist() == [2, 2]
    assert table["observed_rate"].tolist() == [0.5, 0.5]


def test_deterministic(split) -> None:
    X, y, X_test, _ = split
    first = ChurnClassifier(random_state=5).fit(X, y).predict_proba(X_test)
    second = ChurnClassifier(random_state=5).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(first, second)


def test_serialisation_round_trip_gives_identical_predictions(fitted: ChurnClassifier, split) -> None:
    _, _, X_test, _ = split
    state = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    booster = fitted.booster_json()
    assert isinstance(booster, str) and json.loads(booster)["learner"]
    restored = ChurnClassifier.from_dict(state, booster)
    np.testing.assert_array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))
    assert restored.get_params() == fitted.get_params()
    assert restored.best_iteration_ == fitted.best_iteration_
    pd.testing.assert_frame_equal(restored.reliability_table_, fitted.reliability_table_, check_dtype=False)
    assert ChurnClassifier.from_dict(state, booster.encode()).predict_proba(X_test).shape == (len(X_test), 2)
    np.testing.assert_array_equal(restored.classes_, [0, 1])


@pytest.mark.parametrize("calibration", ["sigmoid", "none"])
def test_round_trip_other_calibrators(split, calibration) -> None:
    X, y, X_test, _ = split
    model = ChurnClassifier(calibration=calibration, n_estimators=20).fit(X, y)
    restored = ChurnClassifier.from_dict(json.loads(json.dumps(model.to_dict())), model.booster_json())
    np.testing.assert_array_equal(restored.predict_proba(X_test), model.predict_proba(X_test))


def test_from_dict_rejects_a_foreign_booster(fitted: ChurnClassifier, split) -> None:
    X, y, _, _ = split
    other = ChurnClassifier(n_estimators=5).fit(X.rename(columns={"T": "age"}), y)
    with pytest.raises(UserInputError, match="churn booster JSON has features"):
        ChurnClassifier.from_dict(fitted.to_dict(), other.booster_json())


def test_feature_mismatch_names_missing_and_extra_columns(fitted: ChurnClassifier, split) -> None:
    X_test = split[2]
    with pytest.raises(FeatureMismatchError, match=r"missing \['T'\], unexpected \['age'\]"):
        fitted.predict_proba(X_test.rename(columns={"T": "age"}))
    with pytest.raises(FeatureMismatchError, match=r"missing \[\], unexpected \['extra'\]"):
        fitted.predict_proba(X_test.assign(extra=1.0))
    with pytest.raises(FeatureMismatchError, match="different order than at fit"):
        fitted.predict_proba(X_test[FEATURES[::-1]])
    with pytest.raises(FeatureMismatchError, match="must be a DataFrame with columns"):
        fitted.predict_proba(X_test.to_numpy())


def test_rejects_non_numeric_features(split) -> None:
    X, y, _, _ = split
    with pytest.raises(UserInputError, match=r"non-numeric column\(s\) \{'segment': '(object|str)'\}"):
        ChurnClassifier().fit(X.assign(segment="a"), y)


def test_missing_feature_values_are_allowed(split) -> None:
    X, y, X_test, _ = split
    holes = X.copy()
    holes.iloc[::7, 3] = np.nan
    model = ChurnClassifier(n_estimators=20).fit(holes, y)
    assert np.isfinite(model.predict_proba(X_test.assign(monetary_value=np.nan))).all()


def test_rejects_infinite_features(split) -> None:
    X, y, _, _ = split
    with pytest.raises(UserInputError, match=r"infinite values in column\(s\) \['recency'\]"):
        ChurnClassifier().fit(X.assign(recency=np.inf), y)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (lambda y: np.where(np.arange(y.size) == 0, np.nan, y), r"churn labels have 1 missing value\(s\)"),
        (lambda y: y * 2, "churn labels must be 0 or 1"),
        (lambda y: np.ones(y.size), "need at least 2 customers of each class for a stratified validation split; got 0 active"),
        (lambda y: y[:-1], "churn labels have .* values for .* feature rows"),
    ],
)
def test_rejects_bad_labels(split, labels, message) -> None:
    X, y, _, _ = split
    with pytest.raises(UserInputError, match=message):
        ChurnClassifier().fit(X, labels(y.to_numpy().astype(float)))


def test_split_too_small_for_both_classes() -> None:
    X = pd.DataFrame({"a": np.arange(4.0)})
    with pytest.raises(UserInputError, match=r"cannot split 4 labelled customers .*churn\.validation_fraction=0\.2"):
        ChurnClassifier().fit(X, [0, 0, 1, 1])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"calibration": "platt"}, r"calibration must be one of \['isotonic', 'sigmoid', 'none'\]"),
        ({"n_estimators": 0}, "n_estimators must be a whole number >= 1"),
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\]"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \(0, 1\)"),
        ({"random_state": None}, "random_state must be an integer seed"),
        ({"n_jobs": 0}, r"n_jobs must be a whole number >= 1, or None/-1 for every core, got 0"),
    ],
)
def test_invalid_hyperparameters(split, params, message) -> None:
    X, y, _, _ = split
    model = ChurnClassifier(**params)
    assert all(getattr(model, k) == v or v != v for k, v in params.items())  # stored verbatim
    with pytest.raises(UserInputError, match=message):
        model.fit(X, y)


def test_feature_names_must_be_strings(split) -> None:
    X, y, _, _ = split
    with pytest.raises(UserInputError, match="feature names must be strings without"):
        ChurnClassifier().fit(X.rename(columns={"T": "T[0]"}), y)


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="ChurnClassifier is not fitted yet"):
        ChurnClassifier().predict_proba(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ChurnClassifier().booster_json()


def test_scikit_learn_contract(fitted: ChurnClassifier, split) -> None:
    """clone/get_params/set_params, keyword-only parameters, classes_, predict from predict_proba."""
    from sklearn.base import clone, is_classifier

    X, _, X_test, _ = split
    assert is_classifier(fitted)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "booster_")
    assert copy.set_params(max_depth=2, calibration="none") is copy
    assert (copy.max_depth, copy.calibration) == (2, "none")
    with pytest.raises(TypeError):
        ChurnClassifier(100)  # type: ignore[misc]  # keyword-only
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    predicted = fitted.predict(X_test)
    np.testing.assert_array_equal(predicted, (fitted.predict_proba(X_test)[:, 1] >= 0.5).astype(int))
    assert set(np.unique(predicted)) <= {0, 1}
    assert "max_depth" in repr(ChurnClassifier(max_depth=3))


def test_default_uses_every_core_except_on_small_training_sets() -> None:
    import os

    from clvkit.models._xgboost import ROWS_PER_THREAD, threads

    cores = os.cpu_count() or 1
    assert ChurnClassifier().n_jobs is None
    assert threads(None) == threads(-1) == threads(-1, 10) == cores  # predictions, or asked for
    assert threads(None, 1_000) == 1  # a small training set: one thread
    assert threads(None, 10 * cores * ROWS_PER_THREAD) == cores
    assert threads(3, 10) == 3
