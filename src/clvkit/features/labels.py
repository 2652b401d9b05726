"""Supervised labels from the window after a cut-off: churn and future value (pure).

Same time design as :mod:`clvkit.features.btyd`. A cut-off is a calendar date and includes
its whole day (a time of day is dropped): the history is every transaction with
``timestamp < cutoff + 1 day`` and the label window of ``window_days`` days is
``[cutoff + 1 day, cutoff + 1 day + window_days)``, i.e. the days ``(cutoff, cutoff + window]``.
The purchase period is the calendar day: every transaction line marks its day as a purchase
day, returns included (their amounts are summed into the day's spend), exactly as the BTYD
summary counts ``frequency`` and ``frequency_holdout``. Customers *known at the cut-off* are
those with a transaction on or before it -- the customers of the summary at that cut-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DEFAULT_CHURN_WINDOW_DAYS
from clvkit.features._periods import day_to_date, factorize_ids, to_day

#: Name of the churn label series: 1 = no purchase in the window.
CHURNED: Final = "churned"
#: Distinct calendar days with a purchase in the window.
PURCHASE_DAYS_WINDOW: Final = "purchase_days_window"
#: Net spend in the window (sum of amounts, returns included; may be negative), as spend_holdout.
SPEND_WINDOW: Final = "spend_window"



def churn_labels(
    transactions: pd.DataFrame, cutoff: Any, window_days: int = DEFAULT_CHURN_WINDOW_DAYS
) -> pd.Series:
    """1 where a customer known at ``cutoff`` has no purchase day in ``(cutoff, cutoff + window_days]``.

    Returns an ``int64`` series named ``churned``, indexed by ``customer_id`` (sorted).
    """
    window = future_value(transactions, cutoff, window_days)
    labels = (window[PURCHASE_DAYS_WINDOW] == 0).astype("int64")
    labels.name = CHURNED
    return labels


def future_value(transactions: pd.DataFrame, cutoff: Any, window_days: int) -> pd.DataFrame:
    """Purchase days and net spend in ``(cutoff, cutoff + window_days]`` per customer known at ``cutoff``.

    Columns ``purchase_days_window`` (int64) and ``spend_window`` (float64, 0.0 without an
    amount column), indexed by ``customer_id`` (sorted); zeros for customers without activity.
    """
    return future_values(transactions, cutoff, (window_days,))[0]


def future_values(
    transactions: pd.DataFrame, cutoff: Any, windows_days: Sequence[int]
) -> list[pd.DataFrame]:
    """:func:`future_value` for several windows after the same cut-off, in one pass.

    Ids are factorised and timestamps turned into day numbers once; a window's purchase days
    are its distinct (customer, day) pairs (one ``np.sort``) counted with ``np.bincount``. The
    spend is pandas' sorted grouped sum on integer codes numbered in id order, rows in input
    order: the same group numbers as a ``groupby`` on the ids themselves, hence the same
    summation (pandas' compensated sum, or its ``reduceat`` path when the rows come sorted by
    customer), bit for bit.
    """
    days = [_check_window_days(w) for w in windows_days]
    if not days:
        raise ValueError("future_values needs at least one window (window_days)")
    start = to_day(cutoff, "cutoff") + 1  # day number of the first day of every window
    ts = _timestamps(transactions)
    codes, ids = factorize_ids(transactions[schemas.CUSTOMER_ID])
    if not ids.is_monotonic_increasing:  # e.g. categories not in sorted order: number ids in sorted order
        order = ids.argsort()
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size, dtype=np.int64)
        codes, ids = rank[codes], ids.take(order)
    day = ts.to_numpy().astype("datetime64[D]").view(np.int64)
    known = np.zeros(ids.size, dtype=bool)
    known[codes[day < start]] = True
    if not known.any():
        first = ts.min() if len(ts) else None
        raise ValueError(
            f"no customer has a transaction on or before the cut-off {day_to_date(start - 1):%Y-%m-%d} "
            f"(first transaction: {first}); choose a later cut-off"
        )
    longest = max(days)
    rows = np.flatnonzero((day >= start) & (day < start + longest))  # input order
    row_codes, row_days = codes[rows], day[rows] - start
    pairs = np.sort(row_codes * longest + row_days)  # (customer, window day), sorted
    pairs = pairs[np.flatnonzero(np.diff(pairs, prepend=-1))]  # distinct
    pair_codes, pair_days = np.divmod(pairs, longest)
    amounts = (transactions[schemas.AMOUNT].to_numpy(dtype=np.float64)[rows]
               if schemas.AMOUNT in transactions.columns else None)
    index = ids[known].rename(schemas.CUSTOMER_ID)
    out = []
    for w in days:
        purchase_days = np.bincount(pair_codes[pair_days < w], minlength=ids.size)[known]
        spend = np.zeros(ids.size, dtype=np.float64)
        if amounts is not None:
            inside = row_days < w
            sums = pd.Series(amounts[inside]).groupby(row_codes[inside], sort=True).sum()  # as on the ids
            spend[sums.index.to_numpy()] = sums.to_numpy()
        window = pd.DataFrame(
            {PURCHASE_DAYS_WINDOW: purchase_days.astype(np.int64, copy=False), SPEND_WINDOW: spend[known]},
            index=index,
        )
        out.append(window)
    return out


def check_window_fits(first_date: Any, cutoff: Any, window_days: int, data_end: Any) -> None:
    """Raise ``ValueError`` unless history ``[first_date, cutoff]`` and the window fit the data.

    The label window ``(cutoff, cutoff + window_days]`` must end on or before ``data_end``
    (the last day with data), and the cut-off must not precede the first transaction.
    """
    days = _check_window_days(window_days)
    first = _day(first_date, "first_date")
    cut = _day(cutoff, "cutoff")
    last = _day(data_end, "data_end")
    window = pd.Timedelta(days=days)
    latest_cutoff = last - window
    if latest_cutoff < first:
        span = (last - first).days
        raise ValueError(
            f"the data span {first:%Y-%m-%d} .. {last:%Y-%m-%d} ({span} days) is too short for a "
            f"{days}-day churn window after any cut-off; set churn.window_days below {span} days"
        )
    if cut < first:
        raise ValueError(
            f"churn.inner_cutoff {cut:%Y-%m-%d} precedes the first transaction {first:%Y-%m-%d}: "
            f"there is no history to learn from; choose a cut-off between {first:%Y-%m-%d} and "
            f"{latest_cutoff:%Y-%m-%d}"
        )
    if cut + window > last:
        raise ValueError(
            f"the {days}-day churn window after the cut-off {cut:%Y-%m-%d} ends "
            f"{cut + window:%Y-%m-%d}, after the data end {last:%Y-%m-%d}; set churn.inner_cutoff "
            f"on or before {latest_cutoff:%Y-%m-%d} or churn.window_days to at most "
            f"{(last - cut).days}"
        )


# --- helpers -----------------------------------------------------------------------


def _day(value: Any, name: str) -> pd.Timestamp:
    """Midnight of a tz-naive date-like (its time of day dropped, as ``btyd`` does)."""
    return pd.Timestamp(to_day(value, name), unit="D")


def _check_window_days(window_days: Any) -> int:
    if (
        isinstance(window_days, bool)
        or not isinstance(window_days, int | np.integer)
        or window_days < 1
    ):
        raise ValueError(
            f"window_days must be a whole number of days >= 1, got {window_days!r}; set churn.window_days"
        )
    return int(window_days)


def _timestamps(transactions: pd.DataFrame) -> pd.Series:
    if not isinstance(transactions, pd.DataFrame):
        raise TypeError(
            f"transactions must be a pandas DataFrame, got {type(transactions).__name__}"
        )
    missing = [c for c in schemas.REQUIRED_TRANSACTION_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions lack the canonical column(s) {missing}; ingest them first "
            f"(columns present: {list(transactions.columns)})"
        )
    ts = transactions[schemas.TIMESTAMP]
    if not pd.api.types.is_datetime64_dtype(ts.dtype) or isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"transactions[{schemas.TIMESTAMP!r}] must be tz-naive datetime64, got {ts.dtype}"
        )
    if ts.isna().any():
        raise ValueError(
            f"transactions[{schemas.TIMESTAMP!r}] has {int(ts.isna().sum())} missing value(s)"
        )
    return ts
