"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005b).

Fitting delegates to lifetimes' ``GammaGammaFitter`` (side effects contained by
:mod:`clvkit.models._lifetimes`); the conditional expected order value is our own code.
Equations refer to Fader, Hardie & Lee (2005b), "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of
Monetary Value" (brucehardie.com note 025).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from clvkit import schemas
from clvkit.constants import GG_MAX_FREQ_SPEND_CORRELATION, LIFETIMES_FIT_TOLERANCE
from clvkit.exceptions import UserInputError
from clvkit.models._lifetimes import (
    FitContext,
    check_fitted,
    check_kind,
    check_penalizer,
    fit_contained,
    float_or_nan,
    import_lifetimes,
    json_float,
    params_from_state,
    params_state,
    standard_errors,
    state_head,
    summary_columns,
)

logger = logging.getLogger(__name__)

MODEL_NAME = "Gamma-Gamma"
MODEL_KIND = "gamma_gamma"
FORMAT_VERSION = 1
CONFIG_KEY = "models.gamma_gamma.penalizer"
PARAM_NAMES = ("p", "q", "v")
#: Fewest repeat customers with positive spend that identify p, q, v.
MIN_REPEATERS = 2

FloatArray = NDArray[np.float64]


class GammaGammaModel:
    """Gamma-Gamma spend model: z ~ Gamma(p, nu), nu ~ Gamma(q, v), independent of purchasing.

    Fitted on repeat customers (``frequency > 0``) with positive ``monetary_value``, the mean
    spend of their repeat purchase periods.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (config ``models.gamma_gamma.penalizer``).

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``p, q, v``.
    standard_errors_ : dict[str, float]
        Delta-method standard errors (NaN where the Hessian is not invertible).
    n_customers_ : int
        Repeat customers fitted on.
    n_excluded_zero_spend_ : int
        Repeat customers left out because their mean spend is zero or negative.
    frequency_spend_correlation_ : float
        Pearson correlation of frequency and monetary value among the fitted customers.
    log_likelihood_ : float
        Unpenalised log-likelihood of the mean spends (note 025, eq. 1a).
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, summary: Any) -> Self:
        """Fit on a BTYD summary with columns ``frequency`` and ``monetary_value``."""
        penalizer = check_penalizer(self.penalizer, CONFIG_KEY)
        x, m, n_excluded = _repeaters_with_spend(summary)
        correlation = _frequency_spend_correlation(x, m)
        context = FitContext(MODEL_NAME, x.size, x.size, CONFIG_KEY, penalizer)
        fitter = import_lifetimes().GammaGammaFitter(penalizer_coef=penalizer)
        kwargs = {"tol": LIFETIMES_FIT_TOLERANCE}
        params, hessian = fit_contained(fitter, (x, m), kwargs, PARAM_NAMES, context)

        self.params_ = params
        self.standard_errors_ = standard_errors(params, hessian, float(x.size), MODEL_NAME)
        self.n_customers_ = int(x.size)
        self.n_excluded_zero_spend_ = n_excluded
        self.frequency_spend_correlation_ = correlation
        self.log_likelihood_ = float(np.sum(log_likelihood(_as_tuple(params), x, m)))
        if params["q"] <= 1:
            logger.warning(
                "Gamma-Gamma q=%.4g <= 1: the population mean spend p*v/(q-1) is undefined; "
                "expected order values of customers without repeats will be wrong",
                params["q"],
            )
        logger.info(
            "Gamma-Gamma fitted on %d repeat customers (%d excluded for zero or negative spend): "
            "%s, log-likelihood %.2f",
            x.size,
            n_excluded,
            ", ".join(f"{k}={v:.4g}" for k, v in params.items()),
            self.log_likelihood_,
        )
        return self

    def expected_order_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """E[M | p, q, v, x, m_x]: expected spend per future transaction (FHL 2005b, eq. 5).

        A weighted mean of the population mean ``p v / (q - 1)`` and the customer's observed
        mean spend ``m_x`` with weight ``p x / (p x + q - 1)``; customers with ``x = 0`` get
        the population mean whatever their ``monetary_value``.
        """
        check_fitted(self, "params_")
        p, q, v = _as_tuple(self.params_)
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        population_mean = p * v / (q - 1.0)
        weight = p * x / (p * x + q - 1.0)
        shrunk = (1.0 - weight) * population_mean + weight * np.where(x > 0, m, 0.0)
        return np.atleast_1d(np.where(x > 0, shrunk, population_mean))

    @property
    def population_mean_order_value(self) -> float:
        """Mean spend per transaction in the population, p v / (q - 1)."""
        check_fitted(self, "params_")
        p, q, v = _as_tuple(self.params_)
        return p * v / (q - 1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (NaN numbers become ``None``)."""
        return {
            **state_head(self, MODEL_KIND, FORMAT_VERSION),
            **params_state(self),
            "n_customers": self.n_customers_,
            "n_excluded_zero_spend": self.n_excluded_zero_spend_,
            "frequency_spend_correlation": json_float(self.frequency_spend_correlation_),
            "log_likelihood": json_float(self.log_likelihood_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GammaGammaModel:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        check_kind(data, MODEL_KIND, FORMAT_VERSION)
        model = cls(penalizer=data["penalizer"])
        model.params_, model.standard_errors_ = params_from_state(data, PARAM_NAMES)
        model.n_customers_ = int(data["n_customers"])
        model.n_excluded_zero_spend_ = int(data["n_excluded_zero_spend"])
        model.frequency_spend_correlation_ = float_or_nan(data["frequency_spend_correlation"])
        model.log_likelihood_ = float_or_nan(data["log_likelihood"])
        return model

    def __repr__(self) -> str:
        return f"GammaGammaModel(penalizer={self.penalizer!r})"


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


def _repeaters_with_spend(summary: Any) -> tuple[FloatArray, FloatArray, int]:
    cols = summary_columns(summary, (schemas.FREQUENCY,), MODEL_NAME)
    x = cols[schemas.FREQUENCY]
    if schemas.MONETARY_VALUE not in summary.columns:
        raise UserInputError(
            f"{MODEL_NAME} fit: the summary lacks column {schemas.MONETARY_VALUE!r}; "
            "build it from transactions with an amount column"
        )
    m = np.array(summary[schemas.MONETARY_VALUE], dtype=float)
    repeat = x > 0
    if np.any(~np.isfinite(m[repeat])):
        raise UserInputError(
            f"{MODEL_NAME} fit: monetary_value is missing or infinite for "
            f"{int(np.sum(~np.isfinite(m[repeat])))} repeat customer(s)"
        )
    keep = repeat & (m > 0)
    n_excluded = int(np.sum(repeat & (m <= 0)))
    if n_excluded:
        logger.info(
            "Gamma-Gamma: %d repeat customer(s) with zero or negative mean spend left out",
            n_excluded,
        )
    if np.count_nonzero(keep) < MIN_REPEATERS:
        raise UserInputError(
            f"{MODEL_NAME} fit needs at least {MIN_REPEATERS} repeat customers with positive "
            f"spend; the summary has {int(np.count_nonzero(keep))} (of {x.size} customers)"
        )
    return x[keep], m[keep], n_excluded


def _frequency_spend_correlation(x: FloatArray, m: FloatArray) -> float:
    """Pearson corr(frequency, monetary_value); warns above GG_MAX_FREQ_SPEND_CORRELATION."""
    if np.ptp(x) == 0 or np.ptp(m) == 0:
        logger.info("Gamma-Gamma: frequency/spend correlation undefined (a constant column)")
        return float("nan")
    corr = float(np.corrcoef(x, m)[0, 1])
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
