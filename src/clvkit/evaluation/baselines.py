"""Naive baselines that every model must beat on the holdout.

Pure functions on columns of the calibration/holdout table (:mod:`clvkit.schemas`:
``frequency_cal, recency_cal, T_cal, monetary_value_cal, duration_holdout``); times are in the
table's model time unit.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clvkit.constants import HISTORICAL_BASELINE_MIN_EXPOSURE
from clvkit.evaluation.metrics import as_vector

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: How the message about non-finite inputs of a baseline ends.
BASELINE_FILL_ADVICE: Final = "fill them before computing the baseline"


def _vector(values: ArrayLike, name: str) -> FloatArray:
    """Finite one-dimensional float copy of ``values`` (possibly empty)."""
    return as_vector(values, name, allow_empty=True, advice=BASELINE_FILL_ADVICE)


def _check_non_negative(array: FloatArray, name: str) -> None:
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {array.min():g}")


def _same_length(**arrays: FloatArray) -> None:
    lengths = {name: array.size for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"arrays must be aligned (one value per customer), got lengths {listed}")


def calibration_repeat_spend(frequency_cal: ArrayLike, monetary_value_cal: ArrayLike) -> FloatArray:
    """Total repeat spend in calibration, ``frequency_cal * monetary_value_cal``.

    lifetimes' ``monetary_value`` is the mean over repeat periods (0 without repeats), so
    the product is the calibration spend net of the first purchase.
    """
    frequency = _vector(frequency_cal, "frequency_cal")
    monetary = _vector(monetary_value_cal, "monetary_value_cal")
    _same_length(frequency_cal=frequency, monetary_value_cal=monetary)
    _check_non_negative(frequency, "frequency_cal")
    return frequency * monetary


def historical_spend_baseline(
    spend_cal: ArrayLike,
    T_cal: ArrayLike,
    duration_holdout: ArrayLike | float,
    min_exposure: float = HISTORICAL_BASELINE_MIN_EXPOSURE,
) -> FloatArray:
    """Holdout value predicted by carrying the calibration spend rate forward.

    ``spend_cal / max(T_cal, min_exposure) * duration_holdout``: the spend per unit of time
    the customer was observed (``T_cal``, first purchase to calibration end), times the
    holdout length. Scaling by each customer's own exposure makes long-tenured and recent
    customers comparable; the floor ``min_exposure`` (model time units) keeps customers first
    seen just before the cut-off from dividing by ~0. Which spend counts (with or without the
    first purchase, see :func:`calibration_repeat_spend`) is the caller's choice.

    Parameters
    ----------
    spend_cal : array-like
        Calibration spend per customer, currency units.
    T_cal : array-like
        Calibration age per customer (``T_cal``), model time units, non-negative.
    duration_holdout : array-like or float
        Holdout length (``duration_holdout``), model time units, non-negative.
    min_exposure : float
        Smallest observed time used as denominator, model time units, positive.
    """
    spend = _vector(spend_cal, "spend_cal")
    age = _vector(T_cal, "T_cal")
    if np.ndim(duration_holdout) == 0:
        duration_holdout = np.full(age.shape, duration_holdout, dtype=object)
    duration = _vector(duration_holdout, "duration_holdout")
    _same_length(spend_cal=spend, T_cal=age, duration_holdout=duration)
    _check_non_negative(age, "T_cal")
    _check_non_negative(duration, "duration_holdout")
    if not (np.isfinite(min_exposure) and min_exposure > 0):
        raise ValueError(f"min_exposure must be a positive number of time units, got {min_exposure!r}")
    floored = int(np.count_nonzero(age < min_exposure))
    if floored:
        logger.debug("historical baseline: %d customer(s) observed less than %g time unit(s)", floored, min_exposure)
    return spend / np.maximum(age, min_exposure) * duration


def rfm_score_baseline(
    recency_score: ArrayLike, frequency_score: ArrayLike, monetary_score: ArrayLike
) -> FloatArray:
    """Ranking score from RFM scores: higher = more valuable.

    Customers are ordered by ``R + F + M``, ties broken by ``M``, then ``F``, then ``R``
    (spend first: the baseline ranks value). The result is the dense rank ``1..K`` of that
    order, so customers identical on all three scores stay tied. Each score must already be
    oriented so that higher is better (a recent customer has a high recency score).
    """
    r = _vector(recency_score, "recency_score")
    f = _vector(frequency_score, "frequency_score")
    m = _vector(monetary_score, "monetary_score")
    _same_length(recency_score=r, frequency_score=f, monetary_score=m)
    if r.size == 0:
        return r
    keys = (r + f + m, m, f, r)
    # one lexicographic sort (np.unique(axis=0) is ~10x slower on a million rows); a new rank
    # starts wherever any key differs from the previous row
    order = np.lexsort(keys[::-1])
    starts = np.zeros(r.size, dtype=bool)
    starts[0] = True
    for key in keys:
        ordered = key[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    dense = np.empty(r.size)
    dense[order] = np.cumsum(starts)
    return dense


def churn_baseline_from_p_alive(p_alive: ArrayLike) -> FloatArray:
    """Churn probability baseline ``1 - P(alive)`` from a BTYD model."""
    p = _vector(p_alive, "p_alive")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"p_alive must be probabilities in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]")
    return 1.0 - p
