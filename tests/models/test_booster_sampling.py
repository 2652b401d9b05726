"""Bounded boosters: the seeded, stratified training sample of ``max_train_rows`` (value and churn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.exceptions import UserInputError
from clvkit.models._xgboost import stratified_sample, value_strata
from clvkit.models.churn import ChurnClassifier
from clvkit.models.value_regressor import ValueRegressor

FAST = {"n_estimators": 60, "learning_rate": 0.2, "early_stopping_rounds": 10}


def _data(n: int, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.gamma(2.0, 1.0, n), "x3": rng.random(n)})
    spend = np.where(rng.random(n) < 0.4 + 0.2 * (X["x1"] > 0), 0.0, rng.gamma(2.0, 10.0, n) * (1 + X["x2"]))
    churned = (rng.random(n) < 1 / (1 + np.exp(-(X["x1"] - 1.5)))).astype(int)  # ~20 % churned
    return X, spend, churned


def test_stratified_sample_keeps_size_shares_and_is_seeded():
    rng = np.random.default_rng(0)
    strata = (rng.random(50_000) < 0.03).astype(np.int64)
    kept = stratified_sample(strata, 1_000, seed=1)
    assert kept.size == 1_000 and np.unique(kept).size == 1_000 and np.all(np.diff(kept) > 0)
    assert strata[kept].mean() == pytest.approx(strata.mean(), abs=1e-3)
    assert np.array_equal(kept, stratified_sample(strata, 1_000, seed=1))
    assert not np.array_equal(kept, stratified_sample(strata, 1_000, seed=2))
    assert stratified_sample(strata, None, seed=1) is None
    assert stratified_sample(strata, 50_000, seed=1) is None


def test_stratified_sample_keeps_a_rare_stratum():
    strata = np.r_[np.zeros(9_999, dtype=np.int64), 1]
    kept = stratified_sample(strata, 10, seed=0)
    assert kept.size == 10 and strata[kept].sum() == 1


def test_value_strata_zero_then_positive_deciles():
    target = np.r_[np.zeros(500), np.arange(1, 1_001, dtype=float)]
    strata = value_strata(target, 10)
    assert (strata[:500] == 0).all()
    assert np.bincount(strata[500:])[1:].tolist() == [100] * 10


def test_value_regressor_trains_on_the_sample_and_balances_on_every_row():
    X, spend, _ = _data(6_000)
    model = ValueRegressor(**FAST, max_train_rows=2_000).fit(X, spend)
    assert model.n_train_ + model.n_validation_ == 2_000
    assert model.predict(X).sum() == pytest.approx(spend.sum(), rel=1e-6)  # balance over all rows
    again = ValueRegressor(**FAST, max_train_rows=2_000).fit(X, spend)
    np.testing.assert_array_equal(model.predict(X), again.predict(X))
    full = ValueRegressor(**FAST).fit(X, spend)
    assert full.n_train_ + full.n_validation_ == 6_000
    assert not np.array_equal(model.predict(X), full.predict(X))


def test_churn_classifier_sample_keeps_the_churn_rate():
    X, _, churned = _data(6_000)
    model = ChurnClassifier(**FAST, max_train_rows=1_500).fit(X, churned)
    assert model.n_train_ + model.n_validation_ == 1_500
    assert model.base_rate_ == pytest.approx(churned.mean(), abs=1e-3)
    p = model.predict_proba(X)[:, 1]
    assert np.all((p >= 0) & (p <= 1))


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, True, "100"])
def test_max_train_rows_is_checked(bad):
    X, spend, churned = _data(200)
    with pytest.raises(UserInputError, match="max_train_rows"):
        ValueRegressor(**FAST, max_train_rows=bad).fit(X, spend)
    with pytest.raises(UserInputError, match="max_train_rows"):
        ChurnClassifier(**FAST, max_train_rows=bad).fit(X, churned)
