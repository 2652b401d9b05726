"""Isolating access to the ``lifetimes`` package.

lifetimes changes process-wide state: importing it sets
``pd.options.mode.chained_assignment = None`` and adds ``warnings.simplefilter("ignore",
FutureWarning)`` filters, and its likelihood functions call ``warnings.simplefilter`` again
on every evaluation during ``fit``. Its base fitter also ``print``-s the optimiser result when
it fails. Everything here undoes or contains those effects, so clvkit never changes global
pandas or warnings state. lifetimes is used for fitting only; predictions are our own.

Also home of the small helpers the model modules share (standard errors, input checks,
JSON-safe numbers and serialised state, error messages).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from clvkit.constants import MAX_EXAMPLE_ROWS, MAX_LISTED_COLUMNS, SUGGESTED_PENALIZER
from clvkit.exceptions import ConvergenceError, NotFittedError, UserInputError

logger = logging.getLogger(__name__)

_CHAINED_ASSIGNMENT_OPTION = "mode.chained_assignment"
_MISSING = object()
_R = TypeVar("_R")


def _get_chained_assignment() -> object:
    """Current value of the pandas option, or ``_MISSING`` where pandas no longer has it."""
    with warnings.catch_warnings():
        # pandas 3 deprecates the option: reading it warns (Pandas4Warning).
        warnings.simplefilter("ignore")
        try:
            return pd.get_option(_CHAINED_ASSIGNMENT_OPTION)
        except (KeyError, AttributeError, pd.errors.OptionError):
            return _MISSING


def _set_chained_assignment(value: object) -> None:
    if value is _MISSING:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.set_option(_CHAINED_ASSIGNMENT_OPTION, value)


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Restore ``warnings.filters`` and pandas' chained-assignment option on exit."""
    chained = _get_chained_assignment()
    try:
        with warnings.catch_warnings():  # restores the filters list on exit
            yield
    finally:
        _set_chained_assignment(chained)


def import_lifetimes() -> ModuleType:
    """Import lifetimes lazily, leaving warnings filters and pandas options as they were."""
    with preserved_global_state():
        # lifetimes.utils sets the option pandas 3 deprecates; that warning is lifetimes' noise
        warnings.filterwarnings("ignore", message=f".*{_CHAINED_ASSIGNMENT_OPTION}.*")
        import lifetimes
        import lifetimes.utils  # the module that sets the pandas option
    return lifetimes


def lifetimes_convergence_error() -> type[Exception]:
    """lifetimes' own ``ConvergenceError`` class (a ``ValueError``)."""
    import_lifetimes()
    import lifetimes.utils

    return lifetimes.utils.ConvergenceError


@dataclass
class FitCapture:
    """What a contained lifetimes call printed and warned."""

    stdout: str = ""
    warnings: list[str] = field(default_factory=list)

    def optimizer_message(self) -> str | None:
        """The ``message:`` line of a printed ``scipy.optimize`` result, if any."""
        for line in self.stdout.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "message" and value.strip():
                return value.strip()
        return None


def run_contained(
    fn: Callable[..., _R], *args: Any, **kwargs: Any
) -> tuple[_R | None, FitCapture, BaseException | None]:
    """Call ``fn`` with its warnings, ``warnings.simplefilter`` calls and prints contained.

    Returns the result (``None`` when it raised), the capture, and the exception raised
    (``None`` on success). Captured warnings are logged at DEBUG.
    """
    capture = FitCapture()
    result: _R | None = None
    error: BaseException | None = None
    buffer = io.StringIO()
    with preserved_global_state(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(buffer):
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # reported to the caller, who raises a clvkit error
                error = exc
    capture.stdout = buffer.getvalue()
    capture.warnings = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    for message in capture.warnings:
        logger.debug("lifetimes warned during fit: %s", message)
    return result, capture, error


# --- shared fitting helpers ---------------------------------------------------------


@dataclass(frozen=True)
class FitContext:
    """What a convergence error names: the model, the data size and the setting to change."""

    model: str
    n_customers: int
    n_repeaters: int
    config_key: str
    penalizer: float

    def error(self, reason: str) -> ConvergenceError:
        return ConvergenceError(
            convergence_message(
                self.model,
                self.n_customers,
                self.n_repeaters,
                self.config_key,
                reason,
                self.penalizer,
            )
        )


def fit_contained(
    fitter: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    param_names: tuple[str, ...],
    context: FitContext,
) -> tuple[dict[str, float], Any]:
    """Run a lifetimes ``fitter.fit``; return its parameters as floats and its Hessian.

    lifetimes' ``ConvergenceError`` and non-finite or non-positive parameters become
    :class:`clvkit.exceptions.ConvergenceError`; lifetimes' own variance-matrix failure
    (``LinAlgError`` after the optimum is found) is tolerated: standard errors are ours.
    """
    _, capture, error = run_contained(fitter.fit, *args, **kwargs)
    if isinstance(error, lifetimes_convergence_error()):
        reason = capture.optimizer_message() or "the optimiser reported failure"
        raise context.error(f"the optimiser stopped without success ({reason})") from error
    if error is not None and not (
        isinstance(error, np.linalg.LinAlgError) and hasattr(fitter, "_hessian_")
    ):
        raise error  # unexpected: lifetimes' input checks are stricter in our own validation
    params = {k: float(fitter.params_[k]) for k in param_names}
    if not all(math.isfinite(v) and v > 0 for v in params.values()):
        raise context.error(f"the parameters are not finite and positive ({params})")
    return params, fitter._hessian_


def standard_errors(
    params: dict[str, float], hessian: Any, n_weight: float, model: str
) -> dict[str, float]:
    """Delta-method standard errors from the Hessian of the mean NLL in log-parameters.

    lifetimes optimises ``log(theta)``; ``Var(log theta) = H^-1 / n`` and
    ``SE(theta_i) = theta_i * sqrt(Var(log theta)_ii)``. NaN (with a logged reason) when the
    Hessian is singular or not positive definite at the optimum.
    """
    names = list(params)
    nan = dict.fromkeys(names, float("nan"))
    try:
        h = np.asarray(hessian, dtype=float)
        cov_log = np.linalg.inv(h) / n_weight
    except (np.linalg.LinAlgError, ValueError, TypeError) as exc:
        logger.warning("%s standard errors are NaN: the Hessian is not invertible (%s)", model, exc)
        return nan
    diag = np.diag(cov_log)
    if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
        logger.warning(
            "%s standard errors are NaN: the Hessian is not positive definite at the optimum "
            "(parameters not identified by these data)",
            model,
        )
        return nan
    values = np.asarray([params[k] for k in names]) * np.sqrt(diag)
    return {k: float(v) for k, v in zip(names, values, strict=True)}


def convergence_message(
    model: str, n_customers: int, n_repeaters: int, config_key: str, reason: str, penalizer: float
) -> str:
    """Message of a ``ConvergenceError``: model, data size, cause and the setting to change."""
    if penalizer < SUGGESTED_PENALIZER:
        advice = f"Set {config_key} to a small positive value such as {SUGGESTED_PENALIZER:g}"
    else:
        advice = f"Increase {config_key}, e.g. to {penalizer * 10:g}"
    return (
        f"{model} fit did not converge on {n_customers} customers ({n_repeaters} repeaters): "
        f"{reason}. {advice} (now {penalizer:g}) to regularise the parameters, or check the "
        "summary for degenerate data (too few customers or repeat purchases)."
    )


def summary_columns(
    summary: pd.DataFrame, columns: tuple[str, ...], model: str
) -> dict[str, np.ndarray]:
    """Float copies of ``columns`` of a BTYD summary, checked finite and non-negative."""
    if not isinstance(summary, pd.DataFrame):
        raise UserInputError(
            f"{model} fit expects the BTYD summary as a pandas DataFrame with columns "
            f"{list(columns)}, got {type(summary).__name__}"
        )
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        present = [str(c) for c in summary.columns[:MAX_LISTED_COLUMNS]]
        raise UserInputError(
            f"{model} fit: the summary lacks column(s) {missing}; it has {present}. "
            "Build it with clvkit.features.btyd.summary"
        )
    if len(summary) == 0:
        raise UserInputError(f"{model} fit: the summary has no customers")
    out: dict[str, np.ndarray] = {}
    for col in columns:
        try:
            # a copy: inputs are never mutated. Not np.array(series): numpy's attribute probes go
            # through pandas' __getattr__, which hashes a string index (~0.5 s on 1M customers)
            values = summary[col].to_numpy(dtype=float, na_value=np.nan, copy=True)
        except (TypeError, ValueError) as exc:
            raise UserInputError(
                f"{model} fit: summary column {col!r} is not numeric ({exc})"
            ) from exc
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            examples = summary.index[bad][:MAX_EXAMPLE_ROWS].tolist()
            raise UserInputError(
                f"{model} fit: summary column {col!r} has {int(bad.sum())} missing, infinite or "
                f"negative value(s), e.g. for customers {examples}"
            )
        out[col] = values
    return out


def check_fitted(estimator: object, attribute: str) -> None:
    """Raise ``NotFittedError`` unless ``estimator`` has ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit() or load it with from_dict()"
        )


def check_penalizer(penalizer: Any, config_key: str) -> float:
    """The penalizer as a float, or a ``UserInputError`` naming ``config_key``."""
    try:
        value = float(penalizer)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise UserInputError(f"{config_key} must be a finite number >= 0, got {penalizer!r}")
    return value


def json_float(value: float) -> float | None:
    """``value`` for JSON: ``None`` where it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None


def float_or_nan(value: float | None) -> float:
    """Inverse of :func:`json_float`."""
    return float("nan") if value is None else float(value)


def check_kind(data: Any, kind: str, version: int) -> None:
    """Check the ``model`` and ``format_version`` fields of a serialised model."""
    if data.get("model") != kind:
        raise UserInputError(
            f"expected a serialised {kind!r} model, got model={data.get('model')!r}"
        )
    if data.get("format_version") != version:
        raise UserInputError(
            f"serialised {kind!r} model has format_version {data.get('format_version')!r}; "
            f"this clvkit reads version {version}"
        )


def state_head(model: Any, kind: str, version: int) -> dict[str, Any]:
    """First fields of a fitted model's ``to_dict``: kind, format version and penalizer."""
    check_fitted(model, "params_")
    return {"model": kind, "format_version": version, "penalizer": float(model.penalizer)}


def params_state(model: Any) -> dict[str, Any]:
    """Fitted parameters and standard errors for ``to_dict`` (NaN errors become ``None``)."""
    return {
        "params": dict(model.params_),
        "standard_errors": {k: json_float(v) for k, v in model.standard_errors_.items()},
    }


def params_from_state(
    data: Any, names: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    """Inverse of :func:`params_state`: parameters and standard errors of ``names``."""
    params = {k: float(data["params"][k]) for k in names}
    errors = {k: float_or_nan(data["standard_errors"][k]) for k in names}
    return params, errors
