"""Maximum-likelihood fitting shared by the purchase and spend models.

Every model hands in a vectorised *mean* negative log-likelihood with its gradient in
log-parameters, evaluated on collapsed sufficient statistics (distinct rows with counts as
weights, so the collapsed fit equals the per-customer fit). This module collapses rows
(:func:`collapse`, hashing, O(rows)), runs seeded L-BFGS-B starts (the purchase models run the
seeded ones only when the first start's optimum is not accepted), polishes the best one with
Newton steps on a Hessian computed once at the optimum -- the model's analytic Hessian where it
has one and it passes a one-gradient check, else central differences of the analytic gradient --
and judges the result: a stop that scipy calls "precision loss" is accepted when the Hessian is positive
definite and either the gradient norm is small or -- scale-aware -- the total log-likelihood is
estimated to lie within ``FIT_LOG_LIKELIHOOD_SHORTFALL`` nats of its optimum (n/2 g'H^-1 g).
Both tests use the *projected* gradient, so a parameter that the likelihood drives to the box
on log-parameters (a boundary maximum, e.g. BG/NBD a, b -> 0 or -> infinity) is accepted with a
logged warning and NaN standard errors for it; otherwise the caller may walk a penalizer path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from clvkit.constants import (
    FIT_GRADIENT_TOLERANCE,
    FIT_HESSIAN_CHECK_TOLERANCE,
    FIT_HESSIAN_STEP,
    FIT_LOG_LIKELIHOOD_SHORTFALL,
    FIT_LOG_PARAM_BOUND,
    FIT_MAX_ITERATIONS,
    FIT_NEWTON_STEPS,
    FIT_START_SCALE,
    FIT_VALUE_ROUNDING,
)

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
#: ``f(log_params) -> (mean negative log-likelihood, gradient)``
Objective = Callable[[FloatArray], tuple[float, FloatArray]]
#: ``h(log_params) -> Hessian of the objective`` (analytic, where a model has one)
Hessian = Callable[[FloatArray], FloatArray]


@dataclass
class OptimumReport:
    """How an optimisation ended (what ``fit_report_`` shows)."""

    log_params: FloatArray
    objective: float
    gradient_norm: float
    hessian: FloatArray
    hessian_positive_definite: bool
    converged: bool
    message: str
    starts: int
    start_objectives: list[float] = field(default_factory=list)
    #: estimated distance of the total log-likelihood from its optimum (nats), NaN if unknown
    log_likelihood_shortfall: float = float("nan")
    #: which log-parameters ended on the box (the likelihood is maximised in a limit there)
    at_bound: list[bool] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective": float(self.objective),
            "gradient_norm": float(self.gradient_norm),
            "hessian_positive_definite": bool(self.hessian_positive_definite),
            "converged": bool(self.converged),
            "optimizer_message": self.message,
            "starts": int(self.starts),
            "start_objectives": [float(v) for v in self.start_objectives],
            "log_likelihood_shortfall": float(self.log_likelihood_shortfall),
            "at_bound": [bool(v) for v in self.at_bound],
        }


#: What the optimiser sees where the objective is not finite (a value its line search rejects).
NON_FINITE_VALUE = float(np.finfo(float).max / 1e10)
#: Combined integer keys of :func:`collapse` stay below this (int64 without overflow).
_KEY_LIMIT = 2**62


def collapse(columns: Sequence[FloatArray], weights: FloatArray | None) -> tuple[list[FloatArray], FloatArray]:
    """Distinct rows of ``columns`` and their summed weights (counts of identical customers).

    Each column is hashed to integer codes, the codes are combined into one integer key per
    row (re-hashed whenever the key range would overflow) and the keys hashed once more: O(rows)
    without sorting; the distinct rows come in order of first appearance.
    """
    n = columns[0].size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    values = [np.asarray(c, dtype=float) for c in columns]
    if n == 0:
        return values, w
    codes, uniques = pd.factorize(values[0])
    key_range = len(uniques)
    for column in values[1:]:
        column_codes, column_uniques = pd.factorize(column)
        if key_range * len(column_uniques) >= _KEY_LIMIT:
            codes, uniques = pd.factorize(codes)
            key_range = len(uniques)
        codes = codes * len(column_uniques) + column_codes
        key_range *= len(column_uniques)
    if len(values) > 1:
        codes, uniques = pd.factorize(codes)
    # factorize numbers rows in order of appearance: a code is new where it exceeds all before it
    first = np.flatnonzero(np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]])
    summed = np.bincount(codes, weights=w, minlength=len(uniques))
    keep = first[summed > 0]
    return [v[keep] for v in values], summed[summed > 0]


def check_sample_weight(sample_weight: Any, n: int, model: str) -> FloatArray | None:
    """``sample_weight`` as floats (counts of identical rows), or a ``UserInputError``."""
    from clvkit.exceptions import UserInputError

    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=float)
    if w.shape != (n,):
        raise UserInputError(
            f"{model} fit: sample_weight must hold one count per summary row ({n}), got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise UserInputError(
            f"{model} fit: sample_weight must be finite counts >= 0 with at least one positive "
            "(the number of customers sharing each row)"
        )
    return w


def numerical_hessian(objective: Objective, x: FloatArray) -> FloatArray:
    """Symmetrised central-difference Jacobian of the analytic gradient."""
    k = x.size
    hessian = np.empty((k, k))
    for i in range(k):
        step = FIT_HESSIAN_STEP * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        hessian[:, i] = (objective(up)[1] - objective(down)[1]) / (2.0 * step)
    return 0.5 * (hessian + hessian.T)


def hessian_at(objective: Objective, x: FloatArray, grad: FloatArray, analytic: Hessian | None) -> FloatArray:
    """The analytic Hessian if it predicts the gradient's change along one step, else central differences.

    The check costs one gradient: ``H v`` against ``g(x + v) - g(x)`` for a fixed direction ``v``
    of length ``FIT_HESSIAN_STEP`` per log-parameter; it catches an analytic Hessian that does not
    belong to the objective (e.g. a subclass overriding the likelihood) or that lost precision.
    A nearly singular analytic Hessian is replaced too (see :func:`_clearly_positive_definite`).
    """
    if analytic is not None:
        with np.errstate(all="ignore"):
            h = np.asarray(analytic(x), dtype=float)
        if h.shape == (x.size, x.size) and np.all(np.isfinite(h)):
            step = FIT_HESSIAN_STEP * np.maximum(1.0, np.abs(x)) * np.cos(np.arange(x.size) + 1.0)
            change = objective(x + step)[1] - grad
            miss = float(np.linalg.norm(h @ step - change))
            h = 0.5 * (h + h.T)
            if miss <= FIT_HESSIAN_CHECK_TOLERANCE * float(np.linalg.norm(change)) and _clearly_positive_definite(h):
                return h
            logger.debug("analytic Hessian misses the gradient change by %.2e or is nearly singular: central differences", miss)
    return numerical_hessian(objective, x)


def _clearly_positive_definite(hessian: FloatArray) -> bool:
    """Smallest eigenvalue above sqrt(eps) times the largest: far from singular.

    Near a singular Hessian (a flat direction, e.g. dropout parameters running off to a limit) the
    verdict of :func:`judge_optimum` hangs on the last digits, so there the central-difference
    Hessian decides, as it always did; the analytic one serves the well-determined fits.
    """
    eigenvalues = np.linalg.eigvalsh(hessian)
    return bool(eigenvalues[0] > np.sqrt(np.finfo(float).eps) * max(eigenvalues[-1], 0.0))


def is_positive_definite(hessian: FloatArray) -> bool:
    """Cholesky succeeds and the matrix is numerically invertible (condition below 1/eps)."""
    if not np.all(np.isfinite(hessian)):
        return False
    try:
        np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return False
    eigenvalues = np.linalg.eigvalsh(hessian)
    return bool(eigenvalues[0] > np.finfo(float).eps * max(eigenvalues[-1], 0.0))


def _safe(objective: Objective) -> Objective:
    """Non-finite objective values become +inf-like large numbers the line search rejects."""

    def wrapped(x: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(all="ignore"):
            value, grad = objective(x)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return NON_FINITE_VALUE, np.zeros_like(x)
        return float(value), grad

    return wrapped


def minimize_multistart(
    objective: Objective,
    first_start: FloatArray,
    *,
    n_starts: int,
    random_state: int | None,
    fixed_bounds: Sequence[tuple[float, float]] | None = None,
    n_weight: float | None = None,
    more_starts_if_needed: bool = False,
    hessian: Hessian | None = None,
) -> OptimumReport:
    """Minimise from ``first_start`` and ``n_starts - 1`` seeded perturbations; polish the best.

    Starts are ``first_start + N(0, FIT_START_SCALE)`` in log-parameters (seeded by
    ``random_state``). The Hessian is computed once at the best optimum, which is then polished
    by up to ``FIT_NEWTON_STEPS`` Newton steps with it while the Hessian is positive definite
    and both the objective and the gradient norm decrease. ``n_weight`` (the number of customers
    the mean NLL averages over) enables the scale-aware log-likelihood shortfall test.

    With ``more_starts_if_needed`` the seeded starts run only when the first start's polished
    optimum is not accepted by :func:`judge_optimum` as an interior optimum (not converged, or a
    parameter on the box); then the result is the one every start would give without the flag.
    ``hessian`` (analytic) replaces the central differences when it passes :func:`hessian_at`'s check.
    """
    safe = _safe(objective)
    k = first_start.size
    bounds = list(fixed_bounds) if fixed_bounds is not None else [(-FIT_LOG_PARAM_BOUND, FIT_LOG_PARAM_BOUND)] * k
    rng = np.random.default_rng(random_state)
    starts = [np.asarray(first_start, dtype=float)]
    for _ in range(max(n_starts, 1) - 1):
        starts.append(starts[0] + rng.normal(0.0, FIT_START_SCALE, size=k))
    # L-BFGS-B's tiny BLAS calls, and the dot products of the objective, are slowed several
    # times (up to ~100x) by multi-threaded BLAS on a busy machine: one thread for the whole fit
    with threadpool_limits(limits=1, user_api="blas"):
        first_batch = starts[:1] if more_starts_if_needed else starts
        results = _run_starts(safe, first_batch, bounds)
        best = min(results, key=lambda r: r.fun)
        report = _polish(safe, best, np.asarray(best.x, dtype=float), bounds, results, n_weight, hessian)
        if len(first_batch) == len(starts) or (report.converged and not any(report.at_bound)):
            return report
        logger.info(
            "first start %s (gradient norm %.2e%s): running %d seeded starts",
            "ended on the edge of the parameter range" if report.converged else "was not accepted",
            report.gradient_norm, ", Hessian not positive definite" if not report.hessian_positive_definite else "",
            len(starts) - 1,
        )
        results = results + _run_starts(safe, starts[1:], bounds)
        # the same choice as with every start run: the best optimiser result, then polished
        best = min(results, key=lambda r: r.fun)
        if best is not results[0]:
            return _polish(safe, best, np.asarray(best.x, dtype=float), bounds, results, n_weight, hessian)
        report.starts = len(results)
        report.start_objectives = [float(r.fun) for r in results]
        return report


def _run_starts(safe: Objective, starts: list[FloatArray], bounds: list[tuple[float, float]]) -> list[Any]:
    results = []
    for x0 in starts:
        x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
        res = minimize(
            safe, x0, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": FIT_MAX_ITERATIONS, "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20},
        )
        results.append(res)
    return results


def _polish(
    safe: Objective,
    best: Any,
    x: FloatArray,
    bounds: list[tuple[float, float]],
    results: list[Any],
    n_weight: float | None = None,
    analytic_hessian: Hessian | None = None,
) -> OptimumReport:
    value, grad = safe(x)
    hessian = hessian_at(safe, x, grad, analytic_hessian)
    lower, upper = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    # Newton polish with the Hessian computed once (the steps are tiny: it stays valid)
    for _ in range(FIT_NEWTON_STEPS):
        if not is_positive_definite(hessian) or np.linalg.norm(grad) == 0.0:
            break
        candidate = np.clip(x - np.linalg.solve(hessian, grad), lower, upper)
        new_value, new_grad = safe(candidate)
        # the objective may tie within rounding at the optimum: the gradient norm decides there
        if not (new_value <= value + FIT_VALUE_ROUNDING * abs(value) and np.linalg.norm(new_grad) < np.linalg.norm(grad)):
            break
        x, value, grad = candidate, new_value, new_grad
    message = str(best.message)
    test = judge_optimum(x, grad, hessian, lower, upper, n_weight)
    if test.converged and (not best.success or test.accepted_by_shortfall or np.any(test.at_bound)):
        logger.info(
            "optimizer stopped with %r; projected gradient norm %.2e, log-likelihood within %.2e nats "
            "of its optimum, Hessian positive definite%s: accepted as converged",
            message, test.gradient_norm, test.shortfall, "" if not np.any(test.at_bound) else
            f" on the free parameters (parameters {np.flatnonzero(test.at_bound).tolist()} at the bound)",
        )
    return OptimumReport(
        log_params=x, objective=value, gradient_norm=test.gradient_norm, hessian=hessian,
        hessian_positive_definite=test.positive, converged=test.converged, message=message,
        starts=len(results), start_objectives=[float(r.fun) for r in results],
        log_likelihood_shortfall=test.shortfall, at_bound=[bool(v) for v in test.at_bound],
    )


@dataclass
class OptimumTest:
    """The convergence verdict of :func:`judge_optimum`."""

    converged: bool
    gradient_norm: float
    shortfall: float
    positive: bool
    at_bound: NDArray[np.bool_]
    accepted_by_shortfall: bool


def judge_optimum(
    x: FloatArray,
    grad: FloatArray,
    hessian: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    n_weight: float | None,
) -> OptimumTest:
    """Converged when the Hessian is PD on the free parameters and the projected gradient is small.

    The projected gradient ``x - clip(x - g, lower, upper)`` is the gradient with the components
    that push a parameter out of the box removed (KKT conditions of the box-constrained fit).
    Small means: its norm below ``FIT_GRADIENT_TOLERANCE``, or the Newton decrement on the free
    parameters, scaled to the total log-likelihood, ``n/2 g_f' H_ff^-1 g_f``, below
    ``FIT_LOG_LIKELIHOOD_SHORTFALL`` nats while the bound parameters' components are below the
    gradient tolerance.
    """
    at_bound = (x <= lower + 1e-9) | (x >= upper - 1e-9)
    projected = x - np.clip(x - grad, lower, upper)
    gradient_norm = float(np.linalg.norm(projected))
    free = ~at_bound
    if not np.any(free):
        return OptimumTest(False, gradient_norm, float("nan"), False, at_bound, False)
    h_free = hessian[np.ix_(free, free)]
    positive = is_positive_definite(h_free)
    shortfall = float("nan")
    if positive and n_weight is not None:
        g_free = projected[free]
        shortfall = float(0.5 * n_weight * g_free @ np.linalg.solve(h_free, g_free))
    small_gradient = gradient_norm < FIT_GRADIENT_TOLERANCE
    by_shortfall = bool(
        not small_gradient
        and np.isfinite(shortfall)
        and shortfall < FIT_LOG_LIKELIHOOD_SHORTFALL
        and np.all(np.abs(projected[at_bound]) < FIT_GRADIENT_TOLERANCE)
    )
    converged = positive and (small_gradient or by_shortfall)
    return OptimumTest(bool(converged), gradient_norm, shortfall, bool(positive), at_bound, by_shortfall)


def standard_errors_from_hessian(
    params: dict[str, float],
    hessian: FloatArray,
    n_weight: float,
    positive: bool,
    at_bound: Sequence[bool] | None = None,
) -> dict[str, float]:
    """Delta-method SEs: ``SE(theta_i) = theta_i sqrt((H^-1)_ii / n)`` (H of the mean NLL in log-params).

    Parameters at the box (``at_bound``) get NaN; the others come from the free block of H.
    """
    names = list(params)
    if not positive:
        return dict.fromkeys(names, float("nan"))
    free = np.ones(len(names), dtype=bool) if not at_bound else ~np.asarray(at_bound, dtype=bool)
    if not np.any(free):
        return dict.fromkeys(names, float("nan"))
    variances = np.full(len(names), np.nan)
    variances[free] = np.diag(np.linalg.inv(hessian[np.ix_(free, free)])) / n_weight
    values = np.asarray([params[k] for k in names]) * np.sqrt(np.clip(variances, 0.0, None))
    return {k: float(v) for k, v in zip(names, values, strict=True)}
