"""Common machinery of the purchase (BTYD) models: validation, collapsed fitting, degeneracy.

Each model (BG/NBD, MBG/NBD, Pareto/NBD, and the NBD limit) supplies its log-likelihood with
gradient and four prediction pieces; everything else lives here:

* ``fit`` validates the summary, collapses it to distinct ``(frequency, recency, T)`` rows
  with counts (``sample_weight`` multiplies them), rescales time so that the largest ``T`` is 1
  (as lifetimes does, so penalizers mean the same), runs the optimiser of
  :mod:`clvkit.models._optimize` (further seeded starts only when the first is not accepted),
  walks a penalizer path when a fit does not converge, and compares the fit with the limiting
  NBD model (no dropout). When dropout is unidentifiable the fit is *degenerate*:
  ``degenerate_`` says why in words and every prediction comes from the fitted NBD model,
  which is the limit of the model as dropout vanishes.
* predictions factor as ``P(alive | x, t_x, T) * E[purchases | alive, x, T]``; the second
  factor depends on ``(x, T)`` only and is evaluated once per distinct pair.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit
from sklearn.base import BaseEstimator

from clvkit import schemas
from clvkit.constants import (
    DEFAULT_FIT_STARTS,
    DEGENERATE_LOG_LIKELIHOOD_GAIN,
    DEGENERATE_MEAN_DROPOUT,
    PENALIZER_PATH,
)
from clvkit.exceptions import ConvergenceError, UserInputError
from clvkit.models._lifetimes import (
    check_fitted,
    check_penalizer,
    convergence_message,
    float_or_nan,
    json_float,
    summary_columns,
)
from clvkit.models._optimize import (
    NON_FINITE_VALUE,
    OptimumReport,
    check_sample_weight,
    collapse,
    minimize_multistart,
    standard_errors_from_hessian,
)

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
#: recency may exceed T by rounding in summaries (lifetimes: 1 ulp); larger gaps are errors.
RECENCY_T_RELATIVE_TOLERANCE = 1e-9
#: The fix named when no customer has a repeat purchase in the calibration period.
NO_REPEAT_FIX = (
    "Set data.calibration_end later (so that the calibration period holds customers' second "
    "purchases) or point data.source at a log with more history"
)


class FitData:
    """Collapsed rows in rescaled time, with the distinct values each column takes."""

    def __init__(self, x: FloatArray, tx: FloatArray, T: FloatArray, w: FloatArray):
        self.x, self.tx, self.T, self.w = x, tx, T, w
        self.total_weight = float(w.sum())
        # distinct values (in order of appearance) and each row's code: hashing, O(rows)
        self.ix, self.ux = _factorize(x)
        self.iT, self.uT = _factorize(T)
        self.itx, self.utx = _factorize(tx)
        self._pairs: dict[str, tuple[NDArray[np.intp], FloatArray, FloatArray]] = {}
        #: per-model precomputations that do not depend on the parameters
        self.cache: dict[str, Any] = {}

    def pairs(self, column: str) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
        """Codes and distinct values of (x, column) for ``column`` in {"tx", "T"} (cached)."""
        if column not in self._pairs:
            self._pairs[column] = distinct_pairs(self.x, getattr(self, column))
        return self._pairs[column]


def _factorize(values: FloatArray) -> tuple[NDArray[np.intp], FloatArray]:
    codes, uniques = pd.factorize(values)
    return codes.astype(np.intp, copy=False), np.asarray(uniques, dtype=float)


def log1mexp(d: FloatArray) -> FloatArray:
    """log(1 - exp(d)) for d <= 0, accurate on both sides of -log 2 (Maechler 2012)."""
    d = np.minimum(d, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(d > -math.log(2.0), np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def floats(*arrays: ArrayLike) -> list[FloatArray]:
    return [np.asarray(a, dtype=float) for a in arrays]


def distinct_pairs(x: FloatArray, T: FloatArray) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
    """Codes of each customer's (x, T) pair and the distinct pairs (hash-based, O(n))."""
    codes, uniques = pd.factorize(np.asarray(x, dtype=float) + 1j * np.asarray(T, dtype=float))
    uniques = np.asarray(uniques)
    return codes, uniques.real.copy(), uniques.imag.copy()


class PurchaseModelBase(BaseEstimator):
    """Base class of the purchase models (see the module docstring)."""

    name: ClassVar[str] = ""
    MODEL_NAME: ClassVar[str] = ""
    PARAM_NAMES: ClassVar[tuple[str, ...]] = ()
    #: parameters measured in time units (divided by the time scale after fitting)
    TIME_PARAMS: ClassVar[tuple[str, ...]] = ()
    CONFIG_KEY: ClassVar[str] = "models.bgnbd.penalizer"  # the pipeline passes it to every purchase model
    FORMAT_VERSION: ClassVar[int] = 1
    #: the model nests NBD and can be degenerate (False for the NBD model itself)
    HAS_DROPOUT: ClassVar[bool] = True
    #: ``_hessian`` is implemented (else central differences of the gradient)
    HAS_ANALYTIC_HESSIAN: ClassVar[bool] = False

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        random_state: int | None = None,
        n_starts: int = DEFAULT_FIT_STARTS,
    ):
        self.penalizer = penalizer
        self.initial_params = initial_params
        self.random_state = random_state
        self.n_starts = n_starts

    # --- hooks -----------------------------------------------------------------------

    @staticmethod
    def _objective(log_params: FloatArray, data: FitData, penalizer: float) -> tuple[float, FloatArray]:
        raise NotImplementedError

    @staticmethod
    def _hessian(log_params: FloatArray, data: FitData, penalizer: float) -> FloatArray:
        """Analytic Hessian of ``_objective`` in log-parameters (models with ``HAS_ANALYTIC_HESSIAN``)."""
        raise NotImplementedError

    @staticmethod
    def _loglik_rows(params: tuple[float, ...], x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
        raise NotImplementedError

    @staticmethod
    def _log_dead_odds(params: tuple[float, ...], x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
        """log(P(dead) / P(alive)); -inf where the customer is certainly alive."""
        raise NotImplementedError

    @staticmethod
    def _alive_expectation(params: tuple[float, ...], t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
        """E[purchases in (T, T+t] | alive at T, x, T]."""
        raise NotImplementedError

    @staticmethod
    def _alive_purchase_probability(params: tuple[float, ...], t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
        """P(at least one purchase in (T, T+t] | alive at T, x, T)."""
        raise NotImplementedError

    @staticmethod
    def _unconditional(params: tuple[float, ...], t: FloatArray) -> FloatArray:
        raise NotImplementedError

    @staticmethod
    def _mean_dropout(params: tuple[float, ...]) -> float:
        """Mean dropout (per purchase or per rescaled period); 0 for the NBD."""
        return 0.0

    @staticmethod
    def _degenerate_words(params: dict[str, float]) -> str:
        return "dropout is not identified"

    def _first_start(self, scale: float) -> FloatArray:
        """lifetimes' starting point: every log-parameter 0.1, in rescaled time."""
        if self.initial_params is None:
            return np.full(len(self.PARAM_NAMES), 0.1)
        initial = self.initial_params
        if set(initial) != set(self.PARAM_NAMES) or not all(
            math.isfinite(float(v)) and float(v) > 0 for v in initial.values()
        ):
            raise UserInputError(
                f"{self.MODEL_NAME} initial_params must give positive finite values for exactly "
                f"{list(self.PARAM_NAMES)}, got {dict(initial)!r}"
            )
        values = {k: float(initial[k]) for k in self.PARAM_NAMES}
        for k in self.TIME_PARAMS:
            values[k] *= scale
        return np.log([values[k] for k in self.PARAM_NAMES])

    # --- fitting ------------------------------------------------------------------------

    def fit(self, summary: Any, *, sample_weight: ArrayLike | None = None) -> Self:
        """Fit on a BTYD summary (``frequency``, ``recency``, ``T``); ``sample_weight`` counts rows."""
        penalizer = check_penalizer(self.penalizer, self.CONFIG_KEY)
        x, tx, T = self._validated_summary(summary)
        weights = check_sample_weight(sample_weight, x.size, self.MODEL_NAME)
        (xu, txu, Tu), wu = collapse([x, tx, T], weights)
        if not np.any(wu[xu > 0] > 0):
            raise UserInputError(
                f"{self.MODEL_NAME} fit needs repeat purchases: no customer with positive weight "
                f"has frequency > 0. {NO_REPEAT_FIX}"
            )
        scale = 1.0 / float(np.max(Tu))
        data = FitData(xu, txu * scale, Tu * scale, wu)
        n_customers = int(round(data.total_weight))
        n_repeaters = int(round(float(wu[xu > 0].sum())))
        start = self._first_start(scale)
        optimum = self._optimise(data, start, penalizer)
        used_penalizer, reason = penalizer, "as configured"

        scaled = self._unpack(optimum.log_params)
        degenerate = None
        limit = None
        if self.HAS_DROPOUT:
            limit, limit_ll = _fit_limit(data, self.random_state)
            own_ll = self._total_log_likelihood(optimum, data, penalizer)
            gain = own_ll - limit_ll
            mean_dropout = self._mean_dropout(scaled)
            if mean_dropout < DEGENERATE_MEAN_DROPOUT or (penalizer == 0 and gain < DEGENERATE_LOG_LIKELIHOOD_GAIN):
                degenerate = (
                    f"{self.MODEL_NAME} dropout is unidentifiable on these data: "
                    f"{self._degenerate_words(self._params_in_units(scaled, scale))}; the fit gains "
                    f"{gain:.3g} log-likelihood over the NBD model without dropout, so predictions "
                    "come from the limiting NBD model (every customer alive, Poisson purchasing with "
                    "gamma-distributed rates)"
                )
                logger.warning(degenerate)
        if degenerate is None and not optimum.converged:
            optimum, used_penalizer, reason = self._penalizer_path(
                data, optimum, penalizer, n_customers, n_repeaters, start
            )
            scaled = self._unpack(optimum.log_params)

        params = self._params_in_units(scaled, scale)
        self.params_ = params
        self.standard_errors_ = standard_errors_from_hessian(
            params, optimum.hessian, data.total_weight, optimum.hessian_positive_definite, optimum.at_bound
        )
        limits = [k for k, bound in zip(self.PARAM_NAMES, optimum.at_bound, strict=False) if bound]
        if limits:
            logger.warning(
                "%s: the likelihood is maximised in a limit (%s at the edge of the parameter range: %s); "
                "the fit is accepted (projected gradient %.2e, log-likelihood within %.2e nats of its "
                "optimum), the standard errors of these parameters are NaN",
                self.MODEL_NAME, ", ".join(limits),
                ", ".join(f"{k}={params[k]:.3g}" for k in limits), optimum.gradient_norm,
                optimum.log_likelihood_shortfall,
            )
        if not optimum.hessian_positive_definite:
            logger.warning(
                "%s standard errors are NaN: the Hessian is not positive definite at the optimum "
                "(parameters not identified by these data)", self.MODEL_NAME,
            )
        self.n_customers_ = n_customers
        self.n_repeaters_ = n_repeaters
        # in the summary's time unit: rescaling time by `scale` shifts each row's LL by -x log(scale)
        self.log_likelihood_ = self._total_log_likelihood(optimum, data, used_penalizer) + math.log(scale) * float(
            np.dot(data.w, data.x)
        )
        self.degenerate_ = degenerate
        self.limit_params_ = None if limit is None or degenerate is None else {
            "r": limit[0], "alpha": limit[1] / scale
        }
        self.fit_report_ = {
            **optimum.as_dict(),
            "penalizer": float(used_penalizer),
            "penalizer_reason": reason,
            "distinct_rows": int(xu.size),
            "degenerate": degenerate,
        }
        logger.info(
            "%s fitted on %d customers (%d repeaters, %d distinct rows): %s, log-likelihood %.2f, "
            "gradient norm %.2e, penalizer %g (%s)",
            self.MODEL_NAME, n_customers, n_repeaters, xu.size,
            ", ".join(f"{k}={v:.4g}" for k, v in params.items()), self.log_likelihood_,
            optimum.gradient_norm, used_penalizer, reason,
        )
        return self

    def _optimise(self, data: FitData, start: FloatArray, penalizer: float) -> OptimumReport:
        def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
            return self._objective(log_params, data, penalizer)

        def hessian(log_params: FloatArray) -> FloatArray:
            return self._hessian(log_params, data, penalizer)

        return minimize_multistart(
            objective, start, n_starts=int(self.n_starts), random_state=self.random_state,
            n_weight=data.total_weight, more_starts_if_needed=True,
            hessian=hessian if self.HAS_ANALYTIC_HESSIAN else None,
        )

    def _total_log_likelihood(self, optimum: OptimumReport, data: FitData, penalizer: float) -> float:
        """Unpenalised total log-likelihood at the optimum on the collapsed rows (rescaled time)."""
        if penalizer == 0 and optimum.objective < NON_FINITE_VALUE:
            return -data.total_weight * float(optimum.objective)  # the objective is the mean NLL
        return -data.total_weight * self._objective(np.asarray(optimum.log_params, dtype=float), data, 0.0)[0]

    def _penalizer_path(
        self,
        data: FitData,
        failed: OptimumReport,
        penalizer: float,
        n_customers: int,
        n_repeaters: int,
        start: FloatArray,
    ) -> tuple[OptimumReport, float, str]:
        """Refit with each larger penalizer from the original start (not the failed optimum, which
        may sit far out on a ridge), so the result equals a fit configured with that penalizer."""
        why = (
            f"the fit with penalizer {penalizer:g} stopped with gradient norm {failed.gradient_norm:.2e} "
            f"and a Hessian that is {'' if failed.hessian_positive_definite else 'not '}positive "
            f"definite ({failed.message})"
        )
        logger.warning("%s: %s; trying penalizers %s", self.MODEL_NAME, why, [p for p in PENALIZER_PATH if p > penalizer])
        for candidate in (p for p in PENALIZER_PATH if p > penalizer):
            optimum = self._optimise(data, start, candidate)
            if optimum.converged:
                reason = f"raised from {penalizer:g} to {candidate:g} because {why}"
                logger.warning("%s: %s", self.MODEL_NAME, reason)
                return optimum, candidate, reason
        raise ConvergenceError(
            convergence_message(
                self.MODEL_NAME, n_customers, n_repeaters, self.CONFIG_KEY,
                f"{why}, and no penalizer up to {max(PENALIZER_PATH):g} converged", penalizer,
            )
        )

    def _unpack(self, log_params: FloatArray) -> tuple[float, ...]:
        return tuple(float(v) for v in np.exp(log_params))

    def _params_in_units(self, scaled: tuple[float, ...], scale: float) -> dict[str, float]:
        params = dict(zip(self.PARAM_NAMES, scaled, strict=True))
        for k in self.TIME_PARAMS:
            params[k] /= scale
        return {k: float(v) for k, v in params.items()}

    def _validated_summary(self, summary: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        name = self.MODEL_NAME
        cols = summary_columns(summary, (schemas.FREQUENCY, schemas.RECENCY, schemas.T), name)
        x, tx, T = cols[schemas.FREQUENCY], cols[schemas.RECENCY], cols[schemas.T]
        if np.any(x != np.floor(x)):
            raise UserInputError(f"{name} fit: frequency must count whole repeat purchase periods")
        over = tx - T
        if np.any(over > RECENCY_T_RELATIVE_TOLERANCE * np.maximum(T, 1.0)):
            raise UserInputError(
                f"{name} fit: recency exceeds T for {int(np.sum(over > 0))} customer(s); "
                "recency (last minus first purchase) can be at most T (cut-off minus first purchase)"
            )
        tx = np.minimum(tx, T)
        if np.any(tx[x == 0] != 0):
            raise UserInputError(f"{name} fit: recency must be 0 for customers with frequency 0")
        if not np.any(x > 0):
            raise UserInputError(
                f"{name} fit needs repeat purchases: none of the {x.size} customers has a repeat "
                "purchase (frequency > 0) before the calibration end, so the purchase rate and "
                f"dropout (and the spend per order) cannot be estimated. {NO_REPEAT_FIX}"
            )
        if not np.any(T > 0):
            raise UserInputError(f"{name} fit: every customer has T = 0 (no observation time)")
        return x, tx, T

    # --- predictions ---------------------------------------------------------------------

    def _prediction_model(self) -> tuple[type[PurchaseModelBase], tuple[float, ...]]:
        """The class and parameters predictions come from (the NBD limit when degenerate)."""
        check_fitted(self, "params_")
        limit = getattr(self, "limit_params_", None)
        if getattr(self, "degenerate_", None) is not None and limit is not None:
            from clvkit.models.nbd import NBDModel

            return NBDModel, (float(limit["r"]), float(limit["alpha"]))
        return type(self), _floats_tuple(self.params_)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive | x, t_x, T) = 1 / (1 + exp(log-odds of having dropped out))."""
        cls, params = self._prediction_model()
        x, tx, T_ = floats(frequency, recency, T)
        with np.errstate(over="ignore", divide="ignore"):
            return np.atleast_1d(expit(-cls._log_dead_odds(params, x, np.minimum(tx, T_), T_)))

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[X(T, T+t] | x, t_x, T] = P(alive) * E[purchases in t | alive, x, T]."""
        cls, params = self._prediction_model()
        t_, x, tx, T_ = np.broadcast_arrays(*floats(t, frequency, recency, T))
        shape = t_.shape
        flat_t, flat_x, flat_tx, flat_T = (a.ravel() for a in (t_, x, tx, T_))
        with np.errstate(over="ignore", divide="ignore"):
            alive = expit(-cls._log_dead_odds(params, flat_x, np.minimum(flat_tx, flat_T), flat_T))
        # E[. | alive] depends on (t, x, T) only: evaluate it once per distinct triple
        frame = pd.DataFrame({"t": flat_t, "x": flat_x, "T": flat_T})
        codes = frame.groupby(["t", "x", "T"], sort=False).ngroup().to_numpy()
        # ngroup(sort=False) numbers groups by first appearance: a row opens a group when its code
        # exceeds every earlier one (np.unique on integers is a slow hash in numpy 2.4)
        first = np.flatnonzero(codes > np.maximum.accumulate(np.r_[-1, codes[:-1]]))
        conditional = cls._alive_expectation(params, flat_t[first], flat_x[first], flat_T[first])
        return np.atleast_1d((alive * conditional[codes]).reshape(shape))

    def alive_expectation_pairs(
        self, t_grid: ArrayLike, frequency: ArrayLike, T: ArrayLike
    ) -> tuple[NDArray[np.intp], FloatArray]:
        """Codes of each customer's (x, T) pair and E[purchases in (T, T+t] | alive] per pair and t."""
        cls, params = self._prediction_model()
        (grid,) = floats(t_grid)
        x, T_ = floats(frequency, T)
        codes, x_u, T_u = distinct_pairs(x, T_)
        values = cls._alive_expectation(params, grid[np.newaxis, :], x_u[:, np.newaxis], T_u[:, np.newaxis])
        return codes, values

    def p_no_purchase(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(no purchase in (T, T+t] | x, t_x, T) = 1 - P(alive) P(a purchase in t | alive)."""
        cls, params = self._prediction_model()
        t_, x, tx, T_ = np.broadcast_arrays(*floats(t, frequency, recency, T))
        alive = self.p_alive(x, tx, T_).reshape(t_.shape)
        buys = cls._alive_purchase_probability(params, t_, x, T_)
        return np.atleast_1d(np.clip(1.0 - alive * buys, 0.0, 1.0))

    def expected_purchases_unconditional(self, t: ArrayLike) -> FloatArray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t]."""
        cls, params = self._prediction_model()
        (t_,) = floats(t)
        return np.atleast_1d(cls._unconditional(params, t_))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "params_")

    # --- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (NaN numbers become ``None``)."""
        check_fitted(self, "params_")
        return {
            "model": self.name,
            "format_version": self.FORMAT_VERSION,
            "penalizer": float(self.penalizer),
            "initial_params": None
            if self.initial_params is None
            else {k: float(v) for k, v in self.initial_params.items()},
            "random_state": self.random_state,
            "n_starts": int(self.n_starts),
            "params": dict(self.params_),
            "standard_errors": {k: json_float(v) for k, v in self.standard_errors_.items()},
            "n_customers": self.n_customers_,
            "n_repeaters": self.n_repeaters_,
            "log_likelihood": json_float(self.log_likelihood_),
            "degenerate": getattr(self, "degenerate_", None),
            "limit_params": getattr(self, "limit_params_", None),
            "fit_report": _json_safe(getattr(self, "fit_report_", {})),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a fitted model from :meth:`to_dict` output (older states lack the new keys)."""
        if data.get("model") != cls.name:
            raise UserInputError(f"expected a serialised {cls.name!r} model, got model={data.get('model')!r}")
        if data.get("format_version") != cls.FORMAT_VERSION:
            raise UserInputError(
                f"serialised {cls.name!r} model has format_version {data.get('format_version')!r}; "
                f"this clvkit reads version {cls.FORMAT_VERSION}"
            )
        model = cls(
            penalizer=data["penalizer"],
            initial_params=data.get("initial_params"),
            random_state=data.get("random_state"),
            n_starts=int(data.get("n_starts", DEFAULT_FIT_STARTS)),
        )
        model.params_ = {k: float(data["params"][k]) for k in cls.PARAM_NAMES}
        model.standard_errors_ = {k: float_or_nan(data["standard_errors"][k]) for k in cls.PARAM_NAMES}
        model.n_customers_ = int(data["n_customers"])
        model.n_repeaters_ = int(data["n_repeaters"])
        model.log_likelihood_ = float_or_nan(data["log_likelihood"])
        model.degenerate_ = data.get("degenerate")
        limit = data.get("limit_params")
        model.limit_params_ = None if limit is None else {k: float(v) for k, v in limit.items()}
        model.fit_report_ = dict(data.get("fit_report") or {})
        return model


def _floats_tuple(params: Mapping[str, float]) -> tuple[float, ...]:
    return tuple(float(v) for v in params.values())


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _fit_limit(data: FitData, random_state: int | None) -> tuple[tuple[float, float], float]:
    """The NBD model (no dropout) fitted on the same collapsed rows: (r, alpha scaled), total LL."""
    from clvkit.models.nbd import NBDModel

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        return NBDModel._objective(log_params, data, 0.0)

    optimum = minimize_multistart(
        objective, np.full(2, 0.1), n_starts=1, random_state=random_state, n_weight=data.total_weight
    )
    r, alpha = (float(v) for v in np.exp(optimum.log_params))
    return (r, alpha), -data.total_weight * NBDModel._objective(optimum.log_params, data, 0.0)[0]
