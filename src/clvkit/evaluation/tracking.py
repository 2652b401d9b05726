"""Model expectations over calendar time, computed per birth cohort (pure numpy).

The cumulative tracking plot compares actual repeat purchases with the model's
``sum_i E[X(t_g - b_i)]`` at each grid date ``t_g``, summed over customers born (first
purchase) on day ``b_i <= t_g`` (Fader, Hardie & Lee 2005, eq. 7 for BG/NBD's unconditional
E[X(t)]). Customers share at most a few hundred or thousand distinct birth days, so the sum
is taken over distinct birth days weighted by their customer counts, and E[X] is evaluated
once per distinct lag ``t_g - b`` instead of once per customer and grid point.
"""

from __future__ import annotations

from typing import Final, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["birth_cohorts", "expected_cumulative_by_cohort"]

FloatArray = NDArray[np.float64]

#: Most (grid point, cohort) pairs held at once; larger problems are done in grid blocks.
_MAX_PAIRS_PER_BLOCK: Final = 4_000_000


class _UnconditionalModel(Protocol):
    def expected_purchases_unconditional(self, t: ArrayLike) -> FloatArray: ...


def birth_cohorts(birth_offsets: ArrayLike) -> tuple[FloatArray, NDArray[np.int64]]:
    """Distinct birth offsets (sorted) and the number of customers born at each."""
    births = np.asarray(birth_offsets, dtype=np.float64).ravel()
    if births.size and not np.isfinite(births).all():
        raise ValueError("birth_offsets must be finite (days since the start of the data)")
    values, counts = np.unique(births, return_counts=True)
    return values, counts.astype(np.int64)


def expected_cumulative_by_cohort(
    model: _UnconditionalModel,
    birth_offsets: ArrayLike,
    counts: ArrayLike,
    grid: ArrayLike,
    *,
    unit_days: float = 1.0,
) -> FloatArray:
    """Expected cumulative repeat purchases of all customers at each grid point.

    ``out[g] = sum_k counts[k] * E[X((grid[g] - birth_offsets[k]) / unit_days)]`` over the
    cohorts born on or before ``grid[g]``; E[X(t)] is the model's
    ``expected_purchases_unconditional`` (BG/NBD: Fader, Hardie & Lee 2005, eq. 7). Equals the
    per-customer sum when ``birth_offsets`` are the distinct birth days and ``counts`` their
    customer counts (:func:`birth_cohorts`).

    Parameters
    ----------
    model
        Fitted purchase model with ``expected_purchases_unconditional(t)``.
    birth_offsets, counts
        Cohort birth times (days, same origin as ``grid``) and customers per cohort.
    grid
        Evaluation times in days.
    unit_days
        Days per model time unit (lags are divided by it).

    Returns
    -------
    ndarray
        One float per grid point.
    """
    births = np.asarray(birth_offsets, dtype=np.float64).ravel()
    weights = np.asarray(counts, dtype=np.float64).ravel()
    times = np.asarray(grid, dtype=np.float64).ravel()
    if births.size != weights.size:
        raise ValueError(f"birth_offsets and counts must be aligned, got {births.size} and {weights.size}")
    if not (np.isfinite(births).all() and np.isfinite(weights).all() and np.isfinite(times).all()):
        raise ValueError("birth_offsets, counts and grid must be finite")
    if not (np.isfinite(unit_days) and unit_days > 0):
        raise ValueError(f"unit_days must be a positive number of days, got {unit_days!r}")
    out = np.zeros(times.size, dtype=np.float64)
    if births.size == 0 or times.size == 0:
        return out
    block = max(1, _MAX_PAIRS_PER_BLOCK // births.size)
    for low in range(0, times.size, block):
        lags = times[low:low + block, np.newaxis] - births[np.newaxis, :]
        born = lags >= 0
        distinct, inverse = np.unique(lags[born], return_inverse=True)
        expected = np.asarray(model.expected_purchases_unconditional(distinct / unit_days), dtype=np.float64)
        per_pair = np.zeros(lags.shape, dtype=np.float64)
        per_pair[born] = expected[inverse.ravel()]
        out[low:low + block] = per_pair @ weights
    return out
