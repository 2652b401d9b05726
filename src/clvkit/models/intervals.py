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
or order. The posterior gamma of a whole frequency x is ``Gamma(r_s) + E_1 + ... + E_x`` (a sum
of independent gammas of one scale, so exactly ``Gamma(r_s + x)``) from one increment sequence per
draw; fractional values get a generator keyed by the value. Each customer's draws are independent
across ``s``, so each marginal distribution is exact up to Monte Carlo error (quantile level error
about ``sqrt(l (1 - l) / S)``).

All draws are simulated at once (arrays ``(S, customers)``, customers in chunks bounding memory);
P(alive) comes from one broadcast call of the model's log-odds over the S parameter vectors, and
the monthly purchases are only worked out for the (draw, customer) cells that buy at all.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from clvkit.constants import (
    DAYS_PER_MONTH,
    DAYS_PER_TIME_UNIT,
    DEFAULT_CLV_INTERVAL_DRAWS,
    DEFAULT_RANDOM_SEED,
)
from clvkit.models.clv import monthly_discount_rate

logger = logging.getLogger(__name__)

__all__ = ["IntervalSimulator", "clv_intervals", "interval_simulator", "purchase_family", "simulate_discounted_value"]

FloatArray = NDArray[np.float64]

#: Random streams (second entry of the seed sequence).
_STREAM_PARAMS, _STREAM_SCALARS, _STREAM_LAMBDA, _STREAM_DROPOUT, _STREAM_NU = 1, 2, 3, 4, 5
_STREAM_ARRIVALS, _STREAM_SPEND = 6, 7
#: Exponential arrivals (and spends) are generated in blocks of this many, so that a longer
#: sequence always extends a shorter one (batch-independent draws).
_ARRIVAL_BLOCK = 64
#: Purchasing cells with at most this many purchases are discounted purchase by purchase (memory:
#: one entry per purchase); the others count purchases per month by binary search.
_FEW_PURCHASES = 8
#: Terms compared directly before a binary search when counting purchases by the horizon.
_HEAD_TERMS = 4
#: Upper bound of simulated purchases per customer and draw (guards absurd rates; the random
#: sequences of all draws are held at once: draws x this many floats at most).
_MAX_SIMULATED_PURCHASES = 2**16
#: Largest standard deviation of a log-parameter draw (weakly identified parameters).
_MAX_LOG_PARAM_SD = 1.0
#: Range of parameter draws (degenerate fits: a -> 0, b -> inf in the limiting model).
_MIN_PARAM, _MAX_PARAM = 1e-12, 1e12
#: Cells (draws x customers x months) simulated together: bounds memory (~16 MB per array).
_CHUNK_CELLS = 2**21
#: Whole frequencies up to this use the summed-gamma keyed draws (larger or fractional: one
#: generator per distinct value).
_MAX_WHOLE_COUNT = 10_000
#: Extra seed word of the per-value keyed generators (apart from the block generators).
_VALUE_KEY_TAG = 2**32 - 1
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
    simulator: IntervalSimulator | None = None,
) -> FloatArray:
    """Quantiles (one column per level) of each customer's discounted gross-margin value.

    Parameters are those of :func:`simulate_discounted_value`; ``levels`` in (0, 1), increasing.
    ``simulator`` (from :func:`interval_simulator` with the same model and settings) reuses the
    parameter draws and random streams of earlier calls instead of rebuilding them: the values
    are the same, since every random number is keyed by the draw and the customer's values.
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
    rows, inverse = _unique_rows(np.column_stack(columns))
    if simulator is None:
        simulator = interval_simulator(purchase_model, time_unit=time_unit, horizon_months=horizon_months,
                                       discount_rate_annual=discount_rate_annual, spend_model=spend_model,
                                       has_monetary_value=monetary_value is not None,
                                       has_order_value=order_value is not None, n_draws=n_draws,
                                       random_state=random_state)
    elif simulator.model is not purchase_model or simulator.n_draws != n_draws:
        raise ValueError("the interval simulator was built for another purchase model or number of draws")
    out = np.empty((rows.shape[0], levels_.size))
    for start in range(0, rows.shape[0], simulator.chunk_customers):
        c = rows[start:start + simulator.chunk_customers]
        values = simulator.values(c[:, 0], c[:, 1], c[:, 2], c[:, 3], c[:, 4], c[:, 5])
        out[start:start + c.shape[0]] = np.quantile(values, levels_, axis=0).T
    out = out[inverse]
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0), 0.0, None)


def interval_simulator(
    purchase_model: Any,
    *,
    time_unit: str,
    horizon_months: int,
    discount_rate_annual: float,
    spend_model: Any | None = None,
    has_monetary_value: bool = True,
    has_order_value: bool = True,
    n_draws: int = DEFAULT_CLV_INTERVAL_DRAWS,
    random_state: int = DEFAULT_RANDOM_SEED,
) -> IntervalSimulator:
    """The parameter draws and random streams of one model and settings, to reuse across calls of
    :func:`clv_intervals` (a served scorer builds it once; safe to share between threads)."""
    return IntervalSimulator(purchase_model, time_unit=time_unit, horizon_months=horizon_months,
                             discount_rate_annual=discount_rate_annual, spend_model=spend_model,
                             has_monetary_value=has_monetary_value, has_order_value=has_order_value,
                             n_draws=n_draws, random_state=random_state)


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
    x = np.atleast_1d(np.asarray(frequency, dtype=float))
    n = x.size
    columns = (x, _per_customer(recency, n), _per_customer(T, n), _per_customer(margin, n),
               None if monetary_value is None else _per_customer(monetary_value, n),
               None if order_value is None else _per_customer(order_value, n))
    simulator = IntervalSimulator(purchase_model, time_unit=time_unit, horizon_months=horizon_months,
                           discount_rate_annual=discount_rate_annual, spend_model=spend_model,
                           has_monetary_value=monetary_value is not None, has_order_value=order_value is not None,
                           n_draws=n_draws, random_state=random_state)
    values = np.zeros((n, n_draws))
    step = simulator.chunk_customers
    for start in range(0, n, step):
        part = slice(start, start + step)
        values[part] = simulator.values(*(None if c is None else c[part] for c in columns)).T
    return values


# --- simulation --------------------------------------------------------------------


class IntervalSimulator:
    """Everything shared by the customers of one call: parameter draws and random streams.

    Customers are simulated in chunks, all draws at once (arrays ``(n_draws, customers[, months])``).
    Every random number is keyed by the draw and by the customer's own values, never by the batch:

    * per draw: ``u_alive``, ``u_dropout`` and the Pareto/NBD lifetime (stream ``_STREAM_SCALARS``);
    * arrival times and spends: one sequence per draw, generated for all draws in column blocks
      seeded by the block index, so a longer sequence extends a shorter one;
    * posterior shapes ``Gamma(base + inc * k)`` for a whole count ``k`` (``k = x``, or ``x + 1``):
      ``Gamma(base) + sum_{i <= k} Gamma(inc)_i`` (sum of independent gammas of one scale), the
      increments again in blocks; any other ``x`` gets ``Gamma(base + inc * x)`` from a stream
      seeded by the value of x.
    """

    def __init__(self, purchase_model: Any, *, time_unit: str, horizon_months: int, discount_rate_annual: float,
                 spend_model: Any | None, has_monetary_value: bool, has_order_value: bool, n_draws: int,
                 random_state: int):
        self.family = purchase_family(purchase_model)
        if not isinstance(n_draws, int | np.integer) or n_draws < 1:
            raise ValueError(f"n_draws must be a positive whole number (clv.interval_draws), got {n_draws!r}")
        self.model = purchase_model
        self.n_draws = int(n_draws)
        month_units = DAYS_PER_MONTH / DAYS_PER_TIME_UNIT[time_unit]
        self.t_grid = month_units * np.arange(1, horizon_months + 1, dtype=float)
        discount = (1.0 + monthly_discount_rate(discount_rate_annual)) ** -np.arange(1, horizon_months + 1,
                                                                                      dtype=float)
        self.discount = discount
        self.weights = discount - np.append(discount[1:], 0.0)  # sum_k N_k w_k = sum_k (N_k - N_{k-1}) d_k
        self.chunk_customers = max(1, _CHUNK_CELLS // (self.n_draws * max(1, horizon_months)))
        seed = random_state
        draws = _param_draws(purchase_model, n_draws, seed, 0)
        self.theta = draws
        self.spend_params = _spend_params(spend_model, has_monetary_value, has_order_value, n_draws, seed)
        scalars = np.random.default_rng([seed, _STREAM_SCALARS])
        self.u_alive = scalars.random(n_draws)[:, None]
        self.u_dropout = scalars.random(n_draws)[:, None]
        if self.family == "pnbd":
            self.life_shape = scalars.gamma(draws["s"])[:, None]
            self.life_clock = scalars.standard_exponential(n_draws)[:, None]
        else:
            self.beta_a = scalars.gamma(draws["a"])[:, None]
        ones = np.ones(n_draws)
        self.lam_shape = _KeyedGamma(seed, _STREAM_LAMBDA, draws["r"], ones)
        self.beta_b = None if self.family == "pnbd" else _KeyedGamma(seed, _STREAM_DROPOUT, draws["b"], ones)
        self.dropout_shift = 1.0 if self.family == "mbgnbd" else 0.0
        self.arrivals = _BlockStream(seed, _STREAM_ARRIVALS, ones)
        if self.spend_params is None:
            self.nu_shape = self.spends = None
        else:
            gp = self.spend_params
            self.nu_shape = _KeyedGamma(seed, _STREAM_NU, gp["q"], gp["p"])
            self.spends = _BlockStream(seed, _STREAM_SPEND, gp["p"])
        self._p_alive = _vectorised_p_alive(purchase_model, draws)
        self._lock = threading.Lock()

    def p_alive(self, x: FloatArray, tx: FloatArray, T_: FloatArray) -> FloatArray:
        """``P(alive | x, t_x, T; theta_s)``, ``(n_draws, n)``: one broadcast call where the model allows."""
        if self._p_alive is not None:
            p = np.broadcast_to(self._p_alive(x, tx, T_), (self.n_draws, x.size))
        else:  # any other model: one shallow copy per draw
            p = np.vstack([_with_params(self.model, {k: float(v[s]) for k, v in self.theta.items()}).p_alive(x, tx, T_)
                           for s in range(self.n_draws)])
        return np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)

    def values(self, x: FloatArray, tx: FloatArray, T_: FloatArray, share: FloatArray,
               monetary_value: FloatArray | None, order_value: FloatArray | None) -> FloatArray:
        """Simulated values ``(n_draws, n)`` of one chunk of customers.

        The purchases by the horizon are counted first for every (draw, customer); the monthly
        counts, spends and discounting are then computed only where that count is positive.
        """
        with self._lock:  # the random streams grow lazily: one batch at a time
            return self._values(x, tx, T_, share, monetary_value, order_value)

    def _values(self, x: FloatArray, tx: FloatArray, T_: FloatArray, share: FloatArray,
                monetary_value: FloatArray | None, order_value: FloatArray | None) -> FloatArray:
        n = x.size
        out = np.zeros((self.n_draws, n))
        if n == 0:
            return out
        theta = self.theta
        alive = self.u_alive < self.p_alive(x, tx, T_)
        with np.errstate(all="ignore"):
            lam = self.lam_shape.draw(x) / (theta["alpha"][:, None] + T_[None, :])
            if self.family == "pnbd":
                tau = self.life_clock * (theta["beta"][:, None] + T_[None, :]) / np.maximum(self.life_shape, 1e-300)
                end_time = np.minimum(self.t_grid[-1], tau)
            else:
                end_time = self.t_grid[-1]
            end_exposure = lam * end_time
            end_exposure[~(alive & (end_exposure >= 0.0))] = -1.0  # dead (or NaN): no purchase
            arrivals = self.arrivals.covering(end_exposure.max(axis=1))
            total = _count_below(arrivals, end_exposure)
            draw, customer = np.nonzero(total)  # purchasing cells, sorted by draw
            if draw.size == 0:
                return out
            bought = total[draw, customer]
            if self.beta_b is not None:  # BG/NBD: dropout after a geometric number of purchases
                b_shape = self.beta_b.draw(x[customer] + self.dropout_shift, draw)
                p = np.clip(self.beta_a[draw, 0] / (self.beta_a[draw, 0] + b_shape), 0.0, 1.0)
                n_until_dropout = 1.0 + np.floor(np.log(self.u_dropout[draw, 0]) / np.log1p(-p))
                n_until_dropout = np.where(np.isnan(n_until_dropout), 1.0, n_until_dropout)
                np.minimum(bought, np.minimum(n_until_dropout, _MAX_SIMULATED_PURCHASES).astype(np.int64), out=bought)
            rate = lam[draw, customer]
            capped = None if self.family != "pnbd" else end_exposure[draw, customer]
            if self.spend_params is None:
                worth = (share * _per_customer(order_value, n))[customer]
                spends = None
            else:
                gp = self.spend_params
                mean_spend = np.clip(_per_customer(monetary_value, n), 0.0, None)
                nu = self.nu_shape.draw(x[customer], draw) / (gp["v"][draw] + (x * mean_spend)[customer])
                worth = share[customer] / nu
                spends = self.spends.prefix(int(bought.max()))
            out[draw, customer] = worth * self._discounted_purchases(arrivals, spends, draw, rate, capped, bought)
        out[~np.isfinite(out)] = 0.0
        return np.maximum(out, 0.0, out=out)

    def _discounted_purchases(self, arrivals: FloatArray, spends: FloatArray | None, draw: NDArray[np.intp],
                              rate: FloatArray, end_exposure: FloatArray | None,
                              bought: NDArray[np.int64]) -> FloatArray:
        """``sum_j spend_j / (1 + i_m)^month_j`` over the ``bought`` purchases of each purchasing cell.

        ``month_j`` is the first month whose cumulative exposure ``rate * t_k`` (capped at
        ``end_exposure``, the Pareto/NBD dropout) reaches arrival ``j``; ``spends``
        holds running sums of the draw's spends (None: every purchase counts 1). Cells with at
        most ``_FEW_PURCHASES`` purchases are summed purchase by purchase; the others count
        purchases per month by binary search (the same sum, ``sum_k N_k w_k``).
        """
        discount = self.discount
        out = np.empty(draw.size)
        few = bought <= _FEW_PURCHASES
        if few.any():  # one entry per purchase j of each cell i
            cell = np.repeat(np.flatnonzero(few), bought[few])
            j = np.arange(cell.size) - np.repeat(np.cumsum(bought[few]) - bought[few], bought[few])
            d = draw[cell]
            # arrival A_j falls in the first month k with A_j <= lam t_k (t_k = k months; A_j <= lam t_end)
            month = np.ceil(arrivals[d, j] / (rate[cell] * self.t_grid[0])) - 1.0
            value = discount[np.clip(month, 0, discount.size - 1).astype(np.intp)]
            if spends is not None:
                value = value * (spends[d, j + 1] - spends[d, j])
            out[few] = np.bincount(cell, weights=value, minlength=draw.size)[few]
        many = ~few
        if many.any():
            d = draw[many]
            exposure = rate[many][:, None] * self.t_grid[None, :]
            if end_exposure is not None:
                exposure = np.minimum(exposure, end_exposure[many][:, None])
            counts = np.minimum(_segment_count(arrivals, d, exposure), bought[many][:, None])
            reached = counts if spends is None else spends[d[:, None], counts]
            out[many] = reached @ self.weights
        return out


# --- helpers -----------------------------------------------------------------------


def _spend_params(spend_model: Any | None, has_monetary_value: bool, has_order_value: bool, n_draws: int,
                  seed: int) -> dict[str, FloatArray] | None:
    """Gamma-Gamma parameter draws, or None: a fixed value per purchase."""
    params = getattr(spend_model, "params_", None) or {}
    usable = (spend_model is not None and getattr(spend_model, "fallback_", None) is None
              and all(k in params and np.isfinite(params[k]) and params[k] > 0 for k in _GG_PARAMS)
              and has_monetary_value)
    if usable:
        return _param_draws(spend_model, n_draws, seed, 1, names=_GG_PARAMS)
    if not has_order_value:
        raise ValueError("CLV intervals need a fitted spend model with monetary_value, or order_value per purchase")
    return None


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


def _vectorised_p_alive(model: Any, draws: dict[str, FloatArray]) -> Any | None:
    """``(x, t_x, T) -> P(alive)`` for every parameter draw at once, ``(n_draws, n)``.

    The purchase models' log-odds are numpy expressions of their parameters, which broadcast as
    ``(n_draws, 1)`` columns. A degenerate fit predicts from its limiting NBD model, whose
    ``p_alive`` does not depend on the draw. None when the model offers neither.
    """
    predict = getattr(model, "_prediction_model", None)
    if predict is None:
        return None
    cls, fitted = predict()
    if cls is not type(model):  # the limiting model: the drawn parameters are not used
        return lambda x, tx, T_: model.p_alive(x, tx, T_)[None, :]
    odds = getattr(cls, "_log_dead_odds", None)
    if odds is None or len(fitted) != len(draws):
        return None
    columns = tuple(v[:, None] for v in draws.values())  # params_ order, as _prediction_model

    def p_alive(x: FloatArray, tx: FloatArray, T_: FloatArray) -> FloatArray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return expit(-odds(columns, x, np.minimum(tx, T_), T_))

    return p_alive


def _count_below(sequences: FloatArray, thresholds: FloatArray) -> NDArray[np.int64]:
    """``#{j: sequences[s, j] <= thresholds[s, i]}``: comparisons with the first few terms, binary
    search (:func:`_segment_count`) only where all of those are reached."""
    head = min(_HEAD_TERMS, sequences.shape[1])
    total = np.zeros(thresholds.shape, dtype=np.int64)
    for j in range(head):
        total += thresholds >= sequences[:, j:j + 1]
    draw, customer = np.nonzero(total == head)
    if draw.size:
        total[draw, customer] = _segment_count(sequences, draw, thresholds[draw, customer])
    return total


def _segment_count(sequences: FloatArray, draw: NDArray[np.intp], thresholds: FloatArray) -> NDArray[np.int64]:
    """``#{j: sequences[draw[i], j] <= thresholds[i, ...]}`` (``draw`` sorted): a binary search per draw."""
    out = np.empty(thresholds.shape, dtype=np.int64)
    bounds = np.searchsorted(draw, np.arange(sequences.shape[0] + 1))
    for s in np.flatnonzero(np.diff(bounds)):
        lo, hi = bounds[s], bounds[s + 1]
        out[lo:hi] = np.searchsorted(sequences[s], thresholds[lo:hi], side="right")
    return out


class _BlockStream:
    """One random sequence per draw, ``Gamma(shape_s, 1)`` terms, generated in column blocks.

    Block ``b`` of all draws comes from its own generator seeded ``(seed, stream, b + 1)``, so the
    first ``m`` terms do not depend on how many were needed, nor on the customers.
    """

    def __init__(self, seed: int, stream: int, shape: FloatArray):
        self.seed, self.stream = seed, stream
        self.shape = np.clip(np.nan_to_num(shape, nan=_MIN_PARAM), _MIN_PARAM, _MAX_PARAM)[:, None]
        self.exponential = bool(np.all(shape == 1.0))
        self.n_blocks = 0
        self._sums = np.zeros((shape.size, 1))  # running sums, leading 0

    def _extend(self) -> None:
        self.n_blocks += 1
        rng = np.random.default_rng([self.seed, self.stream, self.n_blocks])
        size = (self.shape.shape[0], _ARRIVAL_BLOCK)
        block = rng.standard_exponential(size) if self.exponential else rng.gamma(self.shape, size=size)
        self._sums = np.concatenate([self._sums, self._sums[:, -1:] + np.cumsum(block, axis=1)], axis=1)

    def covering(self, need: FloatArray) -> FloatArray:
        """Running sums ``(n_draws, m)`` (no leading 0) with each row's last term above its ``need``."""
        need = np.minimum(need, _MAX_SIMULATED_PURCHASES)
        while not self.n_blocks or (np.any(self._sums[:, -1] <= need)
                                    and self.n_blocks * _ARRIVAL_BLOCK < _MAX_SIMULATED_PURCHASES):
            self._extend()
        return self._sums[:, 1:]

    def prefix(self, length: int) -> FloatArray:
        """Running sums ``(n_draws, >= length + 1)`` with a leading 0 column."""
        while self._sums.shape[1] <= min(length, _MAX_SIMULATED_PURCHASES):
            self._extend()
        return self._sums


class _KeyedGamma:
    """``Gamma(base_s + inc_s * k, 1)`` per draw ``s`` and customer value ``k`` (see :class:`IntervalSimulator`)."""

    def __init__(self, seed: int, stream: int, base: FloatArray, increment: FloatArray):
        self.seed, self.stream = seed, stream
        self.base_shape = np.clip(np.nan_to_num(base, nan=_MIN_PARAM), _MIN_PARAM, _MAX_PARAM)
        self.increment = increment
        self.base = np.random.default_rng([seed, stream]).gamma(self.base_shape)
        self.steps = _BlockStream(seed, stream, increment)

    def draw(self, k: FloatArray, draw: NDArray[np.intp] | None = None) -> FloatArray:
        """``(n_draws, k.size)`` draws; with ``draw``, one value per cell ``(draw[i], k[i])``."""
        whole = (k == np.floor(k)) & (k >= 0) & (k <= _MAX_WHOLE_COUNT)
        out = np.zeros((self.base.size, k.size) if draw is None else k.size)  # NaN k: 0
        if whole.all():  # the usual case: no masks
            index = k.astype(np.intp)
            steps = self.steps.prefix(int(index.max()))
            return self.base[:, None] + steps[:, index] if draw is None else self.base[draw] + steps[draw, index]
        if whole.any():
            index = k[whole].astype(np.int64)
            steps = self.steps.prefix(int(index.max()))
            if draw is None:
                out[:, whole] = self.base[:, None] + steps[:, index]
            else:
                out[whole] = self.base[draw[whole]] + steps[draw[whole], index]
        other = np.flatnonzero(~whole & np.isfinite(k))
        values, which = np.unique(k[other], return_inverse=True)
        for i, value in enumerate(values):
            key = int(np.float64(value).view(np.uint64))
            shape = np.clip(np.nan_to_num(self.base_shape + self.increment * value, nan=_MIN_PARAM), _MIN_PARAM,
                            _MAX_PARAM)
            drawn = np.random.default_rng([self.seed, self.stream, _VALUE_KEY_TAG, key]).gamma(shape)
            cells = other[which.reshape(-1) == i]
            if draw is None:
                out[:, cells] = drawn[:, None]
            else:
                out[cells] = drawn[draw[cells]]
        return out


def _with_params(model: Any, params: dict[str, float]) -> Any:
    """A shallow copy of a fitted model with other parameter values."""
    clone = copy.copy(model)
    clone.params_ = {**model.params_, **params}
    return clone


def _unique_rows(table: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
    """Distinct rows (sorted) and each row's index among them, as ``np.unique(axis=0)`` but by lexsort."""
    if table.shape[0] == 0:
        return table, np.zeros(0, dtype=np.intp)
    order = np.lexsort(table.T[::-1])
    ordered = table[order]
    new = np.ones(table.shape[0], dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(table.shape[0], dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def _per_customer(values: ArrayLike, n: int) -> FloatArray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"expected a scalar or one value per customer ({n}), got shape {array.shape}")
    return array

