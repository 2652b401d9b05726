"""Formulas shared by BG/NBD and MBG/NBD (beta-geometric dropout after purchases).

Both models share the structure of their likelihoods and predictions; MBG/NBD (Batislam,
Denizel & Filiztekin 2007) also lets a customer drop out right after the first purchase,
which shifts ``b + x - 1`` to ``b + x`` and applies the dropout term to ``x = 0`` as well.

The conditional expectation of purchases given alive is, with p ~ Beta(a, b'), lambda ~
Gamma(k, A) (FHL 2005a eq. 10 without its P(alive) denominator):

    E[(1 - exp(-lambda p t)) / p] = c / (a - 1) [1 - (A/(A+t))^k 2F1(k, b'; c; t/(A+t))],
    c = a + b' - 1,

evaluated with Euler's transformation where 2F1 overflows, by interpolation across the
removable singularity at a = 1, and by quadrature over p (in log p, no 2F1) wherever the
closed form is not finite or leaves its bounds ``0 <= E <= k t / A`` (the no-dropout value).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, digamma, gammaln, hyp2f1, roots_legendre

from clvkit.models._purchase_base import FitData, FloatArray

#: Within this distance of a = 1 the closed form (0/0 at a = 1) is interpolated in a.
A_NEAR_ONE = 1e-3
#: Gauss-Legendre nodes per panel and panels of the quadrature fallback.
QUADRATURE_NODES = 12
QUADRATURE_PANELS = 80
#: k w p below which (1 - (1 + p w)^-k)/p is taken as k w (relative error of that order).
QUADRATURE_NEGLIGIBLE = 1e-12
#: Relative slack of the bounds 0 <= E <= k t / A before the closed form is distrusted.
BOUND_SLACK = 1e-6


def _closed_form(k: FloatArray, A: FloatArray, a: float, bp: FloatArray, t: FloatArray) -> FloatArray:
    c = a + bp - 1.0
    z = t / (A + t)
    log_one_minus_z = -np.log1p(t / A)
    with np.errstate(all="ignore"):
        log_h = np.log(hyp2f1(k, bp, c, z))
        bad = ~np.isfinite(log_h)
        if bad.any():
            log_h[bad] = (c - k - bp)[bad] * log_one_minus_z[bad] + np.log(
                hyp2f1((c - k)[bad], (c - bp)[bad], c[bad], z[bad])
            )
        bracket = -np.expm1(log_h + k * log_one_minus_z)
        return c / (a - 1.0) * bracket


def _quadrature(k: FloatArray, A: FloatArray, a: float, bp: FloatArray, t: FloatArray) -> FloatArray:
    """E_p[g(p)], g(p) = (1 - (1 + p w)^-k) / p, p ~ Beta(a, b'), w = t/A, by quadrature in log p.

    Below ``p_lo`` (where ``k w p_lo`` is negligible) g = k w, which contributes
    ``k w I_{p_lo}(a, b')``; the rest is composite Gauss-Legendre in u = log p on [log p_lo, 0].
    No hypergeometric function is involved, so this is the fallback wherever 2F1 fails.
    """
    nodes, weights = roots_legendre(QUADRATURE_NODES)
    w = (t / A)[:, None]
    kk, bb = k[:, None], bp[:, None]
    p_lo = QUADRATURE_NEGLIGIBLE / ((kk + 1.0) * w + 1.0)
    lo = np.log(p_lo)
    edges = lo * (1.0 - np.linspace(0.0, 1.0, QUADRATURE_PANELS + 1))[None, :]  # lo -> 0
    left, right = edges[:, :-1, None], edges[:, 1:, None]
    half = 0.5 * (right - left)
    u = left + half * (nodes[None, None, :] + 1.0)
    p = np.exp(u)
    with np.errstate(all="ignore"):
        log_density = (a - 1.0) * u + (bb[:, :, None] - 1.0) * np.log1p(-p) - betaln(a, bb)[:, :, None]
        g_times_p = -np.expm1(-kk[:, :, None] * np.log1p(p * w[:, :, None]))
        integrand = np.exp(log_density) * g_times_p  # Beta(p) g(p) dp = p^(a-1) (1-p)^(b'-1)/B g(p) p du
        body = np.sum(integrand * half * weights[None, None, :], axis=(1, 2))
        head = (k * t / A) * betainc(a, bp, p_lo[:, 0])
    return head + body


def alive_expectation(k: FloatArray, A: FloatArray, a: float, bp: FloatArray, t: FloatArray) -> FloatArray:
    """E[(1 - exp(-lambda p t)) / p] for p ~ Beta(a, b'), lambda ~ Gamma(k, A) (see module doc)."""
    k, A, bp, t = (np.array(v, dtype=float) for v in np.broadcast_arrays(k, A, bp, t))
    shape = k.shape
    k, A, bp, t = k.ravel(), A.ravel(), bp.ravel(), t.ravel()
    if abs(a - 1.0) < A_NEAR_ONE:
        # removable singularity: cubic (Lagrange) interpolation in a through 1 +- h, 1 +- 2h
        h = A_NEAR_ONE
        grid = (1.0 - 2 * h, 1.0 - h, 1.0 + h, 1.0 + 2 * h)
        out = np.zeros_like(k)
        for i, ai in enumerate(grid):
            basis = np.prod([(a - aj) / (ai - aj) for j, aj in enumerate(grid) if j != i])
            out += basis * _closed_form(k, A, ai, bp, t)
    else:
        out = _closed_form(k, A, a, bp, t)
    bound = k * t / A  # E[purchases | alive] without dropout
    bad = ~np.isfinite(out) | (out < -BOUND_SLACK * bound) | (out > bound * (1.0 + BOUND_SLACK))
    if bad.any():
        fallback = _quadrature(k[bad], A[bad], a, bp[bad], t[bad])
        out[bad] = np.where(np.isfinite(fallback), fallback, np.clip(out[bad], 0.0, bound[bad]))
        out[bad] = np.where(np.isfinite(out[bad]), out[bad], bound[bad])
    out = np.where(t > 0, out, 0.0)
    return np.clip(out, 0.0, bound).reshape(shape)


def log_dead_odds(params, x, tx, T, *, modified: bool) -> FloatArray:
    """log(P(dead)/P(alive)) = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x)) (BG/NBD, x > 0);
    MBG/NBD uses b + x and applies it to x = 0 as well."""
    r, alpha, a, b = params
    x, tx, T = np.broadcast_arrays(x, tx, T)
    growth = (r + x) * np.log1p((T - tx) / (alpha + tx))
    if modified:
        return np.log(a) - np.log(b + x) + growth
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + growth
    return np.where(x > 0, odds, -np.inf)


def loglik_rows(params, x, tx, T, *, modified: bool) -> FloatArray:
    """Per-row log-likelihood (FHL 2005a eq. 6; Batislam et al. 2007 for MBG/NBD)."""
    r, alpha, a, b = params
    shift = 1.0 if modified else 0.0
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + shift) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + T)
    if modified:
        dropped = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            dropped = np.where(
                x > 0, np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + tx), -np.inf
            )
    return head + np.logaddexp(still_alive, dropped)


def objective(log_params: FloatArray, data: FitData, penalizer: float, *, modified: bool) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood (+ lifetimes' L2 penalty) and its analytic gradient in log-params.

    With ``d = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))`` (the log-odds of having
    dropped out) the per-row log-likelihood is ``head(x) - (r+x) log(alpha+T) + softplus(d)``
    and ``w = expit(d)`` is the posterior probability of the dropped-out branch. Terms that
    depend on x alone, or on T alone, are summed once per distinct value with precomputed
    weights; only ``d``, ``expit`` and ``softplus`` are evaluated per row.
    """
    r, alpha, a, b = np.exp(log_params)
    cache = data.cache
    if "wx" not in cache:
        cache["wx"] = data.w * data.x
        cache["W_x"] = np.bincount(data.ix, weights=data.w, minlength=data.ux.size)
        cache["W_T"] = np.bincount(data.iT, weights=data.w, minlength=data.uT.size)
        cache["WX_T"] = np.bincount(data.iT, weights=cache["wx"], minlength=data.uT.size)
    W_x, W_T, WX_T = cache["W_x"], cache["W_T"], cache["WX_T"]
    n = data.total_weight
    ux, ix = data.ux, data.ix
    shift = 1.0 if modified else 0.0
    big_b = b + ux + shift  # second Beta argument of the posterior
    beta_term = betaln(a, big_b) - betaln(a, b)
    d_beta_a = digamma(a + b) - digamma(a + big_b)
    d_beta_b = digamma(big_b) - digamma(a + big_b) - digamma(b) + digamma(a + b)
    if modified:
        drop_den = b + ux
        drop_const = np.log(a) - np.log(drop_den)
    else:
        drop_den = b + np.maximum(ux, 1.0) - 1.0
        drop_const = np.where(ux > 0, np.log(a) - np.log(drop_den), -np.inf)

    log_aT_u = np.log(alpha + data.uT)
    log_atx_u = np.log(alpha + data.utx)
    L = log_aT_u[data.iT] - log_atx_u[data.itx]  # log((alpha+T)/(alpha+t_x)) >= 0
    k = r + data.x
    with np.errstate(invalid="ignore"):
        d = drop_const[ix] + k * L
    # expit and softplus from one exp (np.logaddexp is several times slower)
    e = np.exp(-np.abs(d))
    softplus = np.maximum(d, 0.0) + np.log1p(e)
    ww4 = data.w * np.where(d >= 0.0, 1.0, e) / (1.0 + e)
    inv_gap = 1.0 / (alpha + data.utx)[data.itx] - 1.0 / (alpha + data.uT)[data.iT]

    log_alpha = np.log(alpha)
    sum_log_aT = float(np.dot(W_T, log_aT_u))
    ll_total = (
        float(np.dot(W_x, gammaln(r + ux) + beta_term)) - n * gammaln(r) + n * r * log_alpha
        - (r * sum_log_aT + float(np.dot(WX_T, log_aT_u))) + float(np.dot(data.w, softplus))
    )
    g_r = float(np.dot(W_x, digamma(r + ux))) - n * digamma(r) + n * log_alpha - sum_log_aT + float(np.dot(ww4, L))
    g_alpha = (
        n * r / alpha - float(np.dot(r * W_T + WX_T, 1.0 / (alpha + data.uT)))
        - float(np.dot(ww4 * k, inv_gap))
    )
    sum_ww4_x = np.bincount(ix, weights=ww4, minlength=ux.size)
    g_a = float(np.dot(W_x, d_beta_a)) + float(sum_ww4_x.sum()) / a
    g_b = float(np.dot(W_x, d_beta_b)) - float(np.dot(sum_ww4_x, np.where(sum_ww4_x > 0, 1.0 / drop_den, 0.0)))
    theta = np.array([r, alpha, a, b])
    value = -ll_total / n + penalizer * float(np.sum(theta**2))
    grad = -np.array([g_r, g_alpha, g_a, g_b]) / n * theta + 2.0 * penalizer * theta**2
    return value, grad
