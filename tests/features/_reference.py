"""Slow, obvious reference implementations of the features (per-customer Python), for tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def rows_until(tx: pd.DataFrame, cutoff: object) -> pd.DataFrame:
    """Rows on or before the whole day ``cutoff``."""
    end = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=1)
    return tx.loc[tx["timestamp"] < end]


def customer_day_groups(rows: pd.DataFrame) -> dict[object, pd.Series]:
    """Per customer: spend per calendar day (sorted by day)."""
    day = rows["timestamp"].dt.floor("D")
    daily = rows.assign(day=day).groupby(["customer_id", "day"])["amount"].sum()
    return {cid: g.droplevel(0) for cid, g in daily.groupby(level=0)}


def reference_summary(tx: pd.DataFrame, cutoff: object, unit_days: float) -> pd.DataFrame:
    """frequency/recency/T/monetary_value by the textbook definitions."""
    end = pd.Timestamp(cutoff).normalize()
    out = {}
    for cid, spend in customer_day_groups(rows_until(tx, cutoff)).items():
        days = spend.index
        n = len(days)
        out[cid] = {
            "frequency": float(n - 1),
            "recency": float((days[-1] - days[0]).days) / unit_days,
            "T": float((end - days[0]).days) / unit_days,
            "monetary_value": float(spend.iloc[1:].mean()) if n > 1 else 0.0,
        }
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "customer_id"
    return table.sort_index()


def reference_behavioral(tx: pd.DataFrame, cutoff: object, windows: tuple[int, ...]) -> pd.DataFrame:
    """Behavioural features computed customer by customer."""
    end = pd.Timestamp(cutoff).normalize()
    rows = rows_until(tx, cutoff)
    daily = customer_day_groups(rows)
    out = {}
    for cid, lines in rows.groupby("customer_id"):
        spend = daily[cid]
        out[cid] = _one_customer(lines, spend, end, windows)
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "customer_id"
    return table.sort_index()


def _one_customer(lines: pd.DataFrame, spend: pd.Series, end: pd.Timestamp,
                  windows: tuple[int, ...]) -> dict[str, float]:
    days = spend.index
    n = len(days)
    gaps = np.array([(b - a).days for a, b in zip(days[:-1], days[1:], strict=True)], dtype=float)
    mean = gaps.mean() if gaps.size >= 1 else math.nan
    std = gaps.std(ddof=1) if gaps.size >= 2 else math.nan
    since = (end - days[-1]).days
    f: dict[str, float] = {
        "tenure_days": (end - days[0]).days,
        "days_since_last_purchase": since,
        "n_purchase_days": n,
        "n_lines": len(lines),
        "total_spend": spend.sum(),
        "spend_per_purchase_day": spend.sum() / n,
        "gap_mean_days": mean,
        "gap_std_days": std,
        "gap_cv": std / mean,
        "overdue_ratio": since / mean,
    }
    age = np.array([(end - d).days for d in days])
    for w in windows:
        last = spend.to_numpy()[age < w].sum()
        prev = spend.to_numpy()[(age >= w) & (age < 2 * w)].sum()
        lc, pc = max(last, 0.0), max(prev, 0.0)
        f[f"purchase_days_{w}d"] = int((age < w).sum())
        f[f"spend_{w}d"] = last
        f[f"spend_trend_{w}d"] = (lc - pc) / (lc + pc) if lc + pc > 0 else 0.0
    f.update(_orders(lines, spend))
    amounts = lines["amount"]
    pos, neg = amounts[amounts > 0].sum(), -amounts[amounts < 0].sum()
    f["returns_share"] = 0.0 if neg == 0 else (neg / pos if pos > 0 else math.nan)
    for name, col in (("n_distinct_products", "product"), ("n_distinct_categories", "category"),
                      ("n_distinct_channels", "channel")):
        if col in lines:
            f[name] = lines[col].dropna().nunique()
    f["weekend_share"] = float(np.mean([d.day_of_week >= 5 for d in days]))
    return f


def _orders(lines: pd.DataFrame, spend: pd.Series) -> dict[str, float]:
    if "order_id" in lines:
        key = lines["order_id"].astype(object).where(
            lines["order_id"].notna(), "~day " + lines["timestamp"].dt.floor("D").astype(str)
        )
        grouped = lines.assign(key=key).groupby("key")
        totals = grouped["amount"].sum()
        first_time = grouped["timestamp"].min()
        has_id = pd.Series([not str(k).startswith("~day ") for k in totals.index], index=totals.index)
        order = pd.DataFrame({"t": first_time, "real": ~has_id, "k": totals.index.astype(str)})
        first_key = order.sort_values(["t", "real", "k"]).index[0]
        n_orders = len(totals)
        out = {"n_orders": n_orders, "max_order_value": totals.max(),
               "first_order_value": totals[first_key]}
    else:
        n_orders = len(spend)
        out = {"max_order_value": spend.max(), "first_order_value": spend.iloc[0]}
    out["avg_order_value"] = spend.sum() / n_orders
    if "quantity" in lines:
        out["avg_basket_quantity"] = lines["quantity"].sum() / n_orders
    return out


def reference_future_value(transactions: pd.DataFrame, cutoff: object, window_days: int) -> pd.DataFrame:
    """clvkit 0.x ``future_value`` verbatim (pandas drop_duplicates/groupby/reindex on the ids)."""
    start = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=1)
    ts, ids = transactions["timestamp"], transactions["customer_id"]
    uniques = pd.unique(ids[(ts < start).to_numpy()])
    if isinstance(uniques, pd.Categorical):
        uniques = uniques.categories.take(uniques.codes)
    known = pd.Index(uniques, name="customer_id").sort_values()
    in_window = ((ts >= start) & (ts < start + pd.Timedelta(days=window_days))).to_numpy()
    window_ids = ids[in_window].to_numpy()
    purchase_days = (
        pd.DataFrame({"id": window_ids, "day": ts[in_window].dt.floor("D").to_numpy()})
        .drop_duplicates().groupby("id").size()
    )
    if "amount" in transactions.columns:
        amounts = transactions["amount"].to_numpy(dtype=float)[in_window]
        spend = pd.Series(amounts, index=window_ids).groupby(level=0).sum()
    else:
        spend = pd.Series(dtype=float)
    return pd.DataFrame(
        {
            "purchase_days_window": purchase_days.reindex(known, fill_value=0).to_numpy(dtype="int64"),
            "spend_window": spend.reindex(known, fill_value=0.0).to_numpy(dtype="float64"),
        },
        index=known,
    )
