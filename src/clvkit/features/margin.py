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
