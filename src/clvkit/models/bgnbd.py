"""BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005a).

Fitting delegates the likelihood maximisation to lifetimes' ``BetaGeoFitter`` (imported
through :mod:`clvkit.models._lifetimes`, which contains its side effects). Every prediction
is our own vectorised numpy/scipy code from the four fitted numbers, so a served model needs
no lifetimes. Equation numbers refer to Fader, Hardie & Lee (2005a), "Counting Your
Customers the Easy Way", Marketing Science 24(2), and P(alive) to Fader, Hardie & Lee (2008),
"Computing P(alive) using the BG/NBD model" (brucehardie.com note 021).

Times (``t``, ``recency``, ``T``) are in the time unit of the summary the model was fitted on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betainc, betaln, expit, gammaln, hyp2f1, xlogy

from clvkit import schemas
from clvkit.constants import LIFETIMES_FIT_TOLERANCE
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

MODEL_NAME = "BG/NBD"
MODEL_KIND = "bgnbd"
FORMAT_VERSION = 1
CONFIG_KEY = "models.bgnbd.penalizer"
PARAM_NAMES = ("r", "alpha", "a", "b")
#: recency may exceed T by rounding in summaries (lifetimes: 1 ulp); larger gaps are errors.
RECENCY_T_RELATIVE_TOLERANCE = 1e-9

Params = tuple[float, float, float, float]
FloatArray = NDArray[np.float64]


class BetaGeoModel:
    """BG/NBD model: Poisson purchasing while alive, geometric dropout after each purchase.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters, as lifetimes' ``penalizer_coef`` (config
        ``models.bgnbd.penalizer``).
    initial_params : mapping of r, alpha, a, b, optional
        Starting values of the optimiser in the summary's time unit (default: lifetimes').

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``r, alpha, a, b``.
    standard_errors_ : dict[str, float]
        Delta-method standard errors (NaN where the Hessian is not invertible).
    n_customers_, n_repeaters_ : int
        Customers fitted on, and those with ``frequency > 0``.
    log_likelihood_ : float
        Unpenalised log-likelihood (eq. 6) at ``params_`` in the summary's time unit.
    """

    def __init__(self, penalizer: float = 0.0, initial_params: Mapping[str, float] | None = None):
        self.penalizer = penalizer
        self.initial_params = initial_params

    # --- fitting ------------------------------------------------------------------

    def fit(self, summary: Any) -> Self:
        """Fit on a BTYD summary with columns ``frequency``, ``recency`` and ``T``."""
        penalizer = check_penalizer(self.penalizer, CONFIG_KEY)
        x, tx, T = _validated_summary(summary)
        n_customers, n_repeaters = int(x.size), int(np.count_nonzero(x))
        context = FitContext(MODEL_NAME, n_customers, n_repeaters, CONFIG_KEY, penalizer)
        fitter = import_lifetimes().BetaGeoFitter(penalizer_coef=penalizer)
        init = _log_initial_params(self.initial_params, T)
        kwargs = {"initial_params": init, "tol": LIFETIMES_FIT_TOLERANCE}
        params, hessian = fit_contained(fitter, (x, tx, T), kwargs, PARAM_NAMES, context)

        self.params_ = params
        self.standard_errors_ = standard_errors(params, hessian, float(x.size), MODEL_NAME)
        self.n_customers_ = n_customers
        self.n_repeaters_ = n_repeaters
        self.log_likelihood_ = float(np.sum(log_likelihood(as_params(params), x, tx, T)))
        logger.info(
            "BG/NBD fitted on %d customers (%d repeaters): %s, log-likelihood %.2f",
            n_customers,
            n_repeaters,
            ", ".join(f"{k}={v:.4g}" for k, v in params.items()),
            self.log_likelihood_,
        )
        return self

    # --- predictions --------------------------------------------------------------

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t] (eq. 10)."""
        params = self._params()
        t_, x, tx, T_ = _floats(t, frequency, recency, T)
        return (
            conditional_scale(params, x)
            * purchase_term(params, t_, x, T_)
            / alive_odds(params, x, tx, T_)
        )

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive | x, t_x, T) (FHL note 021, eq. 2); 1 for customers without repeats."""
        params = self._params()
        x, tx, T_ = _floats(frequency, recency, T)
        return np.atleast_1d(np.where(x == 0, 1.0, expit(-log_alive_odds(params, x, tx, T_))))

    def expected_purchases_unconditional(self, t: ArrayLike) -> FloatArray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t] (eq. 9)."""
        r, alpha, a, b = self._params()
        (t_,) = _floats(t)
        hyp = hyp2f1(r, b, a + b - 1.0, t_ / (alpha + t_))
        return np.atleast_1d((a + b - 1.0) / (a - 1.0) * (1.0 - hyp * (alpha / (alpha + t_)) ** r))

    def probability_of_n_purchases(self, t: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(t) = n): probability of exactly ``n`` repeat purchases in (0, t] (eq. 8).

        The finite sum of eq. 8 is the negative binomial CDF, evaluated as a regularised
        incomplete beta function, so ``t`` and ``n`` broadcast.
        """
        r, alpha, a, b = self._params()
        t_, n_ = _floats(t, n)
        if np.any((n_ < 0) | (n_ != np.floor(n_))):
            raise ValueError("n must hold non-negative integers (numbers of repeat purchases)")
        p_stay = alpha / (alpha + t_)
        log_first = (
            betaln(a, b + n_)
            - betaln(a, b)
            + gammaln(r + n_)
            - gammaln(r)
            - gammaln(n_ + 1.0)
            + r * np.log(p_stay)
            + xlogy(n_, t_ / (alpha + t_))
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            # 1 - sum_{j<n} NB(j; r, p) = I_{1-p}(n, r); zero where n == 0
            second = np.where(
                n_ > 0,
                np.exp(betaln(a + 1.0, b + n_ - 1.0) - betaln(a, b))
                * betainc(np.maximum(n_, 1.0), r, 1.0 - p_stay),
                0.0,
            )
        return np.atleast_1d(np.exp(log_first) + second)

    # --- serialisation ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (NaN standard errors become ``None``)."""
        return {
            **state_head(self, MODEL_KIND, FORMAT_VERSION),
            "initial_params": None
            if self.initial_params is None
            else {k: float(v) for k, v in self.initial_params.items()},
            **params_state(self),
            "n_customers": self.n_customers_,
            "n_repeaters": self.n_repeaters_,
            "log_likelihood": json_float(self.log_likelihood_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BetaGeoModel:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        check_kind(data, MODEL_KIND, FORMAT_VERSION)
        model = cls(penalizer=data["penalizer"], initial_params=data.get("initial_params"))
        model.params_, model.standard_errors_ = params_from_state(data, PARAM_NAMES)
        model.n_customers_ = int(data["n_customers"])
        model.n_repeaters_ = int(data["n_repeaters"])
        model.log_likelihood_ = float_or_nan(data["log_likelihood"])
        return model

    def _params(self) -> Params:
        check_fitted(self, "params_")
        return as_params(self.params_)

    def __repr__(self) -> str:
        return f"BetaGeoModel(penalizer={self.penalizer!r}, initial_params={self.initial_params!r})"


# --- the model's formulas (also used by clvkit.models.clv) ---------------------------


def log_likelihood(params: Params, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer log-likelihood of (x, t_x, T) (eq. 6)."""
    r, alpha, a, b = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + T)
    x_pos = np.maximum(x, 1.0)
    dropped = np.where(
        x > 0, np.log(a) - np.log(b + x_pos - 1.0) - (r + x) * np.log(alpha + tx), -np.inf
    )
    return head + np.logaddexp(still_alive, dropped)


def log_alive_odds(params: Params, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
    """log( P(dead) / P(alive) ) for x > 0: log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))."""
    r, alpha, a, b = params
    return (r + x) * np.log((alpha + T) / (alpha + tx)) + np.log(a / (b + np.maximum(x, 1.0) - 1.0))


def alive_odds(params: Params, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
    """Denominator of eq. 10: 1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) = 1/P(alive)."""
    r, alpha, a, b = params
    x_pos = np.maximum(x, 1.0)
    odds = a / (b + x_pos - 1.0) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return 1.0 + np.where(x > 0, odds, 0.0)


def conditional_scale(params: Params, x: FloatArray) -> FloatArray:
    """Leading factor of eq. 10: (a + b + x - 1) / (a - 1)."""
    _, _, a, b = params
    return (a + b + x - 1.0) / (a - 1.0)


def purchase_term(params: Params, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
    """Bracket of eq. 10: 1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)).

    Where 2F1 overflows, Euler's transformation 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z)
    gives the same value (as lifetimes does, without evaluating both everywhere).
    """
    r, alpha, a, b = params
    t, x, T = np.broadcast_arrays(t, x, T)
    ha, hb, hc = r + x, b + x, a + b + x - 1.0
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_hyp = np.log(hyp2f1(ha, hb, hc, z))
    overflow = np.isinf(ln_hyp)
    if overflow.any():
        ha_o, hb_o, hc_o, z_o = ha[overflow], hb[overflow], hc[overflow], z[overflow]
        ln_hyp[overflow] = np.log(hyp2f1(hc_o - ha_o, hc_o - hb_o, hc_o, z_o)) + (
            hc_o - ha_o - hb_o
        ) * np.log1p(-z_o)
    return 1.0 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))


# --- helpers -----------------------------------------------------------------------


def _validated_summary(summary: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    cols = summary_columns(summary, (schemas.FREQUENCY, schemas.RECENCY, schemas.T), MODEL_NAME)
    x, tx, T = cols[schemas.FREQUENCY], cols[schemas.RECENCY], cols[schemas.T]
    if np.any(x != np.floor(x)):
        raise UserInputError(
            f"{MODEL_NAME} fit: frequency must count whole repeat purchase periods"
        )
    over = tx - T
    if np.any(over > RECENCY_T_RELATIVE_TOLERANCE * np.maximum(T, 1.0)):
        raise UserInputError(
            f"{MODEL_NAME} fit: recency exceeds T for {int(np.sum(over > 0))} customer(s); "
            "recency (last minus first purchase) can be at most T (cut-off minus first purchase)"
        )
    tx = np.minimum(tx, T)
    if np.any(tx[x == 0] != 0):
        raise UserInputError(f"{MODEL_NAME} fit: recency must be 0 for customers with frequency 0")
    if not np.any(x > 0):
        raise UserInputError(
            f"{MODEL_NAME} fit needs repeat purchases: none of the {x.size} customers has "
            "frequency > 0, so the dropout parameters a, b cannot be estimated; use a longer "
            "calibration period"
        )
    if not np.any(T > 0):
        raise UserInputError(f"{MODEL_NAME} fit: every customer has T = 0 (no observation time)")
    return x, tx, T


def _log_initial_params(initial: Mapping[str, float] | None, T: FloatArray) -> FloatArray | None:
    """lifetimes' starting point: log-parameters with alpha in its rescaled time (max T = 1)."""
    if initial is None:
        return None
    if set(initial) != set(PARAM_NAMES) or not all(
        math.isfinite(float(v)) and float(v) > 0 for v in initial.values()
    ):
        raise UserInputError(
            f"{MODEL_NAME} initial_params must give positive finite values for exactly "
            f"{list(PARAM_NAMES)}, got {dict(initial)!r}"
        )
    scale = 1.0 / float(np.max(T))
    values = {k: float(initial[k]) for k in PARAM_NAMES}
    values["alpha"] *= scale
    return np.log([values[k] for k in PARAM_NAMES])


def _floats(*arrays: ArrayLike) -> list[FloatArray]:
    return [np.asarray(a, dtype=float) for a in arrays]


def as_params(params: Mapping[str, float]) -> Params:
    """(r, alpha, a, b) as a tuple of floats."""
    r, alpha, a, b = (float(params[k]) for k in PARAM_NAMES)
    return r, alpha, a, b
