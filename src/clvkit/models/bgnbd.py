"""BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005a).

Fitted by our own maximum likelihood (:mod:`clvkit.models._purchase_base`): the vectorised
log-likelihood (eq. 6) with its analytic gradient and Hessian on collapsed ``(frequency, recency,
T)`` rows; seeded further starts only when the first start's optimum is not accepted; the
Hessian (computed once) gives the Newton polish and the standard errors.
lifetimes' ``BetaGeoFitter`` is the reference the tests compare with. Every prediction is
computed in log space from the four fitted numbers. Equation numbers refer to Fader, Hardie &
Lee (2005a), "Counting Your Customers the Easy Way", Marketing Science 24(2), and P(alive) to
Fader, Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model" (note 021).

P(alive) of a customer without repeat purchases is 1 under BG/NBD (dropout happens only after
a repeat purchase); MBG/NBD and Pareto/NBD let those customers drop out.

Times (``t``, ``recency``, ``T``) are in the time unit of the summary the model was fitted on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betainc, betaln, gammaln, xlogy

from clvkit.models import _beta_geo
from clvkit.models._purchase_base import FitData, PurchaseModelBase, floats

logger = logging.getLogger(__name__)

MODEL_NAME = "BG/NBD"
MODEL_KIND = "bgnbd"
FORMAT_VERSION = 1
CONFIG_KEY = "models.bgnbd.penalizer"
PARAM_NAMES = ("r", "alpha", "a", "b")

Params = tuple[float, float, float, float]
FloatArray = NDArray[np.float64]


class _BetaGeoFamily(PurchaseModelBase):
    """What BG/NBD and MBG/NBD share: the likelihood (``MODIFIED`` selects the variant), the
    alive customer's purchase probability and the degeneracy test on the mean dropout a/(a+b)."""

    MODIFIED: ClassVar[bool] = False
    TIME_PARAMS: ClassVar[tuple[str, ...]] = ("alpha",)
    HAS_ANALYTIC_HESSIAN: ClassVar[bool] = True

    @classmethod
    def _objective(cls, log_params: FloatArray, data: FitData, penalizer: float) -> tuple[float, FloatArray]:
        return _beta_geo.objective(log_params, data, penalizer, modified=cls.MODIFIED)

    @classmethod
    def _hessian(cls, log_params: FloatArray, data: FitData, penalizer: float) -> FloatArray:
        return _beta_geo.hessian(log_params, data, penalizer, modified=cls.MODIFIED)

    @classmethod
    def _loglik_rows(cls, params, x, tx, T):
        return _beta_geo.loglik_rows(params, x, tx, T, modified=cls.MODIFIED)

    @classmethod
    def _log_dead_odds(cls, params, x, tx, T):
        return _beta_geo.log_dead_odds(params, x, tx, T, modified=cls.MODIFIED)

    @staticmethod
    def _alive_purchase_probability(params, t, x, T):
        r, alpha = params[:2]
        return -np.expm1(-(r + x) * np.log1p(t / (alpha + T)))

    @staticmethod
    def _mean_dropout(params) -> float:
        _, _, a, b = params
        return a / (a + b)

    @staticmethod
    def _degenerate_words(params) -> str:
        a, b = params["a"], params["b"]
        return (
            f"a={a:.3g}, b={b:.3g}: the mean dropout probability after a purchase a/(a+b)="
            f"{a / (a + b):.3g} is practically 0 (a -> 0 or b -> infinity)"
        )


class BetaGeoModel(_BetaGeoFamily):
    """BG/NBD model: Poisson purchasing while alive, geometric dropout after each repeat purchase.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (time rescaled so that the largest T is 1), as lifetimes'
        ``penalizer_coef`` (config ``models.bgnbd.penalizer``).
    initial_params : mapping of r, alpha, a, b, optional
        Starting values of the first optimiser start in the summary's time unit
        (default: lifetimes' start).
    random_state : int, optional
        Seed of the further starts.
    n_starts : int
        Most optimiser starts: the first is lifetimes'; the others, seeded perturbations of it,
        run only when the first start's optimum is not accepted (not converged, or a parameter
        at the edge of its range), and the best of all is kept.

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``r, alpha, a, b``.
    standard_errors_ : dict[str, float]
        Delta-method standard errors (NaN where the Hessian is not positive definite).
    n_customers_, n_repeaters_ : int
        Customers fitted on (summed ``sample_weight``), and those with ``frequency > 0``.
    log_likelihood_ : float
        Unpenalised total log-likelihood (eq. 6) at ``params_`` in the summary's time unit.
    degenerate_ : str or None
        Why the dropout is unidentifiable, when it is; predictions then come from the NBD
        model fitted on the same data (``limit_params_``).
    fit_report_ : dict
        Gradient norm, Hessian definiteness, penalizer used and why, starts, optimiser message.
    """

    name: ClassVar[str] = MODEL_KIND
    MODEL_NAME: ClassVar[str] = MODEL_NAME
    PARAM_NAMES: ClassVar[tuple[str, ...]] = PARAM_NAMES
    CONFIG_KEY: ClassVar[str] = CONFIG_KEY
    FORMAT_VERSION: ClassVar[int] = FORMAT_VERSION

    @staticmethod
    def _alive_expectation(params, t, x, T):
        r, alpha, a, b = params
        return _beta_geo.alive_expectation(r + x, alpha + T, a, b + x, t)

    @staticmethod
    def _unconditional(params, t):
        """E[X(t)] (eq. 9): (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
        r, alpha, a, b = params
        return _beta_geo.alive_expectation(r, alpha, a, b, t)


    def probability_of_n_purchases(self, t: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(t) = n): probability of exactly ``n`` repeat purchases in (0, t] (eq. 8).

        The finite sum of eq. 8 is the negative binomial CDF, evaluated as a regularised
        incomplete beta function, so ``t`` and ``n`` broadcast. For a degenerate fit it is
        the NBD (negative binomial) probability of the limiting model.
        """
        cls, params = self._prediction_model()
        t_, n_ = floats(t, n)
        if np.any((n_ < 0) | (n_ != np.floor(n_))):
            raise ValueError("n must hold non-negative integers (numbers of repeat purchases)")
        r, alpha = params[0], params[1]
        with np.errstate(divide="ignore"):
            log_p_stay = np.log(alpha / (alpha + t_))
            log_nb = (
                gammaln(r + n_) - gammaln(r) - gammaln(n_ + 1.0) + r * log_p_stay + xlogy(n_, t_ / (alpha + t_))
            )
        if cls is not BetaGeoModel:
            return np.atleast_1d(np.exp(log_nb))
        a, b = params[2], params[3]
        p_stay = alpha / (alpha + t_)
        log_first = betaln(a, b + n_) - betaln(a, b) + log_nb
        with np.errstate(invalid="ignore", divide="ignore"):
            # 1 - sum_{j<n} NB(j; r, p) = I_{1-p}(n, r); zero where n == 0
            second = np.where(
                n_ > 0,
                np.exp(betaln(a + 1.0, b + n_ - 1.0) - betaln(a, b))
                * betainc(np.maximum(n_, 1.0), r, 1.0 - p_stay),
                0.0,
            )
        return np.atleast_1d(np.exp(log_first) + second)


def log_likelihood(params: Params, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer log-likelihood of (x, t_x, T) (eq. 6)."""
    return _beta_geo.loglik_rows(params, x, tx, T, modified=False)


def as_params(params: Mapping[str, float]) -> Params:
    """(r, alpha, a, b) as a tuple of floats."""
    r, alpha, a, b = (float(params[k]) for k in PARAM_NAMES)
    return r, alpha, a, b
