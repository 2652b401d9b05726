"""ValueRegressor: scikit-learn contract, input checks, determinism, JSON round trip, skill."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_regressor

from clvkit import schemas
from clvkit.data.simulate import Simulation
from clvkit.evaluation.metrics import normalized_gini
from clvkit.exceptions import FeatureMismatchError, NotFittedError, UserInputError
from clvkit.models.value_regressor import ValueRegressor

CALIBRATION_DAYS = 364
HOLDOUT_DAYS = 182
FAST = {"n_estimators": 150, "learning_rate": 0.1, "early_stopping_rounds": 15}


def window_value_dataset(simulation: Simulation) -> tuple[pd.DataFrame, pd.Series]:
    """RFM-style features at a cut-off and realised spend over the following window."""
    tx = simulation.transactions
    start = pd.Timestamp(simulation.params.start_date)
    cutoff = start + pd.Timedelta(days=CALIBRATION_DAYS)
    end = cutoff + pd.Timedelta(days=HOLDOUT_DAYS)
    cal = tx[tx[schemas.TIMESTAMP] < cutoff]
    hold = tx[(tx[schemas.TIMESTAMP] >= cutoff) & (tx[schemas.TIMESTAMP] < end)]
    grouped = cal.groupby(schemas.CUSTOMER_ID)
    first = grouped[schemas.TIMESTAMP].min()
    last = grouped[schemas.TIMESTAMP].max()
    weeks = pd.Timedelta(days=7)
    features = pd.DataFrame(
        {
            "frequency": grouped.size() - 1,
            "recency": (last - first) / weeks,
            "T": (cutoff - first) / weeks,
            "spend": grouped[schemas.AMOUNT].sum(),
            "mean_spend": grouped[schemas.AMOUNT].mean(),
        }
    )
    target = hold.groupby(schemas.CUSTOMER_ID)[schemas.AMOUNT].sum().reindex(features.index, fill_value=0.0)
    return features, target


@pytest.fixture(scope="module")
def dataset(simulation: Simulation) -> tuple[pd.DataFrame, pd.Series]:
    return window_value_dataset(simulation)


@pytest.fixture(scope="module")
def fitted(dataset: tuple[pd.DataFrame, pd.Series]) -> ValueRegressor:
    X, y = dataset
    return ValueRegressor(**FAST).fit(X, y)


# --- contract -----------------------------------------------------------------------


def test_init_stores_hyperparameters_verbatim_and_clones():
    model = ValueRegressor(learning_rate="bad", n_estimators=-1)
    assert model.get_params()["learning_rate"] == "bad"
    assert model.get_params()["n_estimators"] == -1
    default = ValueRegressor()
    assert default.get_params() == {
        "objective": "reg:tweedie", "tweedie_variance_power": 1.5, "n_estimators": 600, "max_depth": 4,
        "learning_rate": 0.05, "early_stopping_rounds": 30, "validation_fraction": 0.2, "random_state": 42,
        "n_jobs": None, "balance_correction": True, "max_train_rows": None,
    }
    copy = clone(ValueRegressor(max_depth=3))
    assert copy.max_depth == 3 and not hasattr(copy, "booster_")
    assert default.set_params(max_depth=2).max_depth == 2
    with pytest.raises(ValueError, match="Invalid parameter 'depth' for estimator ValueRegressor"):
        default.set_params(depth=2)
    with pytest.raises(TypeError):
        ValueRegressor("reg:tweedie")  # type: ignore[misc]  # keyword-only
    assert is_regressor(default) and "max_depth=2" in repr(default)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objective": "reg:linear"}, "objective must be one of"),
        ({"tweedie_variance_power": 2.0}, r"tweedie_variance_power must be in \(1, 2\)"),
        ({"n_estimators": 0}, "n_estimators must be a whole number >= 1"),
        ({"max_depth": 2.5}, "max_depth must be a whole number >= 1"),
        ({"early_stopping_rounds": 0}, "early_stopping_rounds must be a whole number >= 1"),
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\]"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \(0, 1\)"),
        ({"random_state": None}, "random_state must be an integer seed"),
        ({"n_jobs": True}, "n_jobs must be a whole number >= 1, or None/-1 for every core"),
        ({"balance_correction": "yes"}, "balance_correction must be True or False"),
    ],
)
def test_hyperparameters_are_validated_in_fit(params, message):
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(UserInputError, match=message):
        ValueRegressor(**params).fit(X, [0.0, 1.0, 2.0, 3.0])


def test_not_fitted_errors():
    model = ValueRegressor()
    for call in (lambda: model.predict(pd.DataFrame({"a": [1.0]})), model.to_dict, model.booster_json):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


def test_fit_returns_self_and_sets_fitted_state(dataset):
    X, y = dataset
    model = ValueRegressor(**FAST)
    assert model.fit(X, y) is model
    assert model.feature_names_in_ == list(X.columns)
    assert model.n_features_in_ == X.shape[1]
    assert set(model.feature_importances_) == set(X.columns)
    assert model.n_train_ + model.n_validation_ == len(X)
    assert model.n_validation_ == round(0.2 * len(X))
    assert model.booster_.num_boosted_rounds() == model.best_iteration_ + 1


# --- input checks -------------------------------------------------------------------


def test_feature_mismatch_names_missing_extra_and_order(fitted, dataset):
    X, _ = dataset
    with pytest.raises(FeatureMismatchError, match=r"missing \['spend'\], unexpected \['bonus'\]"):
        fitted.predict(X.drop(columns="spend").assign(bonus=1.0))
    with pytest.raises(FeatureMismatchError, match="different order"):
        fitted.predict(X[list(X.columns[::-1])])
    with pytest.raises(FeatureMismatchError, match="must be a DataFrame"):
        fitted.predict(X.to_numpy())


def test_non_numeric_infinite_and_bad_targets_are_refused():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "segment": ["x", "y", "x", "y"]})
    y = [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(UserInputError, match=r"non-numeric column\(s\) \{'segment': '(object|str)'\}"):
        ValueRegressor().fit(X, y)
    with pytest.raises(UserInputError, match=r"infinite values in column\(s\) \['a'\]"):
        ValueRegressor().fit(pd.DataFrame({"a": [1.0, np.inf, 3.0, 4.0]}), y)
    numeric = X[["a"]]
    with pytest.raises(UserInputError, match="must be non-negative for objective 'reg:tweedie'"):
        ValueRegressor().fit(numeric, [0.0, -1.0, 2.0, 3.0])
    with pytest.raises(UserInputError, match="y has 3 values for 4 feature rows"):
        ValueRegressor().fit(numeric, [0.0, 1.0, 2.0])
    with pytest.raises(UserInputError, match=r"y has 1 non-finite value\(s\)"):
        ValueRegressor().fit(numeric, [0.0, np.nan, 2.0, 3.0])
    with pytest.raises(UserInputError, match="must be a pandas DataFrame"):
        ValueRegressor().fit(numeric.to_numpy(), y)
    with pytest.raises(UserInputError, match="cannot split 1 customer"):
        ValueRegressor().fit(numeric.iloc[:1], y[:1])


def test_missing_values_are_allowed_and_inputs_not_mutated(dataset):
    X, y = dataset
    X = X.head(200).copy()
    X.loc[X.index[:20], "mean_spend"] = np.nan
    before = X.copy()
    pred = ValueRegressor(**FAST).fit(X, y.head(200)).predict(X)
    pd.testing.assert_frame_equal(X, before)
    assert np.isfinite(pred).all()


def test_squared_error_accepts_negative_targets_and_predictions_are_clipped():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = X["a"].to_numpy() * 10  # half negative
    pred = ValueRegressor(objective="reg:squarederror", early_stopping_rounds=None, n_estimators=50).fit(X, y).predict(X)
    assert pred.min() == 0.0


# --- behaviour ----------------------------------------------------------------------


def test_predictions_are_non_negative_and_deterministic(fitted, dataset):
    X, y = dataset
    again = ValueRegressor(**FAST).fit(X, y)
    p1, p2 = fitted.predict(X), again.predict(X)
    assert (p1 >= 0).all()
    np.testing.assert_array_equal(p1, p2)
    other_seed = ValueRegressor(**FAST, random_state=7).fit(X, y)
    assert other_seed.n_train_ == fitted.n_train_  # same split sizes, different rows
    assert not np.array_equal(p1, other_seed.predict(X))


def test_round_trip_through_json_gives_identical_predictions(fitted, dataset):
    X, _ = dataset
    state = json.loads(json.dumps(fitted.to_dict()))
    restored = ValueRegressor.from_dict(state, fitted.booster_json())
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert restored.get_params() == fitted.get_params()
    assert restored.feature_importances_ == fitted.feature_importances_
    assert restored.best_iteration_ == fitted.best_iteration_


def test_from_dict_refuses_wrong_kind_and_foreign_booster(fitted):
    state = fitted.to_dict()
    with pytest.raises(UserInputError, match="expected a serialised 'value_xgboost' model"):
        ValueRegressor.from_dict({**state, "model": "churn_xgboost"}, fitted.booster_json())
    with pytest.raises(UserInputError, match="come from different models"):
        ValueRegressor.from_dict({**state, "feature_names": ["x", "y", "z", "u", "v"]}, fitted.booster_json())


def test_balance_correction_restores_the_total_without_changing_the_ranking(fitted, dataset):
    X, y = dataset
    assert fitted.predict(X).sum() == pytest.approx(y.sum(), rel=1e-6)
    raw = ValueRegressor(**FAST, balance_correction=False).fit(X, y)
    assert raw.balance_factor_ == 1.0
    assert fitted.balance_factor_ > 1.0  # the Tweedie fit under-predicts the total here
    np.testing.assert_allclose(fitted.predict(X), raw.predict(X) * fitted.balance_factor_, rtol=1e-6)


def test_beats_a_constant_predictor_on_held_out_customers(dataset):
    X, y = dataset
    rng = np.random.default_rng(0)
    test = rng.random(len(X)) < 0.4
    model = ValueRegressor(**FAST).fit(X[~test], y[~test])
    gini = normalized_gini(y[test].to_numpy(), model.predict(X[test]))
    constant = normalized_gini(y[test].to_numpy(), np.full(int(test.sum()), y[~test].mean()))
    assert constant == pytest.approx(0.0, abs=1e-9)
    assert gini > 0.4


def test_large_batches_predict_on_every_core_with_the_same_values(fitted, dataset) -> None:
    import os

    from clvkit.models._xgboost import ROWS_PER_THREAD

    X, _ = dataset
    big = X.sample(2 * ROWS_PER_THREAD, replace=True, random_state=0).reset_index(drop=True)
    one_thread = fitted.booster_.copy()
    one_thread.set_param({"nthread": 1})
    expected = np.clip(one_thread.inplace_predict(big.to_numpy(dtype=float)).astype(float), 0.0, None) * fitted.balance_factor_
    np.testing.assert_array_equal(fitted.predict(big), expected)
    assert fitted.booster_._clvkit_nthread == min(os.cpu_count() or 1, 2)
    np.testing.assert_array_equal(fitted.predict(big.head(3)), expected[:3])
    assert fitted.booster_._clvkit_nthread == 1  # small batches (serving) on one thread
