"""Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha) and dies
after an exponential lifetime with rate mu ~ Gamma(s, beta), independently. Equations follow
Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions"
(brucehardie.com note 009), written with the tail integral

    F(y) = int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du
         = (m+y)^-(r+s+x) / (r+s+x) 2F1(r+s+x, j; r+s+x+1; |alpha-beta|/(m+y)),

m = max(alpha, beta), j the exponent of the smaller of the two. Its log is computed without
cancellation (Euler's transformation when j > 1), and ``F(t_x) - F(T)`` as
``F(t_x) (1 - exp(log F(T) - log F(t_x)))``:

* likelihood (eq. 18): Gamma(r+x) alpha^r beta^s / Gamma(r)
  [ (alpha+T)^-(r+x) (beta+T)^-s + s (F(t_x) - F(T)) ];
* P(alive) (eq. 36) = 1 / (1 + s (F(t_x) - F(T)) (alpha+T)^(r+x) (beta+T)^s);
* E[X(T, T+t] | x, t_x, T] (eq. 41) = P(alive) (r+x)/(alpha+T) (beta+T) [1 - ((beta+T)/(beta+T+t))^(s-1)]/(s-1),
  with the bracket evaluated as ``u exprel(-(s-1) u)``, u = log(1 + t/(beta+T)) (finite at s = 1);
* P(a purchase in (T, T+t] | alive) = (r+x)(alpha+T)^(r+x)(beta+T)^s [G(0) - G(t)] with G the
  tail integral of (alpha+T+u)^-(r+x+1) (beta+T+u)^-s;
* E[X(t)] (eq. 27) = r beta / alpha [1 - (beta/(beta+t))^(s-1)]/(s-1).

The likelihood's gradient is taken by central differences (2F1 has no closed-form parameter
derivatives); the fit runs on collapsed rows like the other models.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import exprel, gammaln, hyp2f1, logsumexp, roots_legendre

from clvkit.models._purchase_base import FitData, FloatArray, PurchaseModelBase, log1mexp

#: Relative step of the central-difference gradient of the log-likelihood (log-parameters).
GRADIENT_STEP = 1e-6
#: Gauss-Legendre nodes per panel, panels, and negligible relative term of the tail quadrature.
TAIL_QUADRATURE_NODES = 12
TAIL_QUADRATURE_PANELS = 80
TAIL_PANEL_GROWTH = 12.0
TAIL_NEGLIGIBLE = 1e-13
#: Above this total exponent k1 + k2 the tail integral goes straight to quadrature: scipy's 2F1 with
#: parameters in the thousands and z near 1 takes ~0.7 ms per value (and often fails), the
#: quadrature ~0.1 ms with the same value to 1e-15 (a Pareto/NBD fit wandering to s ~ 1e4: 550 s -> 81 s).
TAIL_HYPERGEOMETRIC_MAX_K = 1000.0
#: Above this argument exprel(z) is evaluated in log form (it would overflow).
EXPREL_LOG_FROM = 30.0


def log_tail(y: FloatArray, A: FloatArray, k1: FloatArray, B: FloatArray, k2: FloatArray) -> FloatArray:
    """log int_y^inf (A+u)^-k1 (B+u)^-k2 du for k1 + k2 > 1 (all terms positive, no cancellation)."""
    y, A, k1, B, k2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (y, A, k1, B, k2)))
    large = (k1 + k2) > TAIL_HYPERGEOMETRIC_MAX_K
    if large.any():
        out = np.empty(y.shape)
        out[large] = _log_tail_quadrature(y[large], A[large], k1[large], B[large], k2[large])
        small = ~large
        out[small] = log_tail(y[small], A[small], k1[small], B[small], k2[small]) if small.any() else out[small]
        return out
    big = np.maximum(A, B)
    j = np.where(A >= B, k2, k1)  # exponent of the smaller base
    K = k1 + k2
    z = np.abs(A - B) / (big + y)
    with np.errstate(all="ignore"):
        direct = np.log(hyp2f1(j, K - 1.0, K, z))
        euler = (1.0 - j) * np.log1p(-z) + np.log(hyp2f1(K - j, 1.0, K, z))
        log_hyp = np.where(j > 1.0, euler, direct)
        # where scipy's 2F1 fails in the preferred form, the other form, then Pfaff's
        log_hyp = np.where(np.isfinite(log_hyp), log_hyp, np.where(j > 1.0, direct, euler))
        bad = ~np.isfinite(log_hyp)
        if bad.any():
            zb = z[bad]
            log_hyp[bad] = -j[bad] * np.log1p(-zb) + np.log(hyp2f1(j[bad], 1.0, K[bad], zb / (zb - 1.0)))
    out = (1.0 - K) * np.log(big + y) - np.log(K - 1.0) + log_hyp
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = _log_tail_quadrature(y[bad], A[bad], k1[bad], B[bad], k2[bad])
    return out


def _log_tail_quadrature(y: FloatArray, A: FloatArray, k1: FloatArray, B: FloatArray, k2: FloatArray) -> FloatArray:
    """log int_y^inf (A+u)^-k1 (B+u)^-k2 du by quadrature (no 2F1): the fallback of :func:`log_tail`.

    With m = min(A, B), d = |A - B| and m + u = (m + y) e^v, the integrand is
    (m+y)^(1-K) e^((1-K) v) (1 + d e^-v/(m+y))^-(K-j): composite Gauss-Legendre on [0, v_hi],
    and the closed-form exponential tail beyond v_hi, where the last factor is 1 to 1e-12.
    """
    nodes, weights = roots_legendre(TAIL_QUADRATURE_NODES)
    small = np.minimum(A, B)
    d = np.abs(A - B)
    j = np.where(A <= B, k1, k2)  # exponent of the smaller base
    K = k1 + k2
    base = np.log(small + y)
    v_hi = np.log(np.maximum(1.0, (K - j) * d / (small + y) / TAIL_NEGLIGIBLE))
    # panels widening geometrically from v = 0 resolve fast decays (large K) and slow ones alike
    grid = np.expm1(TAIL_PANEL_GROWTH * np.linspace(0.0, 1.0, TAIL_QUADRATURE_PANELS + 1)) / np.expm1(TAIL_PANEL_GROWTH)
    edges = v_hi[:, None] * grid[None, :]
    left, right = edges[:, :-1, None], edges[:, 1:, None]
    half = 0.5 * (right - left)
    v = left + half * (nodes[None, None, :] + 1.0)
    ratio = (d / (small + y))[:, None, None] * np.exp(-v)
    log_integrand = ((1.0 - K) * base)[:, None, None] + (1.0 - K)[:, None, None] * v - (K - j)[:, None, None] * np.log1p(ratio)
    with np.errstate(divide="ignore"):
        log_terms = log_integrand + np.log(half * weights[None, None, :])
    body = logsumexp(log_terms.reshape(len(y), -1), axis=1)
    tail = (1.0 - K) * base + (1.0 - K) * v_hi - np.log(K - 1.0)
    return np.logaddexp(body, tail)


def _log_exprel(z: FloatArray) -> FloatArray:
    """log((e^z - 1) / z), finite for every real z."""
    z = np.asarray(z, dtype=float)
    with np.errstate(all="ignore"):
        small = np.log(exprel(np.minimum(z, EXPREL_LOG_FROM)))
        large = z - np.log(np.maximum(z, EXPREL_LOG_FROM)) + np.log(-np.expm1(-np.maximum(z, EXPREL_LOG_FROM)))
    return np.where(z > EXPREL_LOG_FROM, large, small)


def _log_survivor_integral(params, x, tx, T) -> FloatArray:
    """log(F(t_x) - F(T)); -inf where t_x = T."""
    r, alpha, s, beta = params
    at_tx = log_tail(tx, alpha, r + x, beta, s + 1.0)
    at_T = log_tail(T, alpha, r + x, beta, s + 1.0)
    return at_tx + log1mexp(at_T - at_tx)


def _loglik_rows(params, x, tx, T) -> FloatArray:
    r, alpha, s, beta = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return head + np.logaddexp(alive, np.log(s) + _log_survivor_integral(params, x, tx, T))


class ParetoNBDModel(PurchaseModelBase):
    """Pareto/NBD purchase model; parameters ``r, alpha, s, beta`` (see the module docstring).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters in rescaled time (largest T = 1).
    initial_params : mapping of r, alpha, s, beta, optional
        Starting values of the first optimiser start in the summary's time unit.
    random_state : int, optional
        Seed of the further starts.
    n_starts : int
        Most optimiser starts (the seeded ones run only when the first is not accepted).

    Attributes are those of :class:`clvkit.models.bgnbd.BetaGeoModel`.
    """

    name: ClassVar[str] = "pnbd"
    MODEL_NAME: ClassVar[str] = "Pareto/NBD"
    PARAM_NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    TIME_PARAMS: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    @staticmethod
    def _objective(log_params: FloatArray, data: FitData, penalizer: float) -> tuple[float, FloatArray]:
        codes_tx, x_tx, tx_u = data.pairs("tx")
        codes_T, x_T, T_u = data.pairs("T")

        def value(lp: FloatArray) -> float:
            theta = np.exp(lp)
            r, alpha, s, beta = theta
            with np.errstate(all="ignore"):
                # the 2F1 tails depend on (x, t_x) and (x, T) only: once per distinct pair
                at_tx = log_tail(tx_u, alpha, r + x_tx, beta, s + 1.0)[codes_tx]
                at_T = log_tail(T_u, alpha, r + x_T, beta, s + 1.0)[codes_T]
                x = data.x
                head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                alive = -(r + x) * np.log(alpha + data.T) - s * np.log(beta + data.T)
                ll = head + np.logaddexp(alive, np.log(s) + at_tx + log1mexp(at_T - at_tx))
            return -float(np.dot(data.w, ll)) / data.total_weight + penalizer * float(np.sum(theta**2))

        center = value(log_params)
        grad = np.empty_like(log_params)
        for i in range(log_params.size):
            step = GRADIENT_STEP * max(1.0, abs(log_params[i]))
            up, down = log_params.copy(), log_params.copy()
            up[i] += step
            down[i] -= step
            grad[i] = (value(up) - value(down)) / (2.0 * step)
        return center, grad

    @staticmethod
    def _loglik_rows(params, x, tx, T):
        return _loglik_rows(params, x, tx, T)

    @staticmethod
    def _log_dead_odds(params, x, tx, T):
        r, alpha, s, beta = params
        x, tx, T = np.broadcast_arrays(x, tx, T)
        return (
            np.log(s) + _log_survivor_integral(params, x, tx, T)
            + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
        )

    @staticmethod
    def _alive_expectation(params, t, x, T):
        r, alpha, s, beta = params
        u = np.log1p(t / (beta + T))
        with np.errstate(divide="ignore"):
            log_bracket = np.log(u) + _log_exprel(-(s - 1.0) * u)
            out = np.exp(np.log(r + x) - np.log(alpha + T) + np.log(beta + T) + log_bracket)
        return np.where(t > 0, out, 0.0)

    @staticmethod
    def _alive_purchase_probability(params, t, x, T):
        r, alpha, s, beta = params
        A, B = alpha + T, beta + T
        g0 = log_tail(0.0, A, r + x + 1.0, B, s)
        gt = log_tail(t, A, r + x + 1.0, B, s)
        with np.errstate(divide="ignore"):
            log_p = np.log(r + x) + (r + x) * np.log(A) + s * np.log(B) + g0 + log1mexp(gt - g0)
        return np.clip(np.where(t > 0, np.exp(log_p), 0.0), 0.0, 1.0)

    @staticmethod
    def _unconditional(params, t):
        r, alpha, s, beta = params
        u = np.log1p(t / beta)
        with np.errstate(divide="ignore"):
            out = np.exp(np.log(r) - np.log(alpha) + np.log(beta) + np.log(u) + _log_exprel(-(s - 1.0) * u))
        return np.where(t > 0, out, 0.0)

    @staticmethod
    def _mean_dropout(params) -> float:
        _, _, s, beta = params
        return s / beta  # dropouts expected per (rescaled) observation span

    @staticmethod
    def _degenerate_words(params) -> str:
        s, beta = params["s"], params["beta"]
        return (
            f"s={s:.3g}, beta={beta:.3g}: the mean dropout rate s/beta={s / beta:.3g} per period is "
            "practically 0 (s -> 0 or beta -> infinity)"
        )
