"""RFM scores, named RFM segments and historical value tiers (A/B/C).

Scores are built to mean the same on any data (Hughes 1994 scores, with stable recency):

* **R** (recency, days since the last purchase) on *absolute* day edges: configured, or
  multiples (default 0.5, 1, 2, 4) of the purchase cycle = the median of the mean gaps between
  purchase days of repeat customers. R5 = bought within half a cycle, R4 within one cycle,
  R3 within two, R2 within four, R1 longer ago. A quiet customer's R falls as days pass,
  whatever the cohort structure of the data.
* **F** (purchase days): F1 = one purchase day; F2..F5 split the *repeat* customers at the
  quartiles of their purchase days (edges ``(1, q25, q50, q75)``).
* **M** (spend per purchase day) at the 20/40/60/80 % quantiles of the *repeat* customers
  (one-off customers are scored on the same edges).

Bins are right-closed: a value ``v`` falls in bin ``k = 1 + #{e_j < v}``; F and M scores are
``k``, the R score ``6 - k`` (more recent = higher). Equal values always get equal scores.

Segments name the 25 (R, FM) cells, ``FM = min(ceil((F + M) / 2), F + 1)``: M counts (a frequent
buyer of cheap items sits below one of dear items) but lifts a customer at most one step above
F (one large purchase does not make a loyal customer); without an amount column ``FM = F``. Patterns are regular expressions matched against the two-digit string "R FM"
(e.g. ``"[4-5][4-5]"``) or ``(R, FM)`` tuples of ints or inclusive ``(low, high)`` ranges.
"Can't lose" = FM 5 with R 1-2 (formerly top customers, two cycles or more overdue).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from clvkit.constants import (
    DEFAULT_PURCHASE_CYCLE_DAYS,
    DEFAULT_TIER_A_SHARE,
    DEFAULT_TIER_B_SHARE,
    MIN_PURCHASE_CYCLE_DAYS,
    RFM_RECENCY_CYCLE_MULTIPLES,
    RFM_SCORE_BINS,
)
from clvkit.features._periods import FeatureInputError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SEGMENTS", "RFMEdges", "fm_scores", "purchase_cycle_days", "rfm_scores", "segment_table",
    "rfm_segments", "value_tier_thresholds", "value_tiers", "tiers_from_thresholds",
]

R_SCORE = "r_score"
F_SCORE = "f_score"
M_SCORE = "m_score"
RFM_SCORE = "rfm_score"
TIER_LABELS = ("A", "B", "C")

#: An (R, FM) pattern: regex on "R FM", or (R, FM) with ints or inclusive (low, high) ranges.
SegmentPattern: TypeAlias = str | tuple[int | tuple[int, int], int | tuple[int, int]]

#: Default segments, each of the 25 (R, FM) cells named exactly once. R rows 5 (recent) .. 1.
#:
#: ====  =========  ===========  ==========  =========  ==========
#: R\\FM 1          2            3           4          5
#: ====  =========  ===========  ==========  =========  ==========
#: 5     New        Pot. loyal.  Pot. loyal. Champions  Champions
#: 4     Promising  Pot. loyal.  Pot. loyal. Loyal      Loyal
#: 3     Ab. sleep  About sleep  Need att.   Loyal      Loyal
#: 2     Hibern.    Hibernating  At risk     At risk    Can't lose
#: 1     Lost       Hibernating  At risk     At risk    Can't lose
#: ====  =========  ===========  ==========  =========  ==========
DEFAULT_SEGMENTS: dict[SegmentPattern, str] = {
    "5[4-5]": "Champions",
    "[3-4][4-5]": "Loyal",
    "[4-5][2-3]": "Potential loyalist",
    "51": "New",
    "41": "Promising",
    "33": "Need attention",
    "3[1-2]": "About to sleep",
    "[1-2][3-4]": "At risk",
    "[1-2]5": "Can't lose",
    "12|2[1-2]": "Hibernating",
    "11": "Lost",
}

_QUANTILES = np.linspace(0.0, 1.0, RFM_SCORE_BINS + 1)[1:-1]
#: Quartiles of the repeat customers' purchase days: edges of F2..F5 (F1 = one purchase day).
REPEAT_QUARTILES = (0.25, 0.50, 0.75)
_ONE_PURCHASE_DAY = 1.0


@dataclass(frozen=True)
class RFMEdges:
    """Learnt quantile edges (4 each) of recency (days since last purchase), frequency, monetary."""

    recency: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]

    @classmethod
    def fit(cls, recency: Sequence[float], frequency: Sequence[float],
            monetary: Sequence[float], *, cycle_days: float | None = None,
            recency_days: Sequence[float] | None = None,
            cycle_multiples: Sequence[float] = RFM_RECENCY_CYCLE_MULTIPLES) -> RFMEdges:
        """Edges of the module docstring.

        Parameters
        ----------
        recency, frequency, monetary
            Days since the last purchase, purchase days, spend per purchase day.
        cycle_days
            Purchase cycle in days (:func:`purchase_cycle_days`); None: the default cycle
            (``DEFAULT_PURCHASE_CYCLE_DAYS``). Ignored when ``recency_days`` is given.
        recency_days
            Four non-decreasing absolute recency edges in days (R5 = at most the first).
        cycle_multiples
            Four non-decreasing multiples of the cycle giving the recency edges.
        """
        _finite(recency, "recency")
        if recency_days is not None:
            r_edges = _check_four(recency_days, "features.rfm_recency_days")
        else:
            cycle = DEFAULT_PURCHASE_CYCLE_DAYS if cycle_days is None else float(cycle_days)
            if not (np.isfinite(cycle) and cycle > 0):
                raise FeatureInputError(f"RFM purchase cycle must be a positive number of days, got {cycle_days!r}")
            multiples = _check_four(cycle_multiples, "features.rfm_recency_cycle_multiples")
            r_edges = tuple(float(cycle * m) for m in multiples)
        freq = _finite(frequency, "frequency")
        money = _finite(monetary, "monetary")
        if freq.size == 0:
            raise FeatureInputError("cannot learn RFM frequency edges from an empty table")
        repeat = freq > _ONE_PURCHASE_DAY
        pool_f = freq[repeat] if repeat.any() else freq
        pool_m = money[repeat] if repeat.any() else money
        f_edges = (_ONE_PURCHASE_DAY, *(float(e) for e in np.quantile(pool_f, REPEAT_QUARTILES)))
        f_edges = tuple(np.maximum.accumulate(np.asarray(f_edges, dtype=float)).tolist())
        return cls(recency=r_edges, frequency=f_edges, monetary=_edges(pool_m, "monetary"))

    def score(self, recency: Sequence[float], frequency: Sequence[float],
              monetary: Sequence[float]) -> dict[str, np.ndarray]:
        """Scores 1..5 (int64) keyed ``r_score``, ``f_score``, ``m_score``."""
        bins = RFM_SCORE_BINS + 1
        return {
            R_SCORE: bins - _bin(recency, self.recency, "recency"),
            F_SCORE: _bin(frequency, self.frequency, "frequency"),
            M_SCORE: _bin(monetary, self.monetary, "monetary"),
        }

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-safe plain lists."""
        return {"recency": list(self.recency), "frequency": list(self.frequency),
                "monetary": list(self.monetary)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> RFMEdges:
        """Inverse of :meth:`to_dict`."""
        try:
            edges = {k: tuple(float(v) for v in data[k]) for k in ("recency", "frequency", "monetary")}
        except (KeyError, TypeError, ValueError) as exc:
            raise FeatureInputError(
                f"RFM edges need lists 'recency', 'frequency', 'monetary' of numbers: {exc!r}"
            ) from None
        bad = [k for k, v in edges.items() if len(v) != RFM_SCORE_BINS - 1 or list(v) != sorted(v)]
        if bad:
            raise FeatureInputError(
                f"RFM edges {bad} must be {RFM_SCORE_BINS - 1} non-decreasing numbers"
            )
        return cls(**edges)


def _finite(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise FeatureInputError(f"RFM {name} values must be finite numbers (found NaN or inf)")
    return array


def _check_four(values: Sequence[float], setting: str) -> tuple[float, ...]:
    """Four finite, non-negative, non-decreasing numbers (recency edges or cycle multiples)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.asarray([np.nan])
    if (array.shape != (RFM_SCORE_BINS - 1,) or not np.isfinite(array).all() or (array < 0).any()
            or (np.diff(array) < 0).any()):
        raise FeatureInputError(
            f"{setting} must be {RFM_SCORE_BINS - 1} non-negative, non-decreasing numbers "
            f"(e.g. [0.5, 1, 2, 4] cycles or [30, 60, 120, 240] days), got {values!r}"
        )
    return tuple(float(v) for v in array)


def purchase_cycle_days(gap_mean_days: Sequence[float]) -> float:
    """Median of the finite mean gaps (days) between purchase days of repeat customers.

    Floored at ``MIN_PURCHASE_CYCLE_DAYS``; ``DEFAULT_PURCHASE_CYCLE_DAYS`` when no customer
    has two purchase days.
    """
    gaps = np.asarray(gap_mean_days, dtype=np.float64)
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    if gaps.size == 0:
        logger.info("RFM: no repeat customer; purchase cycle defaults to %s days", DEFAULT_PURCHASE_CYCLE_DAYS)
        return float(DEFAULT_PURCHASE_CYCLE_DAYS)
    return float(max(np.median(gaps), MIN_PURCHASE_CYCLE_DAYS))


def fm_scores(f_score: Sequence[int], m_score: Sequence[int] | None) -> np.ndarray:
    """``min(ceil((F + M) / 2), F + 1)`` (int64); F alone when ``m_score`` is None (no amounts).

    M moves a customer by at most one step above F: spend refines frequency, and one large
    purchase does not make a loyal customer.
    """
    f = np.asarray(f_score, dtype=np.int64)
    if m_score is None:
        return f
    return np.minimum((f + np.asarray(m_score, dtype=np.int64) + 1) // 2, f + 1)


def _edges(values: Sequence[float], name: str) -> tuple[float, ...]:
    array = _finite(values, name)
    if array.size == 0:
        raise FeatureInputError(f"cannot learn RFM {name} edges from an empty table")
    return tuple(float(e) for e in np.quantile(array, _QUANTILES))


def _bin(values: Sequence[float], edges: Sequence[float], name: str) -> np.ndarray:
    """1 + number of edges strictly below each value (right-closed bins)."""
    array = _finite(values, name)
    return 1 + np.searchsorted(np.asarray(edges), array, side="left").astype(np.int64)


def rfm_scores(
    recency: pd.Series,
    frequency: pd.Series,
    monetary: pd.Series,
    edges: RFMEdges | None = None,
    cycle_days: float | None = None,
) -> pd.DataFrame:
    """RFM scores 1..5 and the ``rfm_score`` string (e.g. ``"545"``).

    Parameters
    ----------
    recency
        Time since the last purchase (e.g. days); smaller is better.
    frequency, monetary
        Larger is better (e.g. purchase days, spend per purchase day).
    edges
        Learnt edges; ``None`` learns them from these inputs (:meth:`RFMEdges.fit`).
    cycle_days
        Purchase cycle (days) for learning the recency edges when ``edges`` is None.

    Returns
    -------
    DataFrame
        ``r_score, f_score, m_score`` (int64) and ``rfm_score`` (str), indexed like ``recency``.
    """
    edges = edges or RFMEdges.fit(recency, frequency, monetary, cycle_days=cycle_days)
    scores = edges.score(recency, frequency, monetary)
    table = pd.DataFrame(scores, index=recency.index)
    table[RFM_SCORE] = score_strings(scores[R_SCORE], scores[F_SCORE], scores[M_SCORE])
    return table


def score_strings(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Three-digit strings R F M (each 1..5), as an object array."""
    labels = np.array([f"{a}{b}{c}" for a in range(1, 6) for b in range(1, 6) for c in range(1, 6)],
                      dtype=object)
    return labels[(r - 1) * 25 + (f - 1) * 5 + (m - 1)]


def segment_table(mapping: Mapping[SegmentPattern, str] | None = None) -> np.ndarray:
    """5 x 5 array of segment names, ``[r - 1, fm - 1]``; checks every cell is named once.

    Raises
    ------
    ValueError
        (FeatureInputError) naming the unnamed cells and the cells named twice.
    """
    mapping = DEFAULT_SEGMENTS if mapping is None else mapping
    names: dict[tuple[int, int], list[str]] = {
        (r, f): [] for r in range(1, RFM_SCORE_BINS + 1) for f in range(1, RFM_SCORE_BINS + 1)
    }
    for pattern, name in mapping.items():
        for cell in _cells(pattern):
            names[cell].append(str(name))
    unnamed = [f"{r}{f}" for (r, f), n in names.items() if not n]
    twice = [f"{r}{f} ({' / '.join(n)})" for (r, f), n in names.items() if len(n) > 1]
    if unnamed or twice:
        parts = []
        if unnamed:
            parts.append(f"cells with no segment: {', '.join(unnamed)}")
        if twice:
            parts.append(f"cells with more than one segment: {', '.join(twice)}")
        raise FeatureInputError(
            "RFM segment mapping must name each of the 25 (R, FM) cells exactly once (cells "
            f"written 'R FM' as two digits, e.g. '15'); {'; '.join(parts)}"
        )
    table = np.empty((RFM_SCORE_BINS, RFM_SCORE_BINS), dtype=object)
    for (r, f), n in names.items():
        table[r - 1, f - 1] = n[0]
    return table


def _cells(pattern: SegmentPattern) -> list[tuple[int, int]]:
    """The (R, F) cells a pattern covers."""
    scores = range(1, RFM_SCORE_BINS + 1)
    if isinstance(pattern, str):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise FeatureInputError(f"RFM segment pattern {pattern!r} is not a valid regex: {exc}") from None
        return [(r, f) for r in scores for f in scores if regex.fullmatch(f"{r}{f}")]
    if isinstance(pattern, tuple | list) and len(pattern) == 2:
        r_range, f_range = (_score_range(p, pattern) for p in pattern)
        return [(r, f) for r in r_range for f in f_range]
    raise FeatureInputError(
        f"RFM segment pattern {pattern!r} must be a regex on 'RF' (e.g. '[4-5][4-5]') or an "
        "(R, F) pair of scores or (low, high) ranges"
    )


def _score_range(part: Any, pattern: object) -> range:
    low, high = (part, part) if isinstance(part, int | np.integer) else tuple(part)
    if not 1 <= low <= high <= RFM_SCORE_BINS:
        raise FeatureInputError(
            f"RFM segment pattern {pattern!r}: scores must lie in 1..{RFM_SCORE_BINS} with low <= high"
        )
    return range(int(low), int(high) + 1)


def rfm_segments(
    r_score: pd.Series, f_score: pd.Series, mapping: Mapping[SegmentPattern, str] | None = None,
    m_score: pd.Series | None = None,
) -> pd.Series:
    """Segment of each customer from its R score and FM (:func:`fm_scores`; F alone without
    ``m_score``); ``mapping``: see the module docstring."""
    table = segment_table(mapping)
    r = np.asarray(r_score, dtype=np.int64)
    fm = fm_scores(f_score, None if m_score is None else np.asarray(m_score))
    return pd.Series(table[r - 1, fm - 1], index=r_score.index, name="rfm_segment")


# --- value tiers ------------------------------------------------------------------


def check_tier_shares(a_share: float, b_share: float) -> None:
    """Value-tier shares must satisfy 0 < A share < B share <= 1 (else a FeatureInputError naming them)."""
    if not (isinstance(a_share, int | float) and isinstance(b_share, int | float)
            and 0 < a_share < b_share <= 1):
        raise FeatureInputError(
            "tier shares must satisfy 0 < a_share < b_share <= 1 (e.g. 0.80, 0.95), "
            f"got a_share={a_share!r}, b_share={b_share!r}"
        )


def value_tier_thresholds(
    values: Sequence[float] | pd.Series,
    a_share: float = DEFAULT_TIER_A_SHARE,
    b_share: float = DEFAULT_TIER_B_SHARE,
) -> tuple[float | None, float | None]:
    """Smallest value of tier A and of tier B (``None``: tier empty); see :func:`value_tiers`."""
    check_tier_shares(a_share, b_share)
    array = np.asarray(values, dtype=np.float64)
    if np.isnan(array).any():
        raise FeatureInputError(f"value tiers: {int(np.isnan(array).sum())} value(s) are NaN")
    n_negative = int((array < 0).sum())
    if n_negative:
        logger.info("value tiers: %d negative value(s) clipped to 0", n_negative)
    array = np.sort(np.clip(array, 0.0, None))[::-1]
    total = array.sum()
    if array.size == 0 or total <= 0:
        return None, None
    before = np.cumsum(array) - array  # value of the customers ranked above
    # a tie group takes the tier of its first member: thresholds are values, not ranks
    in_a = array[(before < a_share * total) & (array > 0)]
    in_ab = array[(before < b_share * total) & (array > 0)]
    low_a = float(in_a.min()) if in_a.size else None
    low_b = float(in_ab.min()) if in_ab.size else None
    if low_b is not None and low_a is not None and low_b >= low_a:
        low_b = None
    return low_a, low_b


def tiers_from_thresholds(
    values: Sequence[float] | pd.Series, thresholds: tuple[float | None, float | None]
) -> np.ndarray:
    """"A" where value >= A threshold, "B" where >= B threshold, else "C" (object array)."""
    array = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    low_a, low_b = thresholds
    inf = np.inf
    tier = np.full(array.size, TIER_LABELS[2], dtype=object)
    tier[array >= (inf if low_b is None else low_b)] = TIER_LABELS[1]
    tier[array >= (inf if low_a is None else low_a)] = TIER_LABELS[0]
    tier[array <= 0] = TIER_LABELS[2]
    return tier


def value_tiers(
    values: pd.Series,
    a_share: float = DEFAULT_TIER_A_SHARE,
    b_share: float = DEFAULT_TIER_B_SHARE,
) -> pd.Series:
    """ABC tiers by cumulative share of value (Pareto analysis).

    Customers are ranked by value, descending. A customer is in tier A when the customers
    ranked strictly above hold less than ``a_share`` of the total (so A is the customers making
    the first ``a_share``, including the one crossing it), B likewise for ``b_share``, else C.
    Ties: customers with equal values share the tier of the first of them, so the result
    depends on the values only (not on the order or the index). Negative values are clipped to
    0 (count logged); customers with value 0 are always C; all-zero values give all C.

    Returns
    -------
    Series
        ``"A"``, ``"B"`` or ``"C"``, indexed like ``values``.
    """
    thresholds = value_tier_thresholds(values, a_share, b_share)
    return pd.Series(tiers_from_thresholds(values, thresholds), index=values.index,
                     name="value_tier")
