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

from typing import Any, Final

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DEFAULT_CHURN_WINDOW_DAYS
from clvkit.features._periods import to_day

#: Name of the churn label series: 1 = no purchase in the window.
CHURNED: Final = "churned"
#: Distinct calendar days with a purchase in the window.
PURCHASE_DAYS_WINDOW: Final = "purchase_days_window"
#: Net spend in the window (sum of amounts, returns included; may be negative), as spend_holdout.
SPEND_WINDOW: Final = "spend_window"

_ONE_DAY = pd.Timedelta(days=1)


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
    days = _check_window_days(window_days)
    start = _day(cutoff, "cutoff") + _ONE_DAY
    ts = _timestamps(transactions)
    ids = transactions[schemas.CUSTOMER_ID]
    known = _known_customers(ids, ts, start)
    in_window = ((ts >= start) & (ts < start + pd.Timedelta(days=days))).to_numpy()
    window_ids = ids[in_window].to_numpy()
    purchase_days = (
        pd.DataFrame({"id": window_ids, "day": ts[in_window].dt.floor("D").to_numpy()})
        .drop_duplicates()
        .groupby("id")
        .size()
    )
    if schemas.AMOUNT in transactions.columns:
        amounts = transactions[schemas.AMOUNT].to_numpy(dtype=float)[in_window]
        spend = pd.Series(amounts, index=window_ids).groupby(level=0).sum()
    else:
        spend = pd.Series(dtype=float)
    return pd.DataFrame(
        {
            PURCHASE_DAYS_WINDOW: purchase_days.reindex(known, fill_value=0).to_numpy(
                dtype="int64"
            ),
            SPEND_WINDOW: spend.reindex(known, fill_value=0.0).to_numpy(dtype="float64"),
        },
        index=known,
    )


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


def _known_customers(ids: pd.Series, ts: pd.Series, start: pd.Timestamp) -> pd.Index:
    """Sorted ids of customers with a transaction before ``start`` (the day after the cut-off)."""
    uniques = pd.unique(ids[(ts < start).to_numpy()])
    if isinstance(uniques, pd.Categorical):  # ids factorised at ingestion: the ids themselves
        uniques = uniques.categories.take(uniques.codes)
    known = pd.Index(uniques, name=schemas.CUSTOMER_ID).sort_values()
    if known.empty:
        first = ts.min() if len(ts) else None
        raise ValueError(
            f"no customer has a transaction on or before the cut-off {start - _ONE_DAY:%Y-%m-%d} "
            f"(first transaction: {first}); choose a later cut-off"
        )
    return known


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
