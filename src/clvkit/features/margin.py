"""Per-customer gross-margin share from a cost or margin column (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.schemas import MARGIN_SHARE


def customer_margin_share(transactions: pd.DataFrame, cutoff: object) -> pd.Series | None:
    """Gross-margin share of revenue per customer, from rows up to the cut-off day.

    ``cost``: (Σ amount − Σ cost) / Σ amount; ``margin``: Σ(amount × margin) / Σ amount.
    Customers with no positive revenue get NaN (the scorer then uses the config margin).
    Returns None when the transactions carry neither column.
    """
    has_cost, has_margin = schemas.COST in transactions, schemas.MARGIN in transactions
    if not (has_cost or has_margin):
        return None
    limit = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=1)
    rows = transactions.loc[transactions[schemas.TIMESTAMP] < limit]
    amount = rows[schemas.AMOUNT].to_numpy(dtype=float)
    gross = amount - rows[schemas.COST].to_numpy(dtype=float) if has_cost else amount * rows[schemas.MARGIN].to_numpy(dtype=float)
    frame = pd.DataFrame({"revenue": amount, "gross": gross, schemas.CUSTOMER_ID: rows[schemas.CUSTOMER_ID].to_numpy()})
    sums = frame.groupby(schemas.CUSTOMER_ID, sort=True)[["revenue", "gross"]].sum()
    share = sums["gross"] / sums["revenue"].where(sums["revenue"] > 0)
    return share.clip(lower=0.0, upper=1.0).rename(MARGIN_SHARE).astype(np.float64)


#: Feature-table and score columns of the current value.
CURRENT_VALUE = schemas.CURRENT_VALUE
CURRENT_VALUE_TRAILING = schemas.CURRENT_VALUE_TRAILING


def row_gross_margin(transactions: pd.DataFrame, margin: float) -> np.ndarray:
    """Gross margin of each row (currency): ``amount - cost``, ``amount x margin`` or ``amount x`` the default.

    A row with a missing cost or margin falls back to ``amount x margin`` (the default share).
    """
    amount = transactions[schemas.AMOUNT].to_numpy(dtype=np.float64, na_value=np.nan)
    default = amount * margin
    if schemas.COST in transactions:
        cost = transactions[schemas.COST].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isfinite(cost), amount - cost, default)
    if schemas.MARGIN in transactions:
        share = transactions[schemas.MARGIN].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isfinite(share), amount * share, default)
    return default


def current_value_columns(
    transactions: pd.DataFrame, rows: object, periods: object, *, margin: float, window_days: int
) -> dict[str, np.ndarray]:
    """Current value per customer of ``periods``: gross margin earned, lifetime and trailing.

    ``current_value`` = Σ gross margin of the customer's rows up to the cut-off day ``c``;
    ``current_value_trailing`` = the same over the rows in ``(c - window_days, c]``. Returns
    (negative amounts) are netted; both are floored at 0 (a customer never *earned* less than
    nothing for the business's ranking). ``rows``/``periods``: :func:`clvkit.features._periods.sort_rows`
    and :func:`~clvkit.features._periods.customer_days` of the same transactions.
    """
    from clvkit.features._periods import local_codes

    if schemas.COST in transactions or schemas.MARGIN in transactions:
        gross = row_gross_margin(transactions, margin)[rows.s_rows]  # type: ignore[attr-defined]
    else:  # amount x margin: the same product per row, on the amounts already in sorted order
        gross = rows.s_amounts * margin  # type: ignore[attr-defined]
    days, codes = rows.s_days, rows.s_codes  # type: ignore[attr-defined]
    end_day = periods.end_day  # type: ignore[attr-defined]
    keep = days <= end_day
    n = periods.n_customers  # type: ignore[attr-defined]
    customer = codes if n == rows.ids.size else local_codes(rows, periods, codes)  # type: ignore[attr-defined]
    if keep.all():  # every row is history: no filtered copies
        lifetime = np.bincount(customer, gross, minlength=n)
    else:
        lifetime = np.bincount(customer[keep], gross[keep], minlength=n)
    recent = days > end_day - window_days
    recent &= keep
    trailing = np.bincount(customer[recent], gross[recent], minlength=n)
    return {
        CURRENT_VALUE: np.maximum(lifetime[:n], 0.0),
        CURRENT_VALUE_TRAILING: np.maximum(trailing[:n], 0.0),
    }
