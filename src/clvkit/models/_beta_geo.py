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
from scipy.special import betainc, betaln, digamma, gammaln, hyp2f1, polygamma, roots_legendre

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


class _Rows:
    """What the objective and the Hessian share at one parameter vector (see :func:`objective`)."""

    def __init__(self, log_params: FloatArray, data: FitData, modified: bool):
        self.theta = np.exp(np.asarray(log_params, dtype=float))
        r, alpha, a, b = self.theta
        cache = data.cache
        if "W_x" not in cache:
            cache["W_x"] = np.bincount(data.ix, weights=data.w, minlength=data.ux.size)
            cache["W_T"] = np.bincount(data.iT, weights=data.w, minlength=data.uT.size)
            cache["WX_T"] = np.bincount(data.iT, weights=data.w * data.x, minlength=data.uT.size)
        self.W_x, self.W_T, self.WX_T = cache["W_x"], cache["W_T"], cache["WX_T"]
        ux = data.ux
        # per distinct x: the second Beta argument of the posterior and the dropout denominator
        self.big_b = b + ux + (1.0 if modified else 0.0)
        if modified:
            self.drop_den = b + ux
            drop_const = np.log(a) - np.log(self.drop_den)
        else:
            self.drop_den = b + np.maximum(ux, 1.0) - 1.0
            with np.errstate(invalid="ignore", divide="ignore"):
                drop_const = np.where(ux > 0, np.log(a) - np.log(self.drop_den), -np.inf)
        # per distinct T and t_x
        self.inv_aT = 1.0 / (alpha + data.uT)
        self.inv_atx = 1.0 / (alpha + data.utx)
        self.log_aT_u = np.log(alpha + data.uT)
        # per row: d = log-odds of having dropped out, e = exp(-|d|), s = expit(d)
        self.L = self.log_aT_u[data.iT] - np.log(alpha + data.utx)[data.itx]  # log((alpha+T)/(alpha+t_x)) >= 0
        self.k = r + data.x
        with np.errstate(invalid="ignore"):
            self.d = drop_const[data.ix] + self.k * self.L
        # expit and softplus from one exp (np.logaddexp is several times slower)
        self.e = np.exp(-np.abs(self.d))
        self.s = np.where(self.d >= 0.0, 1.0, self.e) / (1.0 + self.e)
        self.ws = data.w * self.s
        self.gap = self.inv_atx[data.itx] - self.inv_aT[data.iT]  # 1/(alpha+t_x) - 1/(alpha+T) >= 0


def objective(log_params: FloatArray, data: FitData, penalizer: float, *, modified: bool) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood (+ lifetimes' L2 penalty) and its analytic gradient in log-params.

    With ``d = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))`` (the log-odds of having
    dropped out) the per-row log-likelihood is ``head(x) - (r+x) log(alpha+T) + softplus(d)``
    and ``s = expit(d)`` is the posterior probability of the dropped-out branch. Terms that
    depend on x alone, or on T alone, are summed once per distinct value with precomputed
    weights; only ``d``, ``expit`` and ``softplus`` are evaluated per row.
    """
    rows = _Rows(log_params, data, modified)
    r, alpha, a, b = rows.theta
    W_x, W_T, WX_T = rows.W_x, rows.W_T, rows.WX_T
    n = data.total_weight
    ux, ix = data.ux, data.ix
    big_b = rows.big_b
    beta_term = betaln(a, big_b) - betaln(a, b)
    d_beta_a = digamma(a + b) - digamma(a + big_b)
    d_beta_b = digamma(big_b) - digamma(a + big_b) - digamma(b) + digamma(a + b)
    softplus = np.maximum(rows.d, 0.0) + np.log1p(rows.e)
    log_alpha = np.log(alpha)
    sum_log_aT = float(np.dot(W_T, rows.log_aT_u))
    ll_total = (
        float(np.dot(W_x, gammaln(r + ux) + beta_term)) - n * gammaln(r) + n * r * log_alpha
        - (r * sum_log_aT + float(np.dot(WX_T, rows.log_aT_u))) + float(np.dot(data.w, softplus))
    )
    g_r = float(np.dot(W_x, digamma(r + ux))) - n * digamma(r) + n * log_alpha - sum_log_aT + float(np.dot(rows.ws, rows.L))
    g_alpha = (
        n * r / alpha - float(np.dot(r * W_T + WX_T, rows.inv_aT))
        - float(np.dot(rows.ws * rows.k, rows.gap))
    )
    sum_ws_x = np.bincount(ix, weights=rows.ws, minlength=ux.size)
    g_a = float(np.dot(W_x, d_beta_a)) + float(sum_ws_x.sum()) / a
    g_b = float(np.dot(W_x, d_beta_b)) - float(np.dot(sum_ws_x, _inverse_where_used(rows.drop_den, sum_ws_x)))
    theta = rows.theta
    value = -ll_total / n + penalizer * float(np.sum(theta**2))
    grad = -np.array([g_r, g_alpha, g_a, g_b]) / n * theta + 2.0 * penalizer * theta**2
    return value, grad


def hessian(log_params: FloatArray, data: FitData, penalizer: float, *, modified: bool) -> FloatArray:
    """Analytic Hessian of :func:`objective` in log-parameters.

    With ``q = s (1 - s)`` and the derivatives of ``d`` (``d_r = L``, ``d_alpha = -(r+x) gap``,
    ``d_a = 1/a``, ``d_b = -1/D``, D the dropout denominator b+x-1), each row adds
    ``q d_i d_j + s d_ij`` to the Hessian of the log-likelihood in (r, alpha, a, b); the terms
    in x alone (gammaln, betaln: trigamma) and T alone are summed per distinct value. In
    log-parameters ``H_ij = theta_i theta_j F_ij + delta_ij theta_i F_i`` (F the derivatives of
    the objective in theta), plus ``4 penalizer theta_i^2`` on the diagonal.
    """
    rows = _Rows(log_params, data, modified)
    r, alpha, a, b = rows.theta
    W_x, W_T, WX_T = rows.W_x, rows.W_T, rows.WX_T
    n = data.total_weight
    ux, ix, w = data.ux, data.ix, data.w
    big_b = rows.big_b
    L, k, gap = rows.L, rows.k, rows.gap
    q = rows.e / (1.0 + rows.e) ** 2  # s (1 - s) on both sides of d = 0
    wq = w * q
    curvature_L = rows.inv_atx[data.itx] ** 2 - rows.inv_aT[data.iT] ** 2  # d^2 L / d alpha^2
    kg = k * gap
    sum_wq_x = np.bincount(ix, weights=wq, minlength=ux.size)
    sum_ws_x = np.bincount(ix, weights=rows.ws, minlength=ux.size)
    sum_wqL_x = np.bincount(ix, weights=wq * L, minlength=ux.size)
    sum_wqkg_x = np.bincount(ix, weights=wq * kg, minlength=ux.size)
    inv_den = _inverse_where_used(rows.drop_den, sum_wq_x + sum_ws_x)
    trigamma_ab = polygamma(1, a + b)
    trigamma_abx = polygamma(1, a + big_b)
    beta_aa = float(np.dot(W_x, trigamma_ab - trigamma_abx))
    beta_bb = float(np.dot(W_x, polygamma(1, big_b) - trigamma_abx)) + n * (trigamma_ab - polygamma(1, b))
    h = np.empty((4, 4))
    h[0, 0] = float(np.dot(W_x, polygamma(1, r + ux))) - n * polygamma(1, r) + float(np.dot(wq, L * L))
    h[0, 1] = n / alpha - float(np.dot(W_T, rows.inv_aT)) - float(np.dot(wq * L, kg)) - float(np.dot(rows.ws, gap))
    h[1, 1] = (
        -n * r / alpha**2 + float(np.dot(r * W_T + WX_T, rows.inv_aT**2))
        + float(np.dot(wq * kg, kg)) + float(np.dot(rows.ws * k, curvature_L))
    )
    h[0, 2] = float(sum_wqL_x.sum()) / a
    h[0, 3] = -float(np.dot(sum_wqL_x, inv_den))
    h[1, 2] = -float(sum_wqkg_x.sum()) / a
    h[1, 3] = float(np.dot(sum_wqkg_x, inv_den))
    h[2, 2] = beta_aa + float(sum_wq_x.sum() - sum_ws_x.sum()) / a**2
    h[2, 3] = beta_aa - float(np.dot(sum_wq_x, inv_den)) / a
    h[3, 3] = beta_bb + float(np.dot(sum_wq_x + sum_ws_x, inv_den**2))
    h = np.triu(h) + np.triu(h, 1).T
    theta = rows.theta
    _, grad = objective(log_params, data, 0.0, modified=modified)
    # objective = -LL/n: F = -h/n in theta; the chain rule through theta = exp(u) adds theta_i F_i
    out = -h / n * np.outer(theta, theta) + np.diag(grad)
    return out + np.diag(4.0 * penalizer * theta**2)


def _inverse_where_used(den: FloatArray, used: FloatArray) -> FloatArray:
    """1/den where a per-x sum is non-zero, else 0 (BG/NBD's b+x-1 at x = 0 never enters)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(used != 0, 1.0 / den, 0.0)
