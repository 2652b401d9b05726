"""Predictive intervals of the discounted CLV: parameter uncertainty + the purchase/spend process.

For draw ``s = 1..S`` and every customer at once (vectorised over customers):

1. **Parameters**: ``log theta_s ~ N(log theta_hat, (SE / theta_hat)^2)`` for the purchase model
   and the Gamma-Gamma spend model (the delta-method standard errors ``standard_errors_``; the
   parameters are drawn independently, NaN errors count as 0).
2. **Alive now**: with probability ``P(alive | x, t_x, T; theta_s)`` (the model's own ``p_alive``).
3. **Individual rates given alive** (the posterior of the model's mixing distributions):
   ``lambda ~ Gamma(r + x, alpha + T)``; BG/NBD ``p ~ Beta(a, b + x)`` (MBG/NBD ``Beta(a, b + x + 1)``),
   the customer drops out after each future purchase with probability ``p``; Pareto/NBD
   ``mu ~ Gamma(s, beta + T)`` and an exponential lifetime ``tau ~ Exp(mu)`` from now.
4. **Purchases**: a Poisson process of rate ``lambda`` counted at the end of each month of the
   horizon, stopped at the dropout (BG/NBD: after the geometric number of purchases; Pareto/NBD:
   at ``tau``).
5. **Spend**: ``z ~ Gamma(p, nu)`` per purchase with ``nu ~ Gamma(q + p x, v + x m_x)`` (Gamma-Gamma
   posterior, Fader, Hardie & Lee 2005b eq. 1-5); a fixed value per purchase when there is no
   fitted Gamma-Gamma model (count-only logs, or its documented fallback).
6. **Value**: ``margin * sum_k spend_k / (1 + i_m)^k`` (end-of-month discounting, as
   :func:`clvkit.models.clv.discounted_clv`, whose mean this is at ``theta_hat``).

The interval is the ``levels`` quantiles of the S simulated values. Random numbers are shared
across customers within a draw (common random numbers: one uniform for "alive", one exponential
arrival sequence, ...) and keyed by the draw and by the customer's frequency, never by the
customer's position: a customer's interval is the same scored alone or in a batch of any size
or order. Each customer's draws are independent across ``s``, so each marginal distribution is
exact up to Monte Carlo error (quantile level error about ``sqrt(l (1 - l) / S)``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clvkit.constants import (
    DAYS_PER_MONTH,
    DAYS_PER_TIME_UNIT,
    DEFAULT_CLV_INTERVAL_DRAWS,
    DEFAULT_RANDOM_SEED,
)
from clvkit.models.clv import monthly_discount_rate

logger = logging.getLogger(__name__)

__all__ = ["clv_intervals", "purchase_family", "simulate_discounted_value"]

FloatArray = NDArray[np.float64]

#: Random streams (second entry of the seed sequence).
_STREAM_PARAMS, _STREAM_SCALARS, _STREAM_LAMBDA, _STREAM_DROPOUT, _STREAM_NU = 1, 2, 3, 4, 5
_STREAM_ARRIVALS, _STREAM_SPEND = 6, 7
#: Exponential arrivals (and spends) are generated in blocks of this many, so that a longer
#: sequence always extends a shorter one (batch-independent draws).
_ARRIVAL_BLOCK = 256
#: Upper bound of simulated purchases per customer and draw (guards absurd rates).
_MAX_SIMULATED_PURCHASES = 1_000_000
#: Largest standard deviation of a log-parameter draw (weakly identified parameters).
_MAX_LOG_PARAM_SD = 1.0
#: Range of parameter draws (degenerate fits: a -> 0, b -> inf in the limiting model).
_MIN_PARAM, _MAX_PARAM = 1e-12, 1e12
#: Customers simulated together (memory: customers x draws floats).
_CHUNK_CUSTOMERS = 20_000
_BG_PARAMS = frozenset({"r", "alpha", "a", "b"})
_PNBD_PARAMS = frozenset({"r", "alpha", "s", "beta"})
_GG_PARAMS = ("p", "q", "v")


def purchase_family(model: Any) -> str:
    """``"bgnbd"``, ``"mbgnbd"`` or ``"pnbd"``: which process the interval simulates."""
    keys = set(getattr(model, "params_", {}) or {})
    name = str(getattr(model, "name", "") or "").lower()
    if keys >= _PNBD_PARAMS:
        return "pnbd"
    if keys >= _BG_PARAMS:
        return "mbgnbd" if name == "mbgnbd" else "bgnbd"
    raise ValueError(
        f"CLV intervals support BG/NBD, MBG/NBD and Pareto/NBD purchase models; {type(model).__name__} "
        f"has parameters {sorted(keys)}"
    )


def clv_intervals(
    purchase_model: Any,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    time_unit: str,
    horizon_months: int,
    discount_rate_annual: float,
    margin: ArrayLike = 1.0,
    spend_model: Any | None = None,
    monetary_value: ArrayLike | None = None,
    order_value: ArrayLike | None = None,
    levels: Sequence[float] = (0.1, 0.9),
    n_draws: int = DEFAULT_CLV_INTERVAL_DRAWS,
    random_state: int = DEFAULT_RANDOM_SEED,
) -> FloatArray:
    """Quantiles (one column per level) of each customer's discounted gross-margin value.

    Parameters are those of :func:`simulate_discounted_value`; ``levels`` in (0, 1), increasing.
    Returns an ``(n_customers, len(levels))`` array, finite and >= 0.
    """
    levels_ = np.asarray(levels, dtype=float)
    if levels_.ndim != 1 or not np.all((levels_ > 0) & (levels_ < 1)) or np.any(np.diff(levels_) <= 0):
        raise ValueError(f"interval levels must be increasing numbers in (0, 1), e.g. [0.1, 0.9]; got {levels!r}")
    x = np.atleast_1d(np.asarray(frequency, dtype=float))
    n = x.size
    columns = [x, _per_customer(recency, n), _per_customer(T, n), _per_customer(margin, n),
               np.zeros(n) if monetary_value is None else _per_customer(monetary_value, n),
               np.zeros(n) if order_value is None else _per_customer(order_value, n)]
    # identical customers get identical draws (keyed by value): simulate each distinct row once
    rows, inverse = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = np.empty((rows.shape[0], levels_.size))
    for start in range(0, rows.shape[0], _CHUNK_CUSTOMERS):
        c = rows[start:start + _CHUNK_CUSTOMERS]
        values = simulate_discounted_value(
            purchase_model, c[:, 0], c[:, 1], c[:, 2], time_unit=time_unit, horizon_months=horizon_months,
            discount_rate_annual=discount_rate_annual, margin=c[:, 3], spend_model=spend_model,
            monetary_value=None if monetary_value is None else c[:, 4],
            order_value=None if order_value is None else c[:, 5], n_draws=n_draws, random_state=random_state,
        )
        out[start:start + c.shape[0]] = np.quantile(values, levels_, axis=1).T
    out = out[inverse]
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0), 0.0, None)


def simulate_discounted_value(
    purchase_model: Any,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    time_unit: str,
    horizon_months: int,
    discount_rate_annual: float,
    margin: ArrayLike = 1.0,
    spend_model: Any | None = None,
    monetary_value: ArrayLike | None = None,
    order_value: ArrayLike | None = None,
    n_draws: int = DEFAULT_CLV_INTERVAL_DRAWS,
    random_state: int = DEFAULT_RANDOM_SEED,
) -> FloatArray:
    """Simulated discounted gross-margin values, ``(n_customers, n_draws)`` (see module docstring).

    Parameters
    ----------
    purchase_model
        Fitted BG/NBD, MBG/NBD or Pareto/NBD model (``params_``, ``standard_errors_``, ``p_alive``).
    frequency, recency, T
        BTYD summary in ``time_unit``.
    time_unit, horizon_months, discount_rate_annual
        As :func:`clvkit.models.clv.discounted_clv`.
    margin
        Gross-margin share, scalar or per customer.
    spend_model, monetary_value
        Fitted Gamma-Gamma model (``params_`` p, q, v) and the customers' mean repeat spend;
        without a usable model each purchase is worth ``order_value``.
    order_value
        Fixed revenue per purchase (scalar or per customer) when the spend is not simulated.
    n_draws, random_state
        Monte Carlo draws and seed.
    """
    family = purchase_family(purchase_model)
    if not isinstance(n_draws, int | np.integer) or n_draws < 1:
        raise ValueError(f"n_draws must be a positive whole number (clv.interval_draws), got {n_draws!r}")
    x = np.atleast_1d(np.asarray(frequency, dtype=float))
    n = x.size
    tx = _per_customer(recency, n)
    T_ = _per_customer(T, n)
    share = _per_customer(margin, n)
    if n == 0:
        return np.zeros((0, n_draws))
    month_units = DAYS_PER_MONTH / DAYS_PER_TIME_UNIT[time_unit]
    t_grid = month_units * np.arange(1, horizon_months + 1, dtype=float)
    discount = (1.0 + monthly_discount_rate(discount_rate_annual)) ** -np.arange(1, horizon_months + 1, dtype=float)
    weights = discount - np.append(discount[1:], 0.0)  # sum_k N_k w_k = sum_k (N_k - N_{k-1}) d_k

    purchase_draws = _param_draws(purchase_model, n_draws, random_state, 0)
    spend = _spend_setup(spend_model, monetary_value, order_value, n, n_draws, random_state)
    codes, x_unique = _codes(x)
    scalars = np.random.default_rng([random_state, _STREAM_SCALARS])
    u_alive = scalars.random(n_draws)
    u_dropout = scalars.random(n_draws)
    if family == "pnbd":
        life_shape = scalars.gamma(purchase_draws["s"])
        life_clock = scalars.standard_exponential(n_draws)
    else:
        beta_a = scalars.gamma(purchase_draws["a"])
    lam_shape = _keyed_gamma(x_unique, lambda xu: purchase_draws["r"] + xu, random_state, _STREAM_LAMBDA)
    if family != "pnbd":
        extra = 1.0 if family == "mbgnbd" else 0.0
        beta_b = _keyed_gamma(x_unique, lambda xu: purchase_draws["b"] + xu + extra, random_state, _STREAM_DROPOUT)
    nu_shape = (None if spend.params is None else
                _keyed_gamma(x_unique, lambda xu: spend.params["q"] + spend.params["p"] * xu, random_state, _STREAM_NU))

    values = np.zeros((n_draws, n))  # row per draw: contiguous writes
    for s in range(n_draws):
        theta = {k: float(v[s]) for k, v in purchase_draws.items()}
        p_alive = np.clip(np.nan_to_num(_with_params(purchase_model, theta).p_alive(x, tx, T_), nan=0.0), 0.0, 1.0)
        alive = u_alive[s] < p_alive
        lam = lam_shape[s, codes] / (theta["alpha"] + T_)
        if family == "pnbd":
            tau = life_clock[s] * (theta["beta"] + T_) / max(life_shape[s], 1e-300)
            end_time = np.minimum(t_grid[-1], tau)
        else:
            end_time = np.full(n, t_grid[-1])
        end_exposure = lam * end_time
        arrivals = _block_sequence(random_state, _STREAM_ARRIVALS, s, float(np.max(end_exposure[alive], initial=0.0)),
                                   "exponential")
        active = np.flatnonzero(alive & (end_exposure >= arrivals[0]))  # the others make no purchase
        if active.size == 0:
            continue
        times = np.minimum(t_grid[None, :], end_time[active, None])
        counts = np.searchsorted(arrivals, lam[active, None] * times, side="right")
        if family != "pnbd":
            code = codes[active]
            p = beta_a[s] / (beta_a[s] + beta_b[s, code])
            with np.errstate(divide="ignore", invalid="ignore"):
                n_until_dropout = 1.0 + np.floor(np.log(u_dropout[s]) / np.log1p(-np.clip(p, 0.0, 1.0)))
            n_until_dropout = np.nan_to_num(n_until_dropout, nan=1.0, posinf=_MAX_SIMULATED_PURCHASES)
            counts = np.minimum(counts, np.minimum(n_until_dropout, _MAX_SIMULATED_PURCHASES).astype(np.int64)[:, None])
        if spend.params is None:
            values[s, active] = share[active] * spend.order_value[active] * (counts @ weights)
        else:
            gamma_p = spend.params["p"][s]
            spends = _block_sequence(random_state, _STREAM_SPEND, s, float(counts.max(initial=0)), "gamma", gamma_p,
                                     count=True)
            cumulative = np.concatenate([[0.0], np.cumsum(spends)])
            nu = nu_shape[s, codes[active]] / (spend.params["v"][s] + x[active] * spend.mean_spend[active])
            values[s, active] = share[active] * (cumulative[counts] @ weights) / nu
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0), 0.0, None).T


# --- helpers -----------------------------------------------------------------------


class _Spend:
    """Gamma-Gamma parameter draws and inputs, or a fixed value per purchase."""

    def __init__(self, params: dict[str, FloatArray] | None, mean_spend: FloatArray, order_value: FloatArray):
        self.params = params
        self.mean_spend = mean_spend
        self.order_value = order_value


def _spend_setup(spend_model: Any | None, monetary_value: ArrayLike | None, order_value: ArrayLike | None,
                 n: int, n_draws: int, seed: int) -> _Spend:
    params = getattr(spend_model, "params_", None) or {}
    usable = (spend_model is not None and getattr(spend_model, "fallback_", None) is None
              and all(k in params and np.isfinite(params[k]) and params[k] > 0 for k in _GG_PARAMS)
              and monetary_value is not None)
    if usable:
        mean_spend = np.clip(_per_customer(monetary_value, n), 0.0, None)
        return _Spend(_param_draws(spend_model, n_draws, seed, 1, names=_GG_PARAMS), mean_spend, np.zeros(n))
    if order_value is None:
        raise ValueError("CLV intervals need a fitted spend model with monetary_value, or order_value per purchase")
    return _Spend(None, np.zeros(n), np.clip(_per_customer(order_value, n), 0.0, None))


def _param_draws(model: Any, n_draws: int, seed: int, which: int,
                 names: Sequence[str] | None = None) -> dict[str, FloatArray]:
    """``n_draws`` parameter vectors: log-normal around ``params_`` with the delta-method SEs."""
    params = dict(model.params_)
    names = list(params) if names is None else list(names)
    theta = np.array([float(params[k]) for k in names])
    errors = getattr(model, "standard_errors_", None) or {}
    se = np.array([float(errors.get(k, np.nan) if errors.get(k) is not None else np.nan) for k in names])
    sd_log = np.where(np.isfinite(se) & (theta > 0), se / np.where(theta > 0, theta, 1.0), 0.0)
    sd_log = np.clip(sd_log, 0.0, _MAX_LOG_PARAM_SD)
    z = np.random.default_rng([seed, _STREAM_PARAMS, which]).standard_normal((n_draws, len(names)))
    with np.errstate(over="ignore", invalid="ignore"):
        draws = theta[None, :] * np.exp(z * sd_log[None, :])
    # limiting (degenerate) fits may carry 0 or huge parameters: keep the draws usable as gamma shapes/rates
    draws = np.clip(np.nan_to_num(draws, nan=_MIN_PARAM, posinf=_MAX_PARAM), _MIN_PARAM, _MAX_PARAM)
    return {k: draws[:, i] for i, k in enumerate(names)}


def _with_params(model: Any, params: dict[str, float]) -> Any:
    """A shallow copy of a fitted model with other parameter values."""
    clone = copy.copy(model)
    clone.params_ = {**model.params_, **params}
    return clone


def _codes(x: FloatArray) -> tuple[NDArray[np.intp], FloatArray]:
    unique, codes = np.unique(x, return_inverse=True)
    return codes.reshape(-1), unique


def _keyed_gamma(x_unique: FloatArray, shape: Any, seed: int, stream: int) -> FloatArray:
    """Gamma(shape(x), 1) draws ``(n_draws, n_unique)``, each column seeded by the value of x."""
    columns = []
    for value in x_unique:
        key = int(np.float64(value).view(np.uint64))
        shapes = np.clip(np.nan_to_num(np.asarray(shape(value), dtype=float), nan=_MIN_PARAM), _MIN_PARAM, _MAX_PARAM)
        columns.append(np.random.default_rng([seed, stream, key]).gamma(shapes))
    return np.column_stack(columns) if columns else np.zeros((0, 0))


def _block_sequence(seed: int, stream: int, draw: int, need: float, kind: str, shape: float = 1.0,
                    count: bool = False) -> FloatArray:
    """Arrival times (cumulative unit exponentials) beyond ``need``, or ``need`` gamma spends.

    Generated in fixed blocks from a stream of its own, so any longer sequence extends a shorter one.
    """
    rng = np.random.default_rng([seed, stream, draw])
    blocks: list[FloatArray] = []
    total, length = 0.0, 0
    target = min(need, _MAX_SIMULATED_PURCHASES)
    while True:
        block = rng.standard_exponential(_ARRIVAL_BLOCK) if kind == "exponential" else rng.gamma(shape, size=_ARRIVAL_BLOCK)
        blocks.append(block)
        length += _ARRIVAL_BLOCK
        total += float(block.sum())
        if (count and length > target) or (not count and total > target) or length > _MAX_SIMULATED_PURCHASES:
            break
    sequence = np.concatenate(blocks)
    return sequence if count else np.cumsum(sequence)


def _per_customer(values: ArrayLike, n: int) -> FloatArray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"expected a scalar or one value per customer ({n}), got shape {array.shape}")
    return array

