"""Discounted customer lifetime value from a purchase model and expected order values.

Month ``k`` of the horizon contributes the expected purchases made during it (the increase
of the conditional expectation, e.g. BG/NBD eq. 10, from the end of month ``k-1`` to the end
of month ``k``) times the expected order value and margin, discounted by ``(1 + i_m)^k`` with
the monthly rate ``i_m = (1 + i_annual)^(1/12) - 1`` (end-of-month cash flows; Fader, Hardie &
Lee 2005b, section on CLV). Any purchase model of :mod:`clvkit.models.purchase` works.

Every purchase model's conditional expectation factors as ``P(alive | x, t_x, T)`` times an
expectation given alive that depends on a customer through ``(frequency, T)`` alone, so the
time-dependent part is evaluated once per distinct ``(frequency, T)`` pair on an
``(n_pairs, horizon)`` grid. Summaries measured in whole
days hold few distinct pairs, which is what makes this much faster than month-by-month loops.

Differences from ``lifetimes`` (``GammaGammaFitter.customer_lifetime_value`` /
``utils._customer_lifetime_value``): lifetimes takes a *monthly* discount rate and converts
months to model units with fixed factors -- 30 days for ``freq="D"`` and 4.345 weeks
(30.415 days) for ``freq="W"`` -- so its "12 months" are 360 days in day units but 365.2 days
in week units (lifetimes issues #215 and #233). Here a month is ``days_per_month`` days
(default the Gregorian average, 365.2425/12) whatever the model unit, and the rate is annual.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clvkit.constants import (
    DAYS_PER_MONTH,
    DAYS_PER_TIME_UNIT,
    DEFAULT_DISCOUNT_RATE_ANNUAL,
    DEFAULT_HORIZON_MONTHS,
    DEFAULT_MARGIN,
    MAX_EXAMPLE_ROWS,
    MONTHS_PER_YEAR,
)
from clvkit.models._lifetimes import check_fitted
from clvkit.models._purchase_base import PurchaseModelBase

FloatArray = NDArray[np.float64]


def discounted_clv(
    purchase_model: PurchaseModelBase,
    expected_order_value: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    time_unit: str,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    discount_rate_annual: float = DEFAULT_DISCOUNT_RATE_ANNUAL,
    margin: ArrayLike = DEFAULT_MARGIN,
    days_per_month: float = DAYS_PER_MONTH,
) -> FloatArray:
    """Discounted gross-margin CLV of each customer over ``horizon_months``.

    ``CLV = sum_{k=1..H} margin * E[M] * (E[Y(t_k)] - E[Y(t_{k-1})]) / (1 + i_m)^k`` with
    ``t_k = k * days_per_month / days_per_unit`` and ``E[Y(t)]`` from BG/NBD eq. 10.

    Parameters
    ----------
    purchase_model : BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel
        Fitted purchase model, in ``time_unit``.
    expected_order_value : array_like
        Expected spend per future transaction (e.g. Gamma-Gamma eq. 5), scalar or per customer.
    frequency, recency, T : array_like
        BTYD summary columns, in ``time_unit``.
    time_unit : {"D", "W", "M"}
        Unit of ``recency``, ``T`` and the fitted model.
    horizon_months : int
        Number of months summed.
    discount_rate_annual : float
        Annual discount rate, >= 0.
    margin : float or array_like
        Gross-margin share of revenue in [0, 1], scalar or per customer.
    days_per_month : float
        Length of one month in days.

    Returns
    -------
    numpy.ndarray
        One CLV per customer, in the currency of ``expected_order_value``.
    """
    x, tx, T_ = _summary_arrays(frequency, recency, T)
    value = _per_customer(expected_order_value, x.size, "expected_order_value")
    share = _margin(margin, x.size)
    months = _check_horizon(horizon_months)
    month_units = _month_length_units(time_unit, days_per_month)
    monthly_rate = _monthly_rate(discount_rate_annual)

    model = _fitted_model(purchase_model)
    t_grid = month_units * np.arange(1, months + 1, dtype=float)
    codes, cumulative = model.alive_expectation_pairs(t_grid, x, T_)
    purchases_weight = model.p_alive(x, tx, T_) * discounted_month_sums(cumulative, monthly_rate)[codes]
    return share * value * purchases_weight


def summary_arrays(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> list[FloatArray]:
    """The BTYD summary as 1-D float arrays; ``ValueError`` unless finite, non-negative and of one length."""
    return _summary_arrays(frequency, recency, T)


def month_grid_units(time_unit: str, horizon_months: int, days_per_month: float = DAYS_PER_MONTH) -> FloatArray:
    """Month ends ``t_k = k * days_per_month / days_per_unit``, k = 1..horizon_months, in ``time_unit``."""
    return _month_length_units(time_unit, days_per_month) * np.arange(1, _check_horizon(horizon_months) + 1,
                                                                        dtype=float)


def discounted_month_sums(cumulative: FloatArray, monthly_rate: float) -> FloatArray:
    """``sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) / (1 + i_m)^k`` per row of ``cumulative`` (E[Y(t_k)] by column k)."""
    per_month = np.diff(cumulative, axis=1, prepend=0.0)  # the expectation is exactly 0 at t = 0
    discount = (1.0 + monthly_rate) ** -np.arange(1, cumulative.shape[1] + 1, dtype=float)
    return per_month @ discount


def expected_purchases_over_horizon(
    purchase_model: PurchaseModelBase,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    time_unit: str,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    days_per_month: float = DAYS_PER_MONTH,
) -> FloatArray:
    """Expected repeat purchases in the next ``horizon_months`` (e.g. BG/NBD eq. 10), undiscounted."""
    x, tx, T_ = _summary_arrays(frequency, recency, T)
    months = _check_horizon(horizon_months)
    horizon = months * _month_length_units(time_unit, days_per_month)
    model = _fitted_model(purchase_model)
    codes, values = model.alive_expectation_pairs(np.array([horizon]), x, T_)
    return model.p_alive(x, tx, T_) * values[codes, 0]


def monthly_discount_rate(discount_rate_annual: float) -> float:
    """Monthly rate equivalent to an annual one: (1 + i_annual)^(1/12) - 1."""
    return _monthly_rate(discount_rate_annual)


# --- helpers -----------------------------------------------------------------------


def _fitted_model(purchase_model: PurchaseModelBase) -> PurchaseModelBase:
    if not isinstance(purchase_model, PurchaseModelBase):
        raise TypeError(
            "purchase_model must be a fitted purchase model (BetaGeoModel, ModifiedBetaGeoModel, "
            f"ParetoNBDModel), got {type(purchase_model).__name__}"
        )
    check_fitted(purchase_model, "params_")
    return purchase_model


def _summary_arrays(*arrays: ArrayLike) -> list[FloatArray]:
    out = [np.atleast_1d(np.asarray(a, dtype=float)) for a in arrays]
    names = ("frequency", "recency", "T")
    for name, arr in zip(names, out, strict=True):
        if arr.ndim != 1 or arr.size != out[0].size:
            raise ValueError(
                f"{name} must be 1-D with one value per customer like frequency "
                f"({out[0].size}), got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must hold finite, non-negative numbers")
    return out


def _per_customer(values: ArrayLike, n: int, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(
            f"{name} must be a scalar or hold one value per customer ({n}), got shape {arr.shape}"
        )
    return arr


def _margin(margin: ArrayLike, n: int) -> FloatArray:
    raw = np.asarray(margin, dtype=float)
    bad = ~np.isfinite(raw) | (raw < 0) | (raw > 1)
    if bad.any():
        examples = np.unique(raw[bad])[:MAX_EXAMPLE_ROWS].tolist()
        raise ValueError(
            f"margin must be a gross-margin share between 0 and 1; {int(bad.sum())} value(s) are "
            f"not, e.g. {examples}. Set clv.margin, or check the cost/margin column mapping"
        )
    return _per_customer(raw, n, "margin")


def _check_horizon(horizon_months: Any) -> int:
    if (
        isinstance(horizon_months, bool)
        or not isinstance(horizon_months, int | np.integer)
        or horizon_months < 1
    ):
        raise ValueError(
            f"horizon_months must be a whole number of months >= 1, got {horizon_months!r}"
        )
    return int(horizon_months)


def _month_length_units(time_unit: str, days_per_month: float) -> float:
    if time_unit not in DAYS_PER_TIME_UNIT:
        raise ValueError(
            f"time_unit must be one of {sorted(DAYS_PER_TIME_UNIT)}, got {time_unit!r}"
        )
    if not (math.isfinite(days_per_month) and days_per_month > 0):
        raise ValueError(
            f"days_per_month must be a positive number of days, got {days_per_month!r}"
        )
    return days_per_month / DAYS_PER_TIME_UNIT[time_unit]


def _monthly_rate(discount_rate_annual: float) -> float:
    rate = float(discount_rate_annual)
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(
            f"discount_rate_annual must be a finite rate >= 0 (e.g. 0.10 for 10%), got "
            f"{discount_rate_annual!r}; set clv.discount_rate_annual"
        )
    return (1.0 + rate) ** (1.0 / MONTHS_PER_YEAR) - 1.0
