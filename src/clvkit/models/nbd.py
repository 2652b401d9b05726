"""NBD model of repeat purchasing (Ehrenberg 1959; Morrison & Schmittlein 1988): no dropout.

Purchases follow a Poisson process with rate lambda ~ Gamma(r, alpha) for ever. It is the
limit of BG/NBD and MBG/NBD as the dropout probability p -> 0 (a -> 0 or b -> infinity) and of
Pareto/NBD as the dropout rate mu -> 0 (s -> 0 or beta -> infinity); the purchase models fall
back to it when their dropout is unidentifiable (``degenerate_``).

* likelihood: L(r, alpha | x, T) = Gamma(r+x)/Gamma(r) alpha^r / (alpha+T)^(r+x)
  (the ``x log T`` part of the Poisson density does not depend on the parameters and, as in
  the BTYD models, is left out);
* E[X(T, T+t] | x, T] = (r + x) t / (alpha + T);  P(alive) = 1;
* P(no purchase in (T, T+t] | x, T) = ((alpha+T)/(alpha+T+t))^(r+x);  E[X(t)] = r t / alpha.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from clvkit.models._purchase_base import FitData, FloatArray, PurchaseModelBase


class NBDModel(PurchaseModelBase):
    """NBD purchase model (gamma-Poisson, no dropout); parameters ``r, alpha``.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters in rescaled time (as lifetimes' ``penalizer_coef``).
    initial_params : mapping, optional
        Starting values of the optimiser.
    random_state : int, optional
        Seed of the further optimiser starts.
    n_starts : int
        Most optimiser starts (the seeded ones run only when the first is not accepted).
    """

    name: ClassVar[str] = "nbd"
    MODEL_NAME: ClassVar[str] = "NBD"
    PARAM_NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha")
    TIME_PARAMS: ClassVar[tuple[str, ...]] = ("alpha",)
    HAS_DROPOUT: ClassVar[bool] = False

    @staticmethod
    def _loglik_rows(params, x, tx, T):
        r, alpha = params[:2]
        return gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)

    @staticmethod
    def _objective(log_params: FloatArray, data: FitData, penalizer: float) -> tuple[float, FloatArray]:
        r, alpha = np.exp(log_params)
        cache = data.cache
        if "W_x" not in cache:
            cache["W_x"] = np.bincount(data.ix, weights=data.w, minlength=data.ux.size)
            cache["W_T"] = np.bincount(data.iT, weights=data.w, minlength=data.uT.size)
            cache["WX_T"] = np.bincount(data.iT, weights=data.w * data.x, minlength=data.uT.size)
        W_x, W_T, WX_T = cache["W_x"], cache["W_T"], cache["WX_T"]
        n = data.total_weight
        log_aT = np.log(alpha + data.uT)
        ll = (
            float(np.dot(W_x, gammaln(r + data.ux))) - n * gammaln(r) + n * r * np.log(alpha)
            - float(np.dot(r * W_T + WX_T, log_aT))
        )
        d_r = float(np.dot(W_x, digamma(r + data.ux))) - n * digamma(r) + n * np.log(alpha) - float(np.dot(W_T, log_aT))
        d_alpha = n * r / alpha - float(np.dot(r * W_T + WX_T, 1.0 / (alpha + data.uT)))
        theta = np.array([r, alpha])
        value = -ll / n + penalizer * float(np.sum(theta**2))
        grad = -np.array([d_r, d_alpha]) / n * theta + 2.0 * penalizer * theta**2
        return value, grad

    @staticmethod
    def _log_dead_odds(params, x, tx, T):
        return np.full(np.broadcast(x, tx, T).shape, -np.inf)

    @staticmethod
    def _alive_expectation(params, t, x, T):
        r, alpha = params[:2]
        return (r + x) * t / (alpha + T)

    @staticmethod
    def _alive_purchase_probability(params, t, x, T):
        r, alpha = params[:2]
        return -np.expm1(-(r + x) * np.log1p(t / (alpha + T)))

    @staticmethod
    def _unconditional(params, t):
        r, alpha = params[:2]
        return r * t / alpha
