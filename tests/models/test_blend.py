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
