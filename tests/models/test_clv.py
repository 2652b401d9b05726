"""Discounted CLV: parity with lifetimes where both apply, and its own definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.constants import DAYS_PER_MONTH
from clvkit.exceptions import NotFittedError
from clvkit.io.datasets import load_builtin_transactions
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.clv import discounted_clv, expected_purchases_over_horizon, monthly_discount_rate
from clvkit.models.gamma_gamma import GammaGammaModel

PARITY_RTOL = 1e-6
#: lifetimes' month lengths: 4.345 weeks for freq "W", 30 days for freq "D".
LIFETIMES_WEEKS_PER_MONTH = 4.345
LIFETIMES_DAYS_PER_MONTH = 30.0
MONTHLY_RATE = 0.01


@pytest.fixture(scope="module")
def weekly(cdnow_summary):
    return BetaGeoModel().fit(cdnow_summary), GammaGammaModel().fit(cdnow_summary), cdnow_summary


def _args(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy()


def _annual(monthly: float) -> float:
    return (1.0 + monthly) ** 12 - 1.0


def _naive_clv(bgnbd, eov, x, tx, T, month_units, months, monthly_rate, margin=1.0):
    """The definition, month by month, with BetaGeoModel.expected_purchases."""
    total = np.zeros(np.size(x))
    for k in range(1, months + 1):
        step = bgnbd.expected_purchases(k * month_units, x, tx, T) - bgnbd.expected_purchases(
            (k - 1) * month_units, x, tx, T
        )
        total += margin * eov * step / (1.0 + monthly_rate) ** k
    return total


def test_parity_with_lifetimes_in_weeks(lifetimes, weekly) -> None:
    bgnbd, gg, s = weekly
    x, tx, T = _args(s)
    # lifetimes' CLV from fitters carrying our parameters (parameter parity is tested elsewhere)
    bgf, ggf = lifetimes.BetaGeoFitter(), lifetimes.GammaGammaFitter()
    bgf.params_, ggf.params_ = pd.Series(bgnbd.params_), pd.Series(gg.params_)
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # what fit() sets
    reference = ggf.customer_lifetime_value(
        bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
        time=12, discount_rate=MONTHLY_RATE, freq="W",
    )
    eov = gg.expected_order_value(x, s["monetary_value"].to_numpy())
    ours = discounted_clv(
        bgnbd, eov, x, tx, T, time_unit="W", horizon_months=12,
        discount_rate_annual=_annual(MONTHLY_RATE), days_per_month=LIFETIMES_WEEKS_PER_MONTH * 7,
    )
    np.testing.assert_allclose(ours, reference.to_numpy(), rtol=PARITY_RTOL)


def test_parity_with_lifetimes_in_days(lifetimes, make_summary) -> None:
    summary = make_summary(load_builtin_transactions("cdnow_sample"), pd.Timestamp("1997-09-30"), freq_multiplier=1)
    bgnbd, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    x, tx, T = _args(summary)
    m = summary["monetary_value"].to_numpy()
    bgf = lifetimes.BetaGeoFitter().fit(x, tx, T)
    ggf = lifetimes.GammaGammaFitter().fit(x[x > 0], m[x > 0])
    reference = ggf.customer_lifetime_value(
        bgf, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"],
        time=6, discount_rate=MONTHLY_RATE, freq="D",
    )
    ours = discounted_clv(
        bgnbd, gg.expected_order_value(x, m), x, tx, T, time_unit="D", horizon_months=6,
        discount_rate_annual=_annual(MONTHLY_RATE), days_per_month=LIFETIMES_DAYS_PER_MONTH,
    )
    # the two fits differ only in optimiser noise; compare on lifetimes' own parameters
    ours_on_same_params = discounted_clv(
        BetaGeoModel.from_dict({**bgnbd.to_dict(), "params": bgf.params_.to_dict()}),
        ggf.conditional_expected_average_profit(x, m), x, tx, T, time_unit="D", horizon_months=6,
        discount_rate_annual=_annual(MONTHLY_RATE), days_per_month=LIFETIMES_DAYS_PER_MONTH,
    )
    np.testing.assert_allclose(ours_on_same_params, reference.to_numpy(), rtol=PARITY_RTOL)
    np.testing.assert_allclose(ours, reference.to_numpy(), rtol=1e-3)


def test_matches_the_month_by_month_definition_with_default_month(weekly) -> None:
    bgnbd, gg, s = weekly
    x, tx, T = _args(s)
    eov = gg.expected_order_value(x, s["monetary_value"].to_numpy())
    margin = np.linspace(0.2, 0.9, x.size)
    ours = discounted_clv(bgnbd, eov, x, tx, T, time_unit="W", horizon_months=24, margin=margin)
    naive = _naive_clv(bgnbd, eov, x, tx, T, DAYS_PER_MONTH / 7, 24, monthly_discount_rate(0.10), margin)
    np.testing.assert_allclose(ours, naive, rtol=1e-10)


def test_distinct_pairs_shortcut_equals_the_full_grid(weekly) -> None:
    """Jittered T makes every (frequency, T) pair distinct: same answer as the shared-pair path."""
    bgnbd, _, s = weekly
    x, tx, T = _args(s)
    jitter = np.random.default_rng(0).uniform(0, 1e-6, x.size)
    clv_shared = discounted_clv(bgnbd, 10.0, x, tx, T, time_unit="W")
    clv_distinct = discounted_clv(bgnbd, 10.0, x, tx + jitter * (x > 0), T + jitter, time_unit="W")
    np.testing.assert_allclose(clv_shared, clv_distinct, rtol=1e-5)
    naive = _naive_clv(bgnbd, 10.0, x, tx, T, DAYS_PER_MONTH / 7, 12, monthly_discount_rate(0.10))
    np.testing.assert_allclose(clv_shared, naive, rtol=1e-10)


def test_without_discounting_clv_is_value_times_horizon_purchases(weekly) -> None:
    bgnbd, _, s = weekly
    x, tx, T = _args(s)
    clv = discounted_clv(bgnbd, 25.0, x, tx, T, time_unit="W", horizon_months=12, discount_rate_annual=0.0, margin=0.4)
    purchases = expected_purchases_over_horizon(bgnbd, x, tx, T, time_unit="W", horizon_months=12)
    np.testing.assert_allclose(clv, 0.4 * 25.0 * purchases, rtol=1e-10)
    np.testing.assert_allclose(purchases, bgnbd.expected_purchases(12 * DAYS_PER_MONTH / 7, x, tx, T), rtol=1e-12)


def test_units_agree_across_time_units(weekly) -> None:
    """The same model expressed in days (alpha in days) gives the same CLV as in weeks."""
    bgnbd, _, s = weekly
    x, tx, T = _args(s)
    in_days = BetaGeoModel.from_dict(
        {**bgnbd.to_dict(), "params": {**bgnbd.params_, "alpha": bgnbd.params_["alpha"] * 7}}
    )
    weeks = discounted_clv(bgnbd, 30.0, x, tx, T, time_unit="W")
    days = discounted_clv(in_days, 30.0, x, tx * 7, T * 7, time_unit="D")
    np.testing.assert_allclose(weeks, days, rtol=1e-10)


def test_discounting_lowers_clv(weekly) -> None:
    bgnbd, _, s = weekly
    x, tx, T = _args(s)
    low = discounted_clv(bgnbd, 30.0, x, tx, T, time_unit="W", discount_rate_annual=0.3)
    high = discounted_clv(bgnbd, 30.0, x, tx, T, time_unit="W", discount_rate_annual=0.0)
    assert np.all(low <= high) and np.all(low >= 0)


def test_monthly_rate() -> None:
    assert monthly_discount_rate(0.10) == pytest.approx(1.10 ** (1 / 12) - 1)
    assert (1 + monthly_discount_rate(0.10)) ** 12 == pytest.approx(1.10)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"margin": 1.2}, ValueError, r"margin must be a gross-margin share between 0 and 1; 1 value\(s\) are not, e\.g\. \[1\.2\]"),
        ({"margin": np.array([0.5, -0.1, 0.5])}, ValueError, "margin must be a gross-margin share"),
        ({"margin": np.array([0.5, 0.5])}, ValueError, r"margin must be a scalar or hold one value per customer \(3\)"),
        ({"time_unit": "Y"}, ValueError, r"time_unit must be one of \['D', 'M', 'W'\], got 'Y'"),
        ({"horizon_months": 0}, ValueError, "horizon_months must be a whole number of months >= 1"),
        ({"horizon_months": 1.5}, ValueError, "horizon_months must be a whole number"),
        ({"discount_rate_annual": -0.1}, ValueError, r"discount_rate_annual must be a finite rate >= 0"),
        ({"days_per_month": 0.0}, ValueError, "days_per_month must be a positive number of days"),
    ],
)
def test_invalid_arguments(weekly, kwargs, error, message) -> None:
    bgnbd = weekly[0]
    args = {"time_unit": "W", **kwargs}
    with pytest.raises(error, match=message):
        discounted_clv(bgnbd, 10.0, [0, 1, 2], [0.0, 3.0, 5.0], [10.0, 10.0, 10.0], **args)


def test_invalid_summary_arrays(weekly) -> None:
    with pytest.raises(ValueError, match=r"recency must be 1-D with one value per customer like frequency \(2\)"):
        discounted_clv(weekly[0], 10.0, [0, 1], [0.0], [5.0, 5.0], time_unit="W")
    with pytest.raises(ValueError, match="T must hold finite, non-negative numbers"):
        discounted_clv(weekly[0], 10.0, [0, 1], [0.0, 1.0], [5.0, np.nan], time_unit="W")
    with pytest.raises(ValueError, match=r"expected_order_value must be a scalar or hold one value per customer"):
        discounted_clv(weekly[0], [1.0, 2.0, 3.0], [0, 1], [0.0, 1.0], [5.0, 5.0], time_unit="W")


def test_needs_a_fitted_bgnbd() -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        discounted_clv(BetaGeoModel(), 1.0, [1], [1.0], [2.0], time_unit="W")
    with pytest.raises(TypeError, match="purchase_model must be a fitted purchase model .*got GammaGammaModel"):
        discounted_clv(GammaGammaModel(), 1.0, [1], [1.0], [2.0], time_unit="W")  # type: ignore[arg-type]
