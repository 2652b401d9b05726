"""Value components of the blend: the Gamma-Gamma posterior over every purchase, and the bounded weight search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.blend import ValueBlend, all_purchases_order_value, window_components
from clvkit.models.gamma_gamma import GammaGammaModel


def _gamma_gamma(p: float = 6.25, q: float = 3.74, v: float = 15.44) -> GammaGammaModel:
    return GammaGammaModel.from_dict({**GammaGammaModel().fit(_spend_rows()).to_dict(),
                                      "params": {"p": p, "q": q, "v": v}})


def _spend_rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frequency = rng.integers(1, 6, 300).astype(float)
    return pd.DataFrame({schemas.FREQUENCY: frequency, schemas.MONETARY_VALUE: rng.gamma(6.0, 5.0, 300)})


def _table() -> pd.DataFrame:
    return pd.DataFrame({schemas.FREQUENCY: [0.0, 0.0, 2.0, 5.0], schemas.RECENCY: [0.0, 0.0, 10.0, 30.0],
                         schemas.T: [20.0, 20.0, 30.0, 40.0], schemas.MONETARY_VALUE: [0.0, 0.0, 40.0, 25.0],
                         "total_spend": [10.0, 90.0, 95.0, -5.0], "tenure_days": [140.0, 140.0, 210.0, 280.0]},
                        index=pd.Index(["a", "b", "c", "d"], name=schemas.CUSTOMER_ID))


def test_all_purchases_order_value_is_the_gamma_gamma_posterior_over_x_plus_one_purchases() -> None:
    p, q, v = 6.25, 3.74, 15.44
    value = all_purchases_order_value(_table(), _gamma_gamma(p, q, v))
    spend = np.array([10.0, 90.0, 95.0, 0.0])  # a negative net total counts as no spend
    n = np.array([1.0, 1.0, 3.0, 6.0])
    expected = p * (v + spend) / (p * n + q - 1.0)
    expected[3] = p * v / (q - 1.0)  # no positive spend: the population mean
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert value[1] > value[0]  # one-time buyers are told apart by their first purchase
    assert all_purchases_order_value(_table().drop(columns="total_spend"), _gamma_gamma()) is None


def test_window_components_share_one_purchase_forecast() -> None:
    table = _table()
    rng = np.random.default_rng(1)
    t_fit = rng.uniform(10.0, 40.0, 500)
    x_fit = rng.poisson(2.0, 500).astype(float)
    r_fit = np.where(x_fit > 0, t_fit * rng.uniform(0.2, 1.0, 500), 0.0)
    fitted = BetaGeoModel().fit(pd.DataFrame({schemas.FREQUENCY: x_fit, schemas.RECENCY: r_fit, schemas.T: t_fit}))
    purchase = BetaGeoModel.from_dict({**fitted.to_dict(), "params": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}})
    gamma_gamma = _gamma_gamma()
    order_value = gamma_gamma.expected_order_value(table[schemas.FREQUENCY], table[schemas.MONETARY_VALUE])
    components = window_components(table, purchase, gamma_gamma, order_value, 91.0, "W")
    f, r, t = (table[c].to_numpy(dtype=float) for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))
    purchases = purchase.expected_purchases(13.0, f, r, t)
    np.testing.assert_allclose(components["btyd"], purchases * order_value, rtol=1e-12)
    np.testing.assert_allclose(components["btyd_all"], purchases * all_purchases_order_value(table, gamma_gamma))
    assert list(components.columns) == ["btyd", "historical", "btyd_all"]
    assert "btyd_all" not in window_components(table.drop(columns="total_spend"), purchase, gamma_gamma,
                                               order_value, 91.0, "W")


def test_weight_search_on_a_sample_keeps_the_calibration_on_everyone() -> None:
    rng = np.random.default_rng(3)
    actual = rng.gamma(1.0, 10.0, 3000) * (rng.random(3000) < 0.5)
    components = pd.DataFrame({"btyd": actual + rng.gamma(1, 3, 3000), "historical": rng.gamma(1, 5, 3000)})
    full = ValueBlend(source="blend").fit(components, actual)
    sampled = ValueBlend(source="blend", max_search_customers=1000).fit(components, actual)
    assert sampled.weights_["btyd"] >= 0.8 and full.weights_["btyd"] >= 0.8
    assert sampled.predict(components).sum() == pytest.approx(actual.sum())
    again = ValueBlend(source="blend", max_search_customers=1000).fit(components, actual)
    assert again.weights_ == sampled.weights_  # seeded


def test_tenure_normalised_features_turn_counts_into_rates_and_keep_the_order() -> None:
    """Numeric columns minus tenure-dependent counts and margin share, then the rates, then the components; the
    array form (what the scorer predicts from) holds the same numbers under the same names."""
    from clvkit.models.blend import tenure_normalised_columns, tenure_normalised_features

    table = _table().assign(days_since_last_purchase=[140, 140, 20, 0], margin_share=0.3, r_score=[1, 1, 3, 5],
                            rfm_segment=["Lost", "Lost", "Loyal", "Champions"], frequency_flag=[False, False, True, True])
    components = pd.DataFrame({"btyd_window_value": [1.0, 2.0, 3.0, 4.0]}, index=table.index)
    out = tenure_normalised_features(table, components, "W")
    tenure = table["tenure_days"].to_numpy() + 1.0
    assert list(out.columns) == ["monetary_value", "days_since_last_purchase", "r_score", "frequency_flag",
                                 "purchase_days_per_day", "recency_share", "spend_per_day", "inactive_share",
                                 "btyd_window_value"]
    assert (out.dtypes == np.float64).all() and out.index.equals(table.index)
    np.testing.assert_array_equal(out["purchase_days_per_day"], (table["frequency"] + 1.0) / tenure)
    np.testing.assert_array_equal(out["recency_share"], table["recency"] * 7.0 / tenure)
    np.testing.assert_array_equal(out["spend_per_day"], np.clip(table["total_spend"], 0, None) / tenure)
    np.testing.assert_array_equal(out["inactive_share"], table["days_since_last_purchase"] / tenure)
    np.testing.assert_array_equal(out["frequency_flag"], [0.0, 0.0, 1.0, 1.0])
    numeric = table.select_dtypes(include=["number", "bool"])
    arrays = tenure_normalised_columns({c: numeric[c].to_numpy(dtype=float) for c in numeric.columns}, "W",
                                       {"btyd_window_value": components["btyd_window_value"].to_numpy()})
    assert list(arrays) == list(out.columns)
    for name, values in arrays.items():
        np.testing.assert_array_equal(values, out[name].to_numpy())


def test_blend_predicts_the_same_from_a_frame_or_arrays() -> None:
    blend = ValueBlend.from_dict({"source": "blend", "weights": {"btyd": 0.4, "historical": 0.6},
                                  "offsets": {"btyd": 0.5, "historical": 0.5}, "calibration": 1.2})
    frame = pd.DataFrame({"btyd": [0.0, 1.0, 5.0], "historical": [2.0, 0.0, 7.0]})
    arrays = {c: frame[c].to_numpy() for c in frame.columns}
    np.testing.assert_array_equal(blend.predict(frame), blend.predict(arrays))
    expected = 1.2 * np.exp(0.4 * np.log(frame["btyd"] + 0.5) + 0.6 * np.log(frame["historical"] + 0.5))
    np.testing.assert_allclose(blend.predict(arrays), expected, rtol=1e-12)


def test_tenure_normalised_features_are_writable_without_touching_the_callers_table() -> None:
    import datetime as dt

    from clvkit.data.simulate import simulate_transactions
    from clvkit.features.builder import FeatureBuilder
    from clvkit.models.blend import tenure_normalised_features

    table = FeatureBuilder().fit_transform(simulate_transactions(300, seed=1).transactions, as_of=dt.date(2021, 6, 1))
    before = table.copy(deep=True)
    components = pd.DataFrame({"btyd_window_value": np.ones(len(table))}, index=table.index)
    features = tenure_normalised_features(table, components, "W")
    for column in features.columns:
        features.loc[:, column] = features[column] * 2 + 1
    pd.testing.assert_frame_equal(table, before)
