"""Behavioural customer features as of a cut-off day, all in days (names say so).

Every feature is defined in :data:`FEATURE_DEFINITIONS` ("definition [unit]"); names with
``{w}`` exist once per trailing window ``w`` (days). A *purchase day* is a calendar day with
at least one row of the customer (amounts summed, returns netted), as in
:mod:`clvkit.features.btyd`. Only rows on or before the cut-off day ``c`` are used; a trailing
window ``w`` is the days in (c - w, c]. Features whose source column is absent are not built
and are listed in :attr:`BehavioralFeatures.skipped` (never filled with placeholders).

Fully vectorised: one sort of the rows by (customer, day), then ``np.bincount`` /
``np.add.reduceat`` over customer-days; no Python loop over customers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DEFAULT_TRAILING_WINDOWS_DAYS
from clvkit.features._periods import (
    CustomerDays,
    SortedRows,
    check_windows,
    customer_days,
    days_per_unit,
    local_codes,
    run_starts,
    sort_rows,
    to_day,
)

logger = logging.getLogger(__name__)

__all__ = ["FEATURE_DEFINITIONS", "FEATURE_SOURCES", "BehavioralFeatures", "behavioral_features",
           "feature_names"]

#: Day number 0 (1970-01-01) was a Thursday; weekday = (day + 3) % 7 with Monday = 0.
_EPOCH_WEEKDAY_SHIFT = 3
_DAYS_PER_WEEK = 7
_SATURDAY = 5

#: Feature name -> "definition [unit]". ``{w}``: one feature per trailing window of w days.
FEATURE_DEFINITIONS: dict[str, str] = {
    "tenure_days": "cut-off day minus first purchase day [days]",
    "days_since_last_purchase": "cut-off day minus last purchase day [days]",
    "n_purchase_days": "distinct purchase days [count]",
    "n_lines": "transaction rows, returns included [count]",
    "total_spend": "sum of amounts, returns netted [currency]",
    "spend_per_purchase_day": "total_spend / n_purchase_days [currency per day with a purchase]",
    "gap_mean_days": (
        "mean gap between consecutive distinct purchase days = (last - first) / (n_purchase_days - 1); "
        "NaN with one purchase day [days]"
    ),
    "gap_std_days": (
        "sample standard deviation (ddof=1) of the gaps between consecutive purchase days; "
        "NaN with fewer than 2 gaps (fewer than 3 purchase days) [days]"
    ),
    "gap_cv": "gap_std_days / gap_mean_days; NaN with fewer than 2 gaps [ratio]",
    "overdue_ratio": (
        "days_since_last_purchase / gap_mean_days (> 1: later than usual); "
        "NaN with one purchase day [ratio]"
    ),
    "purchase_days_{w}d": "distinct purchase days in the last w days (c - w, c] [count]",
    "spend_{w}d": "sum of amounts in the last w days (c - w, c] [currency]",
    "spend_trend_{w}d": (
        "(L - P) / (L + P), L = spend in (c - w, c], P = spend in (c - 2w, c - w], both clipped "
        "at 0; in [-1, 1], 0 when both are 0 [ratio]"
    ),
    "n_orders": "distinct order_id values; rows without order_id: one order per purchase day [count]",
    "avg_order_value": (
        "total_spend / orders; orders are order_ids when the column exists, else purchase days "
        "[currency per order]"
    ),
    "max_order_value": "largest order total (order_id, else purchase day) [currency]",
    "first_order_value": (
        "total of the first order: earliest timestamp, ties by smallest order_id "
        "(without order_id: the first purchase day) [currency]"
    ),
    "returns_share": (
        "-(sum of negative amounts) / (sum of positive amounts); 0 without returns, NaN with "
        "returns but no positive amount [ratio]"
    ),
    "avg_basket_quantity": "sum of quantity / orders (as in avg_order_value) [items per order]",
    "n_distinct_products": "distinct non-missing product values [count]",
    "n_distinct_categories": "distinct non-missing category values [count]",
    "n_distinct_channels": "distinct non-missing channel values [count]",
    "weekend_share": "share of purchase days falling on a Saturday or Sunday [ratio]",
}

#: Features that need an optional transaction column, and that column.
FEATURE_SOURCES: dict[str, str] = {
    "n_orders": schemas.ORDER_ID,
    "avg_basket_quantity": schemas.QUANTITY,
    "n_distinct_products": schemas.PRODUCT,
    "n_distinct_categories": schemas.CATEGORY,
    "n_distinct_channels": schemas.CHANNEL,
}

#: Integer-valued (int64) features; the others are float64.
INTEGER_FEATURES = frozenset({
    "tenure_days", "days_since_last_purchase", "n_purchase_days", "n_lines", "n_orders",
    "n_distinct_products", "n_distinct_categories", "n_distinct_channels",
})  # and purchase_days_{w}d

_DISTINCT = {
    "n_distinct_products": schemas.PRODUCT,
    "n_distinct_categories": schemas.CATEGORY,
    "n_distinct_channels": schemas.CHANNEL,
}


@dataclass(frozen=True)
class BehavioralFeatures:
    """Behavioural features and the names of those not built.

    Attributes
    ----------
    table
        One row per customer with a purchase on or before the cut-off (index ``customer_id``,
        sorted); columns in the order of :func:`feature_names`.
    skipped
        Features not built because their source column (:data:`FEATURE_SOURCES`) is absent.
    """

    table: pd.DataFrame
    skipped: tuple[str, ...]


def feature_names(
    trailing_windows_days: Sequence[int], skipped: Sequence[str] = ()
) -> list[str]:
    """Column names produced, in order, for these windows, without ``skipped``."""
    names: list[str] = []
    for template in FEATURE_DEFINITIONS:
        if "{w}" in template:
            names += [template.format(w=w) for w in trailing_windows_days]
        elif template not in skipped:
            names.append(template)
    return names


def skipped_features(columns: Sequence[object]) -> tuple[str, ...]:
    """Features whose source column is not among ``columns``."""
    present = set(columns)
    return tuple(name for name, source in FEATURE_SOURCES.items() if source not in present)


def behavioral_features(
    transactions: pd.DataFrame,
    cutoff: object,
    time_unit: str = "D",
    trailing_windows_days: Sequence[int] = DEFAULT_TRAILING_WINDOWS_DAYS,
) -> BehavioralFeatures:
    """Behavioural features of every customer as of the end of day ``cutoff``.

    Parameters
    ----------
    transactions
        Canonical transactions; optional columns ``order_id``, ``quantity``, ``product``,
        ``category``, ``channel`` enable more features. Not modified.
    cutoff
        Date-like; rows up to and including this whole day are used.
    time_unit
        Checked for consistency with the other feature functions; behavioural features are
        always in days.
    trailing_windows_days
        Distinct positive window lengths ``w`` in days.

    Returns
    -------
    BehavioralFeatures
        The table (definitions in :data:`FEATURE_DEFINITIONS`) and the skipped features.
    """
    days_per_unit(time_unit)
    windows = check_windows(trailing_windows_days)
    end_day = to_day(cutoff, "cutoff")
    rows = sort_rows(transactions)
    periods = customer_days(rows, end_day)
    return behavioral_from(transactions, rows, periods, windows)


def behavioral_from(
    transactions: pd.DataFrame,
    rows: SortedRows,
    periods: CustomerDays,
    windows: Sequence[int],
) -> BehavioralFeatures:
    """Behavioural features from already sorted rows and customer-days (see module doc)."""
    columns, skipped = behavioral_columns(transactions, rows, periods, windows)
    return BehavioralFeatures(pd.DataFrame(columns, index=periods.ids, copy=False), skipped)


def behavioral_columns(
    transactions: pd.DataFrame,
    rows: SortedRows,
    periods: CustomerDays,
    windows: Sequence[int],
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Feature name -> array (one entry per customer of ``periods``), in output order."""
    skipped = skipped_features(list(transactions.columns))
    names = feature_names(windows, skipped)
    if skipped:
        logger.debug("behavioural features skipped (source column absent): %s",
                    ", ".join(f"{n} <- {FEATURE_SOURCES[n]}" for n in skipped))
    if periods.n_customers == 0:
        return {n: np.zeros(0, dtype=_dtype(n)) for n in names}, skipped
    kept = _KeptRows(rows, periods)
    columns: dict[str, np.ndarray] = {}
    columns.update(_activity(periods, kept))
    columns.update(_gaps(periods, columns["days_since_last_purchase"]))
    columns.update(_windows(periods, windows))
    columns.update(_orders(transactions, periods, kept, columns["total_spend"]))
    columns["returns_share"] = _returns_share(kept, columns["total_spend"])
    for name, source in _DISTINCT.items():
        if source in transactions.columns:
            columns[name] = _distinct(transactions[source], kept)
    columns["weekend_share"] = _weekend_share(periods)
    return {name: columns[name] for name in names}, skipped


def _dtype(name: str) -> type[np.generic]:
    integer = name in INTEGER_FEATURES or name.startswith("purchase_days_")
    return np.int64 if integer else np.float64


class _KeptRows:
    """Rows on or before the cut-off, in (customer, day) order, with lazily derived arrays."""

    def __init__(self, rows: SortedRows, periods: CustomerDays) -> None:
        keep = rows.s_days <= periods.end_day
        self._mask = None if keep.all() else keep
        self._rows = rows
        self._periods = periods

    def _select(self, values: np.ndarray) -> np.ndarray:
        return values if self._mask is None else values[self._mask]

    @cached_property
    def amounts(self) -> np.ndarray:
        """Row amounts."""
        return self._select(self._rows.s_amounts)

    @cached_property
    def days(self) -> np.ndarray:
        """Row day numbers."""
        return self._select(self._rows.s_days)

    @cached_property
    def positions(self) -> np.ndarray:
        """Input position of each row (to read optional columns)."""
        return self._select(self._rows.s_rows)

    @cached_property
    def customer(self) -> np.ndarray:
        """Index of each row's customer in ``periods``."""
        codes = self._select(self._rows.s_codes)
        if self._periods.n_customers == self._rows.ids.size:
            return codes
        return local_codes(self._rows, self._periods, codes)

    @cached_property
    def customer_starts(self) -> np.ndarray:
        """Position of each customer's first row."""
        if self._periods.row_start is not None:
            return self._periods.row_start
        return run_starts(self.customer)

    def column(self, values: pd.Series, dtype: type[np.generic] = np.float64) -> np.ndarray:
        """An optional column's values for these rows, as numpy."""
        array = values.to_numpy(dtype=dtype, na_value=np.nan) if dtype is np.float64 else values.to_numpy()
        return array[self.positions]


def _activity(periods: CustomerDays, kept: _KeptRows) -> dict[str, np.ndarray]:
    n_days = periods.n_days
    total = periods.per_customer_sum(periods.spend)
    return {
        "tenure_days": periods.end_day - periods.first_day,
        "days_since_last_purchase": periods.end_day - periods.last_day,
        "n_purchase_days": n_days,
        "n_lines": np.diff(kept.customer_starts, append=kept.customer.size),
        "total_spend": total,
        "spend_per_purchase_day": total / n_days,
    }


def _gaps(periods: CustomerDays, days_since_last: np.ndarray) -> dict[str, np.ndarray]:
    """Gap statistics between consecutive distinct purchase days, exact in integers.

    With S1 = sum of gaps = last - first and S2 = sum of squared gaps (integers), the sample
    variance is (n S2 - S1^2) / (n (n - 1)) for n gaps; n S2 <= span^3 fits in int64.
    """
    n_gaps = periods.n_days - 1
    span = periods.last_day - periods.first_day
    squares = np.diff(periods.day)  # gap j belongs to the customer of day j + 1
    squares[periods.start[1:] - 1] = 0  # across two customers
    squares *= squares
    first_gap = np.maximum(periods.start - 1, 0)  # each customer's block starts on a zero
    sum_squares = np.add.reduceat(squares, first_gap) if squares.size else np.zeros_like(span)
    if squares.size:
        sum_squares[0] = np.add.reduce(squares[: periods.stop[0] - 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_gaps >= 1, span / n_gaps, np.nan)
        numerator = (n_gaps * sum_squares - span * span).astype(np.float64)
        std = np.where(n_gaps >= 2, np.sqrt(numerator / (n_gaps * (n_gaps - 1.0))), np.nan)
        return {
            "gap_mean_days": mean,
            "gap_std_days": std,
            "gap_cv": std / mean,
            "overdue_ratio": days_since_last / mean,
        }


def _windows(periods: CustomerDays, windows: Sequence[int]) -> dict[str, np.ndarray]:
    """Purchase days and spend in (c - w, c] and (c - 2w, c - w]: suffixes of each customer."""
    out: dict[str, np.ndarray] = {}
    stop = periods.stop
    for w in windows:
        in_last = periods.first_after(periods.end_day - w)
        in_previous = periods.first_after(periods.end_day - 2 * w)
        spend_prev, spend_last = periods.adjacent_segment_sums(periods.spend, in_previous, in_last, stop)
        out[f"purchase_days_{w}d"] = stop - in_last
        out[f"spend_{w}d"] = spend_last
        out[f"spend_trend_{w}d"] = _trend(spend_last, spend_prev)
    return out


def _trend(last: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(L - P) / (L + P) on spends clipped at 0; 0 where both are 0."""
    last, previous = np.maximum(last, 0.0), np.maximum(previous, 0.0)
    both = last + previous
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both > 0, (last - previous) / both, 0.0)


def _orders(
    transactions: pd.DataFrame, periods: CustomerDays, kept: _KeptRows, total: np.ndarray
) -> dict[str, np.ndarray]:
    """Order value features (orders: order_id, else purchase day) and basket quantity."""
    if schemas.ORDER_ID in transactions.columns:
        n_orders, out = _orders_by_id(transactions, periods, kept)
        out["n_orders"] = n_orders
    else:
        n_orders = periods.n_days
        out = {
            "max_order_value": np.maximum.reduceat(periods.spend, periods.start),
            "first_order_value": periods.spend[periods.start],
        }
    out["avg_order_value"] = total / n_orders
    if schemas.QUANTITY in transactions.columns:
        quantity = kept.column(transactions[schemas.QUANTITY])
        out["avg_basket_quantity"] = np.add.reduceat(quantity, kept.customer_starts) / n_orders
    return out


def _orders_by_id(
    transactions: pd.DataFrame, periods: CustomerDays, kept: _KeptRows
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-order totals keyed by (customer, order_id); missing ids: one order per day."""
    order_codes, uniques = pd.factorize(transactions[schemas.ORDER_ID], sort=True)
    order_codes, days = order_codes[kept.positions], kept.days
    first_day = int(days.min())
    width = uniques.size + int(days.max()) - first_day + 1
    own = np.where(order_codes >= 0, order_codes, uniques.size + days - first_day)
    inverse, keys = pd.factorize(kept.customer * width + own)
    owner, own_key = keys // width, keys % width
    value = np.bincount(inverse, kept.amounts, minlength=keys.size)
    stamps = kept.column(transactions[schemas.TIMESTAMP], np.int64).astype(np.int64)
    first_stamp = np.full(keys.size, np.iinfo(np.int64).max)
    np.minimum.at(first_stamp, inverse, stamps)
    order = np.lexsort((own_key, first_stamp, owner))
    firsts = order[run_starts(owner[order])]
    largest = np.full(periods.n_customers, -np.inf)
    np.maximum.at(largest, owner, value)
    n_orders = np.bincount(owner, minlength=periods.n_customers)
    return n_orders, {"max_order_value": largest, "first_order_value": value[firsts]}


def _returns_share(kept: _KeptRows, total: np.ndarray) -> np.ndarray:
    """-(negative amounts) / (positive amounts), from the rows of customers with returns only."""
    negative = kept.amounts < 0
    share = np.zeros(total.size, dtype=np.float64)
    if not negative.any():
        return share
    with_returns = np.zeros(total.size, dtype=bool)
    with_returns[kept.customer[negative]] = True
    rows = with_returns[kept.customer]
    amounts, customer = kept.amounts[rows], kept.customer[rows]
    returned = np.bincount(customer, np.minimum(amounts, 0.0), minlength=total.size)
    bought = np.bincount(customer, np.maximum(amounts, 0.0), minlength=total.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        share[with_returns] = np.where(bought > 0, -returned / bought, np.nan)[with_returns]
    return share


def _distinct(column: pd.Series, kept: _KeptRows) -> np.ndarray:
    """Distinct non-missing values of ``column`` per customer."""
    codes, uniques = pd.factorize(column)
    codes = codes[kept.positions]
    valid = codes >= 0
    width = max(uniques.size, 1)
    pairs = pd.unique(kept.customer[valid] * width + codes[valid])
    return np.bincount(pairs // width, minlength=kept.customer_starts.size).astype(np.int64)


def _weekend_share(periods: CustomerDays) -> np.ndarray:
    weekday = periods.day + _EPOCH_WEEKDAY_SHIFT
    np.remainder(weekday, _DAYS_PER_WEEK, out=weekday)
    weekend = weekday >= _SATURDAY
    del weekday
    return np.add.reduceat(weekend, periods.start, dtype=np.int64) / periods.n_days
