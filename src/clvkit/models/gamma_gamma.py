"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005b).

Fitted by our own maximum likelihood: the log density of the mean spends (note 025, eq. 1a)
with its analytic gradient and Hessian in log-parameters (``sample_weight`` counts identical
customers). The gamma-function terms depend on the frequency x alone, so they are evaluated
once per distinct x (weighted by its customers); per row only ``log(x m + v)`` and
``1 / (x m + v)`` remain (cheaper than collapsing to distinct ``(x, m)`` rows, since spends
rarely repeat).
Further seeded starts run only when the first start's optimum is not accepted; the analytic
Hessian (checked against the gradient) gives the standard errors; the penalizer path of
:mod:`clvkit.models._optimize` serves when a fit does not converge. lifetimes' ``GammaGammaFitter`` is
the reference of the tests. Spend is divided by a power of ten when its median is outside
``GG_SPEND_SCALE_RANGE`` (v scales with spend; p, q do not), so x1e12 spends fit as well as
ordinary ones.

A fitted model never has q <= 1 (the population mean spend p v / (q - 1) would be undefined or
negative). When the fit gives q <= 1, fails to converge, or there are fewer than
``GG_MIN_REPEAT_CUSTOMERS`` repeat customers with positive spend, the model *falls back*
(``fallback_`` says why) to a simple estimate: the population mean ``mu`` is
``fallback_order_value`` when given, else the transaction-weighted mean spend of the repeat
customers (total spend / total repeat transactions); a repeat customer's expected order value
is ``(x m_x + mu) / (x + 1)`` (their mean spend with one pseudo-transaction at ``mu``), every
other customer's is ``mu``.

Equations refer to Fader, Hardie & Lee (2005b), "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of
Monetary Value" (brucehardie.com note 025).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, gammaln, polygamma
from sklearn.base import BaseEstimator

from clvkit import schemas
from clvkit.constants import (
    DEFAULT_FIT_STARTS,
    GG_MAX_FREQ_SPEND_CORRELATION,
    GG_MIN_Q,
    GG_MIN_REPEAT_CUSTOMERS,
    GG_SPEND_SCALE_RANGE,
    PENALIZER_PATH,
)
from clvkit.exceptions import UserInputError
from clvkit.models._lifetimes import (
    check_fitted,
    check_kind,
    check_penalizer,
    float_or_nan,
    json_float,
    summary_columns,
)
from clvkit.models._optimize import (
    OptimumReport,
    check_sample_weight,
    minimize_multistart,
    standard_errors_from_hessian,
)

logger = logging.getLogger(__name__)

MODEL_NAME = "Gamma-Gamma"
MODEL_KIND = "gamma_gamma"
FORMAT_VERSION = 1
CONFIG_KEY = "models.gamma_gamma.penalizer"
PARAM_NAMES = ("p", "q", "v")

FloatArray = NDArray[np.float64]


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model: z ~ Gamma(p, nu), nu ~ Gamma(q, v), independent of purchasing.

    Fitted on repeat customers (``frequency > 0``) with positive ``monetary_value``, the mean
    spend of their repeat purchase periods.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters, as lifetimes' ``penalizer_coef`` (config
        ``models.gamma_gamma.penalizer``); applied to v in rescaled spend units.
    random_state : int, optional
        Seed of the further optimiser starts.
    n_starts : int
        Optimiser starts (the first is lifetimes').

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``p, q, v`` (empty when the model fell back).
    standard_errors_ : dict[str, float]
        Delta-method standard errors (NaN where the Hessian is not positive definite).
    fallback_ : str or None
        Why the simple estimate is used instead of a Gamma-Gamma fit; None when fitted.
    fallback_mean_ : float or None
        The population mean spend of the fallback.
    n_customers_ : int
        Repeat customers with positive spend (summed weights).
    n_excluded_zero_spend_ : int
        Repeat customers left out because their mean spend is zero or negative.
    frequency_spend_correlation_ : float
        Pearson correlation of frequency and monetary value among the fitted customers.
    log_likelihood_ : float
        Unpenalised log-likelihood of the mean spends (note 025, eq. 1a); NaN on fallback.
    spend_scale_ : float
        Power of ten the spends were divided by for fitting.
    fit_report_ : dict
        Gradient norm, Hessian definiteness, penalizer used and why, starts, optimiser message.
    """

    def __init__(self, *, penalizer: float = 0.0, random_state: int | None = None, n_starts: int = DEFAULT_FIT_STARTS):
        self.penalizer = penalizer
        self.random_state = random_state
        self.n_starts = n_starts

    def fit(
        self, summary: Any, *, sample_weight: ArrayLike | None = None, fallback_order_value: float | None = None
    ) -> Self:
        """Fit on a BTYD summary with columns ``frequency`` and ``monetary_value``."""
        penalizer = check_penalizer(self.penalizer, CONFIG_KEY)
        if fallback_order_value is not None and not (
            math.isfinite(float(fallback_order_value)) and float(fallback_order_value) >= 0
        ):
            raise UserInputError(
                f"{MODEL_NAME} fallback_order_value must be a finite spend >= 0, got {fallback_order_value!r}"
            )
        x, m, w, n_excluded = _repeaters_with_spend(summary, sample_weight)
        self.n_customers_ = int(round(float(w.sum())))
        self.n_excluded_zero_spend_ = n_excluded
        self.frequency_spend_correlation_ = (
            _frequency_spend_correlation(x, m, w) if x.size else float("nan")
        )
        self.params_, self.standard_errors_ = {}, {}
        self.log_likelihood_ = float("nan")
        self.spend_scale_ = 1.0
        self.fit_report_: dict[str, Any] = {}
        self.fallback_mean_ = None
        self.fallback_: str | None = None
        if w.sum() < GG_MIN_REPEAT_CUSTOMERS:
            return self._fall_back(
                f"only {self.n_customers_} repeat customer(s) with positive spend (a fit needs at "
                f"least {GG_MIN_REPEAT_CUSTOMERS})", x, m, w, fallback_order_value,
            )
        scale = _spend_scale(m, w)
        # no collapse to distinct (x, m) rows: hashing a continuous spend costs more than the
        # per-row work it saves (one log and one reciprocal per evaluation)
        xu, mu, wu = x, m / scale, w
        optimum = _optimise(xu, mu, wu, penalizer, self.n_starts, self.random_state)
        used, reason = penalizer, "as configured"
        if not optimum.converged:
            why = (
                f"the fit with penalizer {penalizer:g} stopped with gradient norm "
                f"{optimum.gradient_norm:.2e} and a Hessian that is "
                f"{'' if optimum.hessian_positive_definite else 'not '}positive definite ({optimum.message})"
            )
            for candidate in (p for p in PENALIZER_PATH if p > penalizer):
                # from the original start, as a fit configured with this penalizer would run
                retry = _optimise(xu, mu, wu, candidate, self.n_starts, self.random_state)
                if retry.converged:
                    optimum, used, reason = retry, candidate, f"raised from {penalizer:g} to {candidate:g} because {why}"
                    logger.warning("%s: %s", MODEL_NAME, reason)
                    break
            else:
                return self._fall_back(f"{why}, and no penalizer up to {max(PENALIZER_PATH):g} converged",
                                       x, m, w, fallback_order_value)
        p, q, v_scaled = (float(t) for t in np.exp(optimum.log_params))
        if q <= GG_MIN_Q:
            return self._fall_back(
                f"the fit gives q={q:.4g} <= 1, so the population mean spend p v/(q-1) is undefined "
                "(spend too heavy-tailed or too few repeat customers for the model)",
                x, m, w, fallback_order_value,
            )
        params = {"p": p, "q": q, "v": v_scaled * scale}
        self.params_ = params
        self.standard_errors_ = standard_errors_from_hessian(
            params, optimum.hessian, float(wu.sum()), optimum.hessian_positive_definite, optimum.at_bound
        )
        self.spend_scale_ = float(scale)
        self.log_likelihood_ = float(np.dot(wu, log_likelihood((p, q, v_scaled * scale), xu, mu * scale)))
        self.fit_report_ = {**optimum.as_dict(), "penalizer": float(used), "penalizer_reason": reason,
                            "rows": int(xu.size), "distinct_frequencies": int(pd.unique(xu).size),
                            "spend_scale": float(scale)}
        logger.info(
            "Gamma-Gamma fitted on %d repeat customers (%d excluded for zero or negative spend): "
            "%s, log-likelihood %.2f, penalizer %g (%s)",
            self.n_customers_, n_excluded, ", ".join(f"{k}={v:.4g}" for k, v in params.items()),
            self.log_likelihood_, used, reason,
        )
        return self

    def _fall_back(
        self, why: str, x: FloatArray, m: FloatArray, w: FloatArray, fallback_order_value: float | None
    ) -> Self:
        if fallback_order_value is not None:
            mean, source = float(fallback_order_value), "fallback_order_value"
        elif np.dot(w, x) > 0:
            mean, source = float(np.dot(w, x * m) / np.dot(w, x)), "the repeat customers' mean spend"
        else:
            mean, source = 0.0, "no spend observed: 0"
        self.fallback_ = f"{MODEL_NAME} not used: {why}; expected order values come from {source} ({mean:.4g})"
        self.fallback_mean_ = mean
        self.fit_report_ = {"fallback": self.fallback_}
        logger.warning(self.fallback_)
        return self

    def expected_order_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """E[M | p, q, v, x, m_x]: expected spend per future transaction (FHL 2005b, eq. 5).

        A weighted mean of the population mean ``p v / (q - 1)`` and the customer's observed
        mean spend ``m_x`` with weight ``p x / (p x + q - 1)``; customers with ``x = 0`` (or no
        positive mean spend) get the population mean. Never negative or NaN.
        """
        check_fitted(self, "params_")
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        usable = (x > 0) & np.isfinite(m) & (m > 0)
        m_safe = np.where(usable, m, 0.0)
        mean = self.population_mean_order_value
        if getattr(self, "fallback_", None) is not None:
            weight = np.where(usable, x / (x + 1.0), 0.0)
        else:
            p, q, _ = _as_tuple(self.params_)
            weight = np.where(usable, p * x / (p * x + q - 1.0), 0.0)
        return np.atleast_1d(np.maximum((1.0 - weight) * mean + weight * m_safe, 0.0))

    @property
    def population_mean_order_value(self) -> float:
        """Mean spend per transaction in the population, p v / (q - 1) (or the fallback's mean)."""
        check_fitted(self, "params_")
        if getattr(self, "fallback_", None) is not None:
            return float(self.fallback_mean_ or 0.0)
        p, q, v = _as_tuple(self.params_)
        return p * v / (q - 1.0)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "params_")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (NaN numbers become ``None``)."""
        check_fitted(self, "params_")
        return {
            "model": MODEL_KIND,
            "format_version": FORMAT_VERSION,
            "penalizer": float(self.penalizer),
            "params": dict(self.params_),
            "standard_errors": {k: json_float(v) for k, v in self.standard_errors_.items()},
            "n_customers": self.n_customers_,
            "n_excluded_zero_spend": self.n_excluded_zero_spend_,
            "frequency_spend_correlation": json_float(self.frequency_spend_correlation_),
            "log_likelihood": json_float(self.log_likelihood_),
            "fallback": self.fallback_,
            "fallback_mean": self.fallback_mean_,
            "spend_scale": self.spend_scale_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GammaGammaModel:
        """Rebuild a fitted model from :meth:`to_dict` output (older states lack the fallback keys)."""
        check_kind(data, MODEL_KIND, FORMAT_VERSION)
        model = cls(penalizer=data["penalizer"])
        fallback = data.get("fallback")
        names = () if fallback is not None else PARAM_NAMES
        model.params_ = {k: float(data["params"][k]) for k in names}
        model.standard_errors_ = {k: float_or_nan(data["standard_errors"][k]) for k in names}
        model.n_customers_ = int(data["n_customers"])
        model.n_excluded_zero_spend_ = int(data["n_excluded_zero_spend"])
        model.frequency_spend_correlation_ = float_or_nan(data["frequency_spend_correlation"])
        model.log_likelihood_ = float_or_nan(data["log_likelihood"])
        model.fallback_ = fallback
        model.fallback_mean_ = None if data.get("fallback_mean") is None else float(data["fallback_mean"])
        model.spend_scale_ = float(data.get("spend_scale", 1.0))
        model.fit_report_ = {}
        if fallback is None and model.params_["q"] <= 1.0:
            raise UserInputError(
                f"serialised {MODEL_NAME} model has q={model.params_['q']:.4g} <= 1: its mean spend is "
                "undefined; retrain the model"
            )
        return model


class _SpendData:
    """Repeat customers' (frequency x, mean spend m, weight w) arranged for a fast likelihood.

    Note 025's eq. 1a per customer, rearranged so that no large terms cancel:
    ``ll = [gammaln(p x + q) - gammaln(p x)] - gammaln(q) - log m - p x log(1 + v/(x m)) - q log(1 + x m/v)``.
    The bracket depends on x alone: it (and its digamma derivatives) is evaluated once per
    distinct frequency, weighted by its customers; per row remain two ``log1p``, one division
    and dot products.
    """

    def __init__(self, x: FloatArray, m: FloatArray, w: FloatArray):
        codes, levels = pd.factorize(x)
        self.x_levels = np.asarray(levels, dtype=float)
        self.w_levels = np.bincount(codes, weights=w, minlength=levels.size)
        self.xm = x * m
        self.inv_xm = 1.0 / self.xm
        self.w = w
        self.wx = w * x
        self.n = float(w.sum())
        self.log_m_sum = float(np.dot(w, np.log(m)))

    def _rows(self, v: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """log(1 + v/(x m)), log(1 + x m/v) and 1/(x m + v) per row."""
        ratio = v * self.inv_xm
        return np.log1p(ratio), np.log1p(self.xm / v), self.inv_xm / (1.0 + ratio)

    def log_likelihood_and_score(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Summed weighted log-likelihood and its gradient in (p, q, v)."""
        p, q, v = theta
        xl, wl, n = self.x_levels, self.w_levels, self.n
        px = p * xl
        log_v_over, log_xm_over, inv_s = self._rows(v)
        wx_lv, w_lx = float(np.dot(self.wx, log_v_over)), float(np.dot(self.w, log_xm_over))
        wx_inv_s, w_inv_s = float(np.dot(self.wx, inv_s)), float(np.dot(self.w, inv_s))
        dg_pq = digamma(px + q)
        ll = float(np.dot(wl, gammaln(px + q) - gammaln(px))) - n * gammaln(q) - self.log_m_sum - p * wx_lv - q * w_lx
        score = np.array([
            float(np.dot(wl * xl, dg_pq - digamma(px))) - wx_lv,
            float(np.dot(wl, dg_pq)) - n * digamma(q) - w_lx,
            n * q / v - p * wx_inv_s - q * w_inv_s,
        ])
        return ll, score

    def log_likelihood_hessian(self, theta: FloatArray) -> FloatArray:
        """Second derivatives of the summed weighted log-likelihood in (p, q, v)."""
        p, q, v = theta
        xl, wl, n = self.x_levels, self.w_levels, self.n
        px = p * xl
        inv_s = 1.0 / (self.xm + v)
        tg_pq, tg_p = polygamma(1, px + q), polygamma(1, px)
        h_pp = float(np.dot(wl * xl * xl, tg_pq - tg_p))
        h_pq = float(np.dot(wl * xl, tg_pq))
        h_pv = -float(np.dot(self.wx, inv_s))
        h_qq = float(np.dot(wl, tg_pq)) - n * float(polygamma(1, q))
        h_qv = n / v - float(np.dot(self.w, inv_s))
        inv_s2 = inv_s * inv_s
        h_vv = -n * q / v**2 + p * float(np.dot(self.wx, inv_s2)) + q * float(np.dot(self.w, inv_s2))
        return np.array([[h_pp, h_pq, h_pv], [h_pq, h_qq, h_qv], [h_pv, h_qv, h_vv]])


def _objective(log_params: FloatArray, data: _SpendData, penalizer: float) -> tuple[float, FloatArray]:
    """Mean NLL of note 025 eq. 1a (+ lifetimes' L2 penalty) and its gradient in log-params."""
    theta = np.exp(log_params)
    ll, score = data.log_likelihood_and_score(theta)
    value = -ll / data.n + penalizer * float(np.sum(theta**2))
    grad = -score / data.n * theta + 2.0 * penalizer * theta**2
    return value, grad


def _hessian(log_params: FloatArray, data: _SpendData, penalizer: float) -> FloatArray:
    """Hessian of :func:`_objective` in log-params: ``-(theta theta' * H + diag(theta * g)) / n + 4 c diag(theta^2)``."""
    theta = np.exp(log_params)
    _, score = data.log_likelihood_and_score(theta)
    hessian = data.log_likelihood_hessian(theta)
    return -(np.outer(theta, theta) * hessian + np.diag(theta * score)) / data.n + np.diag(4.0 * penalizer * theta**2)


def _optimise(
    x: FloatArray, m: FloatArray, w: FloatArray, penalizer: float, n_starts: int, random_state: int | None,
    start: FloatArray | None = None,
) -> OptimumReport:
    """Seeded starts only when the first is not accepted (as the purchase models do)."""
    first = np.full(3, 0.1) if start is None else start  # lifetimes' start: log-params 0.1
    data = _SpendData(x, m, w)
    return minimize_multistart(
        lambda lp: _objective(lp, data, penalizer), first, n_starts=int(n_starts), random_state=random_state,
        n_weight=data.n, more_starts_if_needed=True, hessian=lambda lp: _hessian(lp, data, penalizer),
    )


def _spend_scale(m: FloatArray, w: FloatArray) -> float:
    """1, or the power of ten nearest the median spend when it is outside GG_SPEND_SCALE_RANGE."""
    if np.all(w == 1.0):  # the same order statistic without a full sort
        k = int(np.searchsorted(np.arange(1.0, m.size + 1.0), 0.5 * m.size))
        median = float(np.partition(m, k)[k])
    else:
        order = np.argsort(m)
        cumulative = np.cumsum(w[order])
        median = float(m[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
    low, high = GG_SPEND_SCALE_RANGE
    if low <= median <= high:
        return 1.0
    return float(10.0 ** round(math.log10(median)))


def log_likelihood(params: tuple[float, float, float], x: FloatArray, m: FloatArray) -> FloatArray:
    """Per-customer log density of the mean spend m_x over x transactions (note 025, eq. 1a)."""
    p, q, v = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )


def _repeaters_with_spend(
    summary: Any, sample_weight: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    cols = summary_columns(summary, (schemas.FREQUENCY,), MODEL_NAME)
    x = cols[schemas.FREQUENCY]
    if schemas.MONETARY_VALUE not in summary.columns:
        raise UserInputError(
            f"{MODEL_NAME} fit: the summary lacks column {schemas.MONETARY_VALUE!r}; "
            "build it from transactions with an amount column"
        )
    weights = check_sample_weight(sample_weight, x.size, MODEL_NAME)
    w = np.ones(x.size) if weights is None else weights
    m = summary[schemas.MONETARY_VALUE].to_numpy(dtype=float, na_value=np.nan, copy=True)
    repeat = (x > 0) & (w > 0)
    if np.any(~np.isfinite(m[repeat])):
        raise UserInputError(
            f"{MODEL_NAME} fit: monetary_value is missing or infinite for "
            f"{int(np.sum(~np.isfinite(m[repeat])))} repeat customer(s)"
        )
    keep = repeat & (m > 0)
    n_excluded = int(round(float(w[repeat & (m <= 0)].sum())))
    if n_excluded:
        logger.info(
            "Gamma-Gamma: %d repeat customer(s) with zero or negative mean spend left out",
            n_excluded,
        )
    return x[keep], m[keep], w[keep], n_excluded


def _frequency_spend_correlation(x: FloatArray, m: FloatArray, w: FloatArray) -> float:
    """(Weighted) Pearson corr(frequency, monetary_value); warns above GG_MAX_FREQ_SPEND_CORRELATION."""
    if np.ptp(x) == 0 or np.ptp(m) == 0:
        logger.info("Gamma-Gamma: frequency/spend correlation undefined (a constant column)")
        return float("nan")
    cov = np.cov(x, m, aweights=w)
    corr = float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]))
    logger.info(
        "Gamma-Gamma: correlation of frequency and monetary_value among repeaters %.3f", corr
    )
    if abs(corr) > GG_MAX_FREQ_SPEND_CORRELATION:
        message = (
            f"frequency and monetary_value are correlated (Pearson {corr:.3f}, |corr| > "
            f"{GG_MAX_FREQ_SPEND_CORRELATION}) among repeat customers: the Gamma-Gamma model "
            "assumes spend is independent of purchase frequency, so its expected order values "
            "(and CLV) may be biased"
        )
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=3)
    return corr


def _as_tuple(params: Mapping[str, float]) -> tuple[float, float, float]:
    p, q, v = (float(params[k]) for k in PARAM_NAMES)
    return p, q, v
