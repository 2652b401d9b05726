"""Private core: transactions -> integer customer codes, day numbers and customer-days.

The purchase period of every feature is the calendar day (see :mod:`clvkit.features.btyd`).
Everything here is vectorised numpy: customer ids are factorised once, timestamps become
int64 day numbers (days since 1970-01-01, any datetime64 resolution), and one sort on the
packed key (customer, day, row) orders the rows; customer-days and customers are then the
runs of equal keys, reduced with ``np.add.reduceat`` / ``np.bincount``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT, TIME_UNITS
from clvkit.exceptions import UserInputError

logger = logging.getLogger(__name__)

#: Integer ids whose range is at most this many times the row count are coded by a lookup table.
_DENSE_ID_RANGE_FACTOR = 4
_DENSE_ID_RANGE_MIN = 1 << 20
#: Bits available in a non-negative int64 sort key.
_KEY_BITS = 63
#: Customer-days with at least this many rows are re-ordered by amount before summing,
#: so that float sums do not depend on the input row order (a + b == b + a exactly).
_MIN_ROWS_TO_ORDER = 3


class FeatureInputError(UserInputError, ValueError):
    """Bad transactions or arguments given to a feature function.

    A :class:`~clvkit.exceptions.UserInputError` (the CLI exits with code 2) and a
    :class:`ValueError` (what Python callers expect from a bad argument).
    """


# --- argument checks ------------------------------------------------------------


def days_per_unit(time_unit: str) -> float:
    """Days in one model time unit (``constants.DAYS_PER_TIME_UNIT``); checks the name."""
    if not isinstance(time_unit, str) or time_unit not in DAYS_PER_TIME_UNIT:
        raise FeatureInputError(
            f"time_unit must be one of {', '.join(repr(u) for u in TIME_UNITS)}, got {time_unit!r}"
        )
    return DAYS_PER_TIME_UNIT[time_unit]


def to_day(value: object, name: str) -> int:
    """Day number (days since 1970-01-01) of a date-like cut-off; the time of day is dropped."""
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        raise FeatureInputError(
            f"{name} must be a date (e.g. '2024-12-31', datetime.date or pd.Timestamp), got the "
            f"number {value!r}"
        )
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise FeatureInputError(f"{name}: cannot read {value!r} as a date ({exc})") from None
    if stamp is pd.NaT:
        raise FeatureInputError(f"{name} is missing (NaT); give a date such as '2024-12-31'")
    if stamp.tzinfo is not None:
        raise FeatureInputError(
            f"{name} {value!r} has a time zone; cut-offs are local dates like the (tz-naive) "
            "timestamps, e.g. pass its .tz_localize(None) or just the date"
        )
    return int(np.datetime64(stamp.to_datetime64(), "D").astype(np.int64))


def day_to_date(day: int) -> dt.date:
    """Inverse of :func:`to_day`."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def check_windows(windows: object) -> tuple[int, ...]:
    """Trailing windows as a tuple of distinct positive ints, or a clear error."""
    try:
        values = tuple(windows)  # type: ignore[call-overload]
    except TypeError:
        raise FeatureInputError(
            f"trailing_windows_days must be a sequence of day counts, got {windows!r}"
        ) from None
    bad = [w for w in values if isinstance(w, bool) or not isinstance(w, int | np.integer) or w <= 0]
    if bad or len(set(values)) != len(values):
        raise FeatureInputError(
            "trailing_windows_days must be distinct positive integers (days), e.g. (30, 90, 180); "
            f"got {windows!r}"
        )
    return tuple(int(w) for w in values)


def check_transactions(transactions: object) -> pd.DataFrame:
    """The transactions frame, after checking its required columns and their types."""
    if not isinstance(transactions, pd.DataFrame):
        raise FeatureInputError(
            f"transactions must be a pandas DataFrame, got {type(transactions).__name__}"
        )
    required = (schemas.CUSTOMER_ID, schemas.TIMESTAMP, schemas.AMOUNT)
    missing = [c for c in required if c not in transactions.columns]
    if missing:
        have = ", ".join(repr(str(c)) for c in transactions.columns[:30])
        raise FeatureInputError(
            f"transactions lack required column(s) {missing}; they have {have}. "
            "Features need the canonical columns of clvkit ingestion (see clvkit.schemas)."
        )
    dtype = transactions[schemas.TIMESTAMP].dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        raise FeatureInputError(
            f"column 'timestamp' is tz-aware ({dtype}); features use local tz-naive times: "
            "convert with .dt.tz_convert(zone).dt.tz_localize(None)"
        )
    if not pd.api.types.is_datetime64_dtype(dtype):
        raise FeatureInputError(
            f"column 'timestamp' must be datetime64, got {dtype}; parse it first "
            "(pd.to_datetime or clvkit ingestion)"
        )
    if not pd.api.types.is_numeric_dtype(transactions[schemas.AMOUNT].dtype):
        raise FeatureInputError(
            f"column 'amount' must be numeric, got {transactions[schemas.AMOUNT].dtype}"
        )
    return transactions


# --- customer ids -----------------------------------------------------------------


def factorize_ids(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes (int64, one per row) into the sorted unique ids, and those ids.

    Categorical ids (factorised once upstream) reuse their codes; integer ids with a compact
    range use a lookup table; others a hash factorisation whose uniques are then sorted
    (cheaper than ``pd.factorize(sort=True)``).
    """
    n_missing = int(ids.isna().sum())
    if n_missing:
        raise FeatureInputError(
            f"{n_missing} transaction row(s) have a missing customer_id; drop or fix them "
            "(clvkit ingestion quarantines them)"
        )
    if isinstance(ids.dtype, pd.CategoricalDtype):
        return _categorical_codes(ids)
    dense = _dense_integer_codes(ids)
    if dense is not None:
        return dense
    codes, uniques = pd.factorize(ids, sort=False)
    try:
        order = np.asarray(uniques.argsort())
    except TypeError:  # mixed, unorderable types: pandas' safe sort
        codes, uniques = pd.factorize(ids, sort=True)
        return codes.astype(np.int64, copy=False), pd.Index(uniques, name=schemas.CUSTOMER_ID)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size, dtype=np.int64)
    codes = codes.astype(np.int64, copy=False)
    np.take(rank, codes, out=codes, mode="clip")  # in place: codes are valid indexes
    return codes, pd.Index(uniques.take(order), name=schemas.CUSTOMER_ID)


def _categorical_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes of ids already factorised (categorical dtype): no hashing, categories in their order.

    The same codes as the hash path (whose sort of a categorical follows category order): the
    used categories, renumbered 0..n-1 in category order. The index holds the ids themselves
    (the categories' values, e.g. ``str``), so per-customer tables look the same whether the
    ids came factorised (clvkit ingestion) or as text.
    """
    codes = ids.cat.codes.to_numpy()  # no missing values here: all codes >= 0
    present = np.zeros(len(ids.cat.categories), dtype=bool)
    present[codes] = True
    used = np.flatnonzero(present)
    if used.size == present.size:
        local = codes.astype(np.int64)
    else:
        lookup = np.cumsum(present, dtype=np.int64) - 1
        local = lookup[codes]
    return local, pd.Index(ids.cat.categories.take(used), name=schemas.CUSTOMER_ID)


def _dense_integer_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    if not pd.api.types.is_signed_integer_dtype(ids.dtype) or ids.empty:
        return None
    values = ids.to_numpy(dtype=np.int64)
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    if span > max(_DENSE_ID_RANGE_FACTOR * values.size, _DENSE_ID_RANGE_MIN):
        return None
    offset = values - low
    present = np.zeros(span, dtype=bool)
    present[offset] = True
    lookup = np.cumsum(present, dtype=np.int64) - 1
    uniques = np.flatnonzero(present) + low
    index = pd.Index(uniques, name=schemas.CUSTOMER_ID).astype(ids.dtype)
    return lookup[offset], index


# --- rows sorted by (customer, day) -----------------------------------------------


@dataclass(frozen=True)
class SortedRows:
    """The transaction rows as arrays sorted by (customer code, day).

    ``s_codes`` (index into ``ids``), ``s_days`` (day numbers), ``s_amounts`` and ``s_rows``
    (input position of each row) are sorted by (customer, day); ``s_starts`` are the positions
    where a customer-day begins. Inside a customer-day rows are in input order, except days
    with three or more rows, ordered by amount so that sums do not depend on the row order.
    """

    ids: pd.Index
    s_codes: np.ndarray
    s_days: np.ndarray
    s_amounts: np.ndarray
    s_rows: np.ndarray
    s_starts: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of transaction rows."""
        return int(self.s_codes.size)


def sort_rows(transactions: pd.DataFrame) -> SortedRows:
    """Factorise ids, convert timestamps to day numbers and sort by (customer, day)."""
    frame = check_transactions(transactions)
    days = _day_numbers(frame[schemas.TIMESTAMP])
    amounts = _amounts(frame[schemas.AMOUNT])
    codes, ids = factorize_ids(frame[schemas.CUSTOMER_ID])
    s_rows, s_codes, s_days = _sort_by_customer_day(codes, days, ids.size)
    del codes, days
    s_amounts = amounts[s_rows]
    s_starts = run_starts(s_codes, s_days)
    _order_busy_days_by_amount(s_codes, s_days, s_starts, s_amounts, s_rows)
    return SortedRows(ids, s_codes, s_days, s_amounts, s_rows, s_starts)


def _day_numbers(stamps: pd.Series) -> np.ndarray:
    values = stamps.to_numpy()
    n_missing = int(np.isnat(values).sum())
    if n_missing:
        raise FeatureInputError(
            f"{n_missing} transaction row(s) have a missing timestamp (NaT); drop or fix them "
            "(clvkit ingestion quarantines them)"
        )
    return values.astype("datetime64[D]").view(np.int64)


def _amounts(amount: pd.Series) -> np.ndarray:
    values = amount.to_numpy(dtype=np.float64, na_value=np.nan)
    n_bad = int(values.size - np.isfinite(values).sum())
    if n_bad:
        raise FeatureInputError(
            f"{n_bad} transaction row(s) have a missing or infinite amount; drop or fix them "
            "(clvkit ingestion quarantines them)"
        )
    return values


def _sort_by_customer_day(
    codes: np.ndarray, days: np.ndarray, n_customers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input rows in (customer, day, row) order, with the sorted codes and days.

    One ``np.sort`` of a packed int64 key when the three fields fit in 63 bits (much faster
    than ``argsort``), else a stable ``argsort`` of (customer, day). Overwrites ``codes`` and
    ``days`` (int64 arrays owned by the caller) to save memory.
    """
    n = codes.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first_day = int(days.min())
    days -= first_day
    last_offset = int(days.max())
    day_bits = max(last_offset.bit_length(), 1)
    code_bits = max(int(n_customers - 1).bit_length(), 1)
    row_bits = max(int(n - 1).bit_length(), 1)
    if code_bits + day_bits + row_bits > _KEY_BITS:
        codes *= last_offset + 1
        codes += days
        rows = np.argsort(codes, kind="stable")
        days += first_day
        return rows, np.take(codes, rows) // (last_offset + 1), np.take(days, rows)
    key = codes
    key <<= day_bits
    key |= days
    key <<= row_bits
    days[:] = np.arange(n, dtype=np.int64)
    key |= days
    del days
    key.sort()
    rows = key & ((1 << row_bits) - 1)
    key >>= row_bits
    s_days = key & ((1 << day_bits) - 1)
    s_days += first_day
    key >>= day_bits
    return rows, key, s_days


def _order_busy_days_by_amount(
    s_codes: np.ndarray, s_days: np.ndarray, starts: np.ndarray, s_amounts: np.ndarray,
    s_rows: np.ndarray,
) -> None:
    """Sort, in place, rows of customer-days with 3+ rows by amount (row-order-free sums)."""
    if s_amounts.size < _MIN_ROWS_TO_ORDER:
        return
    third = (s_codes[2:] == s_codes[:-2]) & (s_days[2:] == s_days[:-2])  # rows i..i+2: one day
    if not third.any():
        return
    busy = np.unique(np.searchsorted(starts, np.flatnonzero(third), side="right") - 1)
    nxt = busy + 1
    ends = np.where(nxt < starts.size, starts[np.minimum(nxt, starts.size - 1)], s_amounts.size)
    busy_sizes = ends - starts[busy]
    run_id = np.repeat(np.arange(busy.size), busy_sizes)
    first_of_run = np.repeat(starts[busy] - (np.cumsum(busy_sizes) - busy_sizes), busy_sizes)
    rows = first_of_run + np.arange(run_id.size)
    perm = rows[np.lexsort((s_amounts[rows], run_id))]
    s_amounts[rows] = s_amounts[perm]
    s_rows[rows] = s_rows[perm]


def run_starts(*keys: np.ndarray) -> np.ndarray:
    """Start positions of runs of equal values of ``keys`` (sorted arrays of equal length)."""
    n = keys[0].size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(keys[0][1:], keys[0][:-1], out=change[1:])
    for key in keys[1:]:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


# --- customer-days up to a cut-off -------------------------------------------------


@dataclass(frozen=True)
class CustomerDays:
    """Customer-days (the purchase periods) up to and including day ``end_day``.

    ``ids`` holds the customers with a purchase on or before ``end_day``, sorted; ``cust``
    indexes them, one entry per customer-day, sorted by (customer, day); ``start[i]`` is the
    position of customer ``i``'s first customer-day and ``row_start[i]`` (when built from
    rows) of its first row among the rows kept. ``codes_present`` maps back to
    :attr:`SortedRows.ids`.
    """

    end_day: int
    ids: pd.Index
    codes_present: np.ndarray
    cust: np.ndarray
    day: np.ndarray
    spend: np.ndarray
    start: np.ndarray
    row_start: np.ndarray | None = None

    @property
    def n_customers(self) -> int:
        """Customers present."""
        return int(self.start.size)

    @cached_property
    def n_days(self) -> np.ndarray:
        """Distinct purchase days per customer (int64)."""
        return (self.stop - self.start).astype(np.int64, copy=False)

    @cached_property
    def stop(self) -> np.ndarray:
        """Position after each customer's last customer-day."""
        return np.append(self.start[1:], self.cust.size)[: self.start.size]

    def first_after(self, day: int) -> np.ndarray:
        """Position of each customer's first customer-day after ``day`` (``stop`` if none).

        Days are sorted within a customer, so this is ``stop`` minus the customer's days after
        ``day``: one ``np.add.reduceat`` of a mask (no binary search).
        """
        if self.n_customers == 0:
            return np.zeros(0, dtype=np.int64)
        after = np.add.reduceat(self.day > day, self.start, dtype=np.int64)
        return self.stop - after

    def segment_sums(self, values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Sum of ``values[low[i]:high[i]]`` for each customer ``i`` (segments within customers).

        One ``np.add.reduceat`` over the interleaved bounds; empty segments give 0.
        """
        return self.adjacent_segment_sums(values, low, high)[0]

    def adjacent_segment_sums(self, values: np.ndarray, *bounds: np.ndarray) -> list[np.ndarray]:
        """Sums of ``values[b[j][i]:b[j + 1][i]]`` for each customer ``i`` and each pair of bounds.

        ``bounds`` are non-decreasing per customer and stay inside the customer's rows. One
        ``np.add.reduceat`` over the interleaved bounds gives every segment; each is summed on
        its own (``np.add.reduce``'s pairwise order), exactly as a separate reduction of that
        segment. Empty segments give 0.
        """
        k = len(bounds)
        n = bounds[0].size
        if n == 0:
            return [np.zeros(0, dtype=np.float64) for _ in range(k - 1)]
        interleaved = np.empty(k * n, dtype=np.int64)
        for j, bound in enumerate(bounds):
            interleaved[j::k] = bound
        np.minimum(interleaved, values.size - 1, out=interleaved)  # only empty segments reach the end
        sums = np.add.reduceat(values, interleaved)
        out = []
        for j in range(k - 1):
            low, high = bounds[j], bounds[j + 1]
            part = sums[j::k].copy()
            part[-1] = np.add.reduce(values[low[-1]:high[-1]])  # the last bound may have been clipped
            part[low >= high] = 0.0
            out.append(part)
        return out

    @cached_property
    def first_day(self) -> np.ndarray:
        """Day number of each customer's first purchase."""
        return self.day[self.start]

    @cached_property
    def last_day(self) -> np.ndarray:
        """Day number of each customer's last purchase up to ``end_day``."""
        return self.day[self.stop - 1]

    def per_customer_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-customer-day quantity for each customer, in day order."""
        if self.n_customers == 0:
            return np.zeros(0, dtype=np.result_type(values.dtype, np.int64))
        return np.add.reduceat(values, self.start)

    def until(self, end_day: int) -> CustomerDays:
        """The customer-days on or before an earlier day ``end_day``."""
        keep = self.day <= end_day
        return _compact(end_day, self.ids, self.codes_present, self.cust[keep], self.day[keep],
                        self.spend[keep])


def customer_days(rows: SortedRows, end_day: int) -> CustomerDays:
    """Collapse the rows on or before ``end_day`` into customer-days (amounts summed)."""
    codes, days, amounts, starts = rows.s_codes, rows.s_days, rows.s_amounts, rows.s_starts
    keep = days <= end_day
    if not keep.all():
        codes, days, amounts = codes[keep], days[keep], amounts[keep]
        starts = run_starts(codes, days)
    del keep
    if starts.size:
        spend = np.add.reduceat(amounts, starts)
    else:
        spend = np.zeros(0, dtype=np.float64)
    periods = _compact(end_day, rows.ids, None, codes[starts], days[starts], spend)
    return replace(periods, row_start=starts[periods.start])


def _compact(
    end_day: int,
    ids: pd.Index,
    global_codes: np.ndarray | None,
    codes: np.ndarray,
    day: np.ndarray,
    spend: np.ndarray,
) -> CustomerDays:
    """Renumber customers 0..n-1 over those present, keeping the sorted order.

    ``codes`` index ``ids``; ``global_codes`` maps them to :attr:`SortedRows.ids` codes
    (None: they already are).
    """
    start = run_starts(codes)
    present = codes[start]
    if present.size == ids.size:  # every customer present: codes are already 0..n-1
        cust = codes
    else:
        cust = np.repeat(np.arange(start.size, dtype=np.int64), np.diff(start, append=codes.size))
    return CustomerDays(
        end_day=end_day,
        ids=ids.take(present),
        codes_present=present if global_codes is None else global_codes[present],
        cust=cust,
        day=day,
        spend=spend,
        start=start,
    )


def local_codes(rows: SortedRows, periods: CustomerDays, codes: np.ndarray) -> np.ndarray:
    """Map global customer codes to indexes into ``periods.ids`` (-1 for absent customers)."""
    lookup = np.full(rows.ids.size, -1, dtype=np.int64)
    lookup[periods.codes_present] = np.arange(periods.n_customers, dtype=np.int64)
    return lookup[codes]
