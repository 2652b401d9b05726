"""Small seeded transaction logs of awkward shapes, for the end-to-end data-shape matrix.

Each generator returns a :class:`DataShape`: the raw table as a user's file would hold it
(text timestamps, the file's own column names), the ``data.columns`` mapping and any other
``data.*`` settings a user would write for it. The shapes are the ones real retail logs
come in (issue 8): weekly grocery buyers whose dropout is unidentifiable, one-time buyers,
cancellations, count-only event logs, tiny logs, eight customers, one day, continuous acquisition,
heavy-tailed spend, numeric-looking ids, mixed UTC offsets, a single customer, an empty
holdout, refunds only and no repeat buyers.

Pure numpy/pandas, built on :mod:`clvkit.data.simulate`; writing files is the caller's job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.data.simulate import SimulationParams, simulate_transactions

#: Text form of timestamps in the generated files (ISO 8601, no offset).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Default size of a generated log (customers): small enough for a seconds-long training run.
DEFAULT_SHAPE_CUSTOMERS = 200
#: Share of one-time buyers in :func:`one_time_buyers`.
ONE_TIME_SHARE = 0.92
#: Customers and repeat buyers of :func:`tiny`.
TINY_CUSTOMERS = 50
TINY_REPEATERS = 20
#: Orders of 1e6 currency units planted in :func:`heavy_tailed_spend`, and the Pareto tail index.
HEAVY_ORDER_AMOUNT = 1e6
HEAVY_ORDERS = 3
PARETO_TAIL_INDEX = 1.1
#: UTC offsets used by :func:`mixed_utc_offsets`.
UTC_OFFSETS = ("Z", "+00:00", "+02:00", "-05:00", "+05:30", "-08:00", "+09:00")
#: A two-year window: long enough for a derived calibration/holdout split and the label windows.
LONG_OBSERVATION_DAYS = 546


@dataclass(frozen=True)
class DataShape:
    """A generated transaction log and how a user would configure it.

    ``raw`` holds the file's columns (text timestamps); ``columns`` is ``data.columns``;
    ``data_settings`` holds other ``data.*`` keys (dates as ISO text, validation policies).
    """

    name: str
    description: str
    raw: pd.DataFrame
    columns: dict[str, str | None]
    data_settings: dict[str, Any] = field(default_factory=dict)

    def data_config(self, source: str, quarantine_path: str) -> dict[str, Any]:
        """The ``data`` section of a config reading ``source``."""
        return {"source": source, "columns": dict(self.columns), "quarantine_path": quarantine_path,
                **self.data_settings}


def _canonical_columns(amount: bool = True) -> dict[str, str | None]:
    return {"customer_id": schemas.CUSTOMER_ID, "timestamp": schemas.TIMESTAMP,
            "amount": schemas.AMOUNT if amount else None}


def _as_file(transactions: pd.DataFrame) -> pd.DataFrame:
    """Canonical simulated transactions as a file holds them: text timestamps, rows by time."""
    out = transactions.sort_values([schemas.TIMESTAMP, schemas.CUSTOMER_ID], kind="stable").reset_index(drop=True)
    out[schemas.TIMESTAMP] = out[schemas.TIMESTAMP].dt.strftime(TIMESTAMP_FORMAT)
    return out


def _simulated(n_customers: int, seed: int, **params: Any) -> pd.DataFrame:
    return simulate_transactions(n_customers, seed, SimulationParams(**params)).transactions


def weekly_buyers(seed: int = 0, n_customers: int = 120) -> DataShape:
    """Grocery-panel shape: everyone buys about weekly and nobody drops out (dropout unidentifiable)."""
    tx = _simulated(n_customers, seed, r=20.0, alpha=20.0, a=1.0, b=1e6, acquisition_days=14,
                    observation_days=364)
    return DataShape("weekly_buyers", "near-zero dropout: weekly buyers, p ~ Beta(1, 1e6)",
                     _as_file(tx), _canonical_columns())


def one_time_buyers(seed: int = 0, n_customers: int = 400) -> DataShape:
    """At least 90 % of customers buy exactly once; the rest keep their simulated repeat purchases."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS, acquisition_days=180)
    return DataShape("one_time_buyers", f"{ONE_TIME_SHARE:.0%} one-time buyers",
                     _as_file(_keep_repeaters(tx, int(round(n_customers * (1 - ONE_TIME_SHARE))), seed)),
                     _canonical_columns())


def _keep_repeaters(tx: pd.DataFrame, n_repeaters: int, seed: int) -> pd.DataFrame:
    """Keep the repeat purchases of ``n_repeaters`` random repeat buyers; everyone else keeps the first only."""
    counts = tx.groupby(schemas.CUSTOMER_ID).size()
    repeat_ids = counts.index[counts > 1].to_numpy()
    if repeat_ids.size < n_repeaters:
        raise ValueError(f"seed {seed} drew {repeat_ids.size} repeat buyers, fewer than {n_repeaters}")
    chosen = np.random.default_rng(seed).choice(repeat_ids, size=n_repeaters, replace=False)
    first = ~tx.duplicated(schemas.CUSTOMER_ID, keep="first")
    return tx[first | tx[schemas.CUSTOMER_ID].isin(chosen)]


def returns_heavy(seed: int = 0, n_customers: int = 185) -> DataShape:
    """Gift-shop shape: invoice lines (quantity × unit price), cancellations as 'C' invoices.

    About a third of invoices are cancelled in part: a 'C'-prefixed invoice with a negative
    quantity, mostly the same day (netted against that day's spend), sometimes days later
    (an unmatched return, quarantined). No ``amount`` column: amount = quantity × unit price.
    """
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS, acquisition_days=120)
    rng = np.random.default_rng(seed)
    n = len(tx)
    quantity = rng.integers(1, 13, n)
    invoices = pd.DataFrame({
        "InvoiceNo": [f"{536365 + i}" for i in range(n)],
        "StockCode": rng.choice(["85123A", "71053", "84406B", "22752", "21730"], n),
        "Quantity": quantity,
        "InvoiceDate": tx[schemas.TIMESTAMP].to_numpy(),
        "UnitPrice": np.round(np.maximum(tx[schemas.AMOUNT].to_numpy() / quantity, 0.01), 2),
        "CustomerID": tx[schemas.CUSTOMER_ID].str.replace("C", "1", regex=False).to_numpy(),
    })
    cancelled = rng.random(n) < 1.0 / 3.0
    later = rng.random(n) < 0.25
    cancels = invoices[cancelled].copy()
    cancels["InvoiceNo"] = "C" + cancels["InvoiceNo"]
    cancels["Quantity"] = -rng.integers(1, cancels["Quantity"].to_numpy() + 1)
    shift = np.where(later[cancelled], rng.integers(2, 30, cancelled.sum()), 0)
    cancels["InvoiceDate"] = cancels["InvoiceDate"] + pd.to_timedelta(shift, unit="D") + pd.Timedelta(hours=1)
    lines = pd.concat([invoices, cancels]).sort_values("InvoiceDate", kind="stable").reset_index(drop=True)
    lines["InvoiceDate"] = lines["InvoiceDate"].dt.strftime("%m/%d/%Y %H:%M")
    columns = {"customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": None,
               "quantity": "Quantity", "unit_price": "UnitPrice", "order_id": "InvoiceNo", "product": "StockCode"}
    return DataShape("returns_heavy", "invoice lines with 'C' cancellations (negative quantities)", lines,
                     columns, {"date_format": "%m/%d/%Y %H:%M"})


def count_only(seed: int = 0, n_customers: int = DEFAULT_SHAPE_CUSTOMERS) -> DataShape:
    """Event log with customer and date only (the classic BTYD input, no spend)."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS)
    raw = _as_file(tx).drop(columns=[schemas.AMOUNT])
    return DataShape("count_only", "customer + date only (no amount column)", raw, _canonical_columns(amount=False))


def tiny(seed: int = 0) -> DataShape:
    """50 customers, of whom exactly 20 buy again."""
    tx = _simulated(TINY_CUSTOMERS, seed, observation_days=LONG_OBSERVATION_DAYS, r=1.0, alpha=4.0)
    return DataShape("tiny", f"{TINY_CUSTOMERS} customers, {TINY_REPEATERS} repeat buyers",
                     _as_file(_keep_repeaters(tx, TINY_REPEATERS, seed)), _canonical_columns())


def few_customers(seed: int = 0, n_customers: int = 8) -> DataShape:
    """Eight customers who all buy again over a year and a half (fewer than ten: no deciles)."""
    tx = _simulated(n_customers * 10, seed, observation_days=LONG_OBSERVATION_DAYS, r=2.0, alpha=4.0)
    counts = tx.groupby(schemas.CUSTOMER_ID).size()
    chosen = counts.index[counts > 2][:n_customers]
    return DataShape("few_customers", f"{n_customers} customers, all repeat buyers",
                     _as_file(tx[tx[schemas.CUSTOMER_ID].isin(chosen)]), _canonical_columns())


def one_day(seed: int = 0, n_customers: int = 60) -> DataShape:
    """Every transaction on the same calendar day."""
    rng = np.random.default_rng(seed)
    n = n_customers * 2
    seconds = np.sort(rng.integers(0, 86_400, n))
    raw = pd.DataFrame({
        schemas.CUSTOMER_ID: [f"D{i % n_customers:03d}" for i in range(n)],
        schemas.TIMESTAMP: (pd.Timestamp("2022-03-15") + pd.to_timedelta(seconds, unit="s")).strftime(TIMESTAMP_FORMAT),
        schemas.AMOUNT: np.round(rng.gamma(2.0, 20.0, n), 2),
    })
    return DataShape("one_day", "all transactions on one day", raw, _canonical_columns())


def acquired_throughout(seed: int = 0, n_customers: int = DEFAULT_SHAPE_CUSTOMERS) -> DataShape:
    """First purchases spread over the whole observation period (new customers right up to the end)."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS,
                    acquisition_days=LONG_OBSERVATION_DAYS - 1)
    return DataShape("acquired_throughout", "customers acquired throughout the period", _as_file(tx),
                     _canonical_columns())


def heavy_tailed_spend(seed: int = 0, n_customers: int = DEFAULT_SHAPE_CUSTOMERS) -> DataShape:
    """Pareto-tailed order values plus a few orders of 1e6."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS).copy()
    rng = np.random.default_rng(seed)
    tx[schemas.AMOUNT] = np.round(10.0 * (1.0 + rng.pareto(PARETO_TAIL_INDEX, len(tx))), 2)
    tx.loc[rng.choice(tx.index, HEAVY_ORDERS, replace=False), schemas.AMOUNT] = HEAVY_ORDER_AMOUNT
    return DataShape("heavy_tailed_spend", f"Pareto(index {PARETO_TAIL_INDEX}) spend, {HEAVY_ORDERS} orders of 1e6",
                     _as_file(tx), _canonical_columns())


def leading_zero_ids(seed: int = 0, n_customers: int = DEFAULT_SHAPE_CUSTOMERS) -> DataShape:
    """Numeric-looking ids, some with leading zeros: '000123' and '123' are different customers."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS)
    ids = tx[schemas.CUSTOMER_ID].unique()
    numbers = {old: str(100 + i) for i, old in enumerate(ids)}
    padded = {old: f"{int(new):06d}" for old, new in list(numbers.items())[::2]}  # every other id zero-padded
    numbers |= padded
    numbers[ids[1]] = numbers[ids[0]].lstrip("0")  # '000100' and '100' both present
    tx = tx.assign(**{schemas.CUSTOMER_ID: tx[schemas.CUSTOMER_ID].map(numbers)})
    return DataShape("leading_zero_ids", "numeric-looking ids with leading zeros ('000100' != '100')",
                     _as_file(tx), _canonical_columns())


def mixed_utc_offsets(seed: int = 0, n_customers: int = DEFAULT_SHAPE_CUSTOMERS) -> DataShape:
    """ISO timestamps each carrying its own UTC offset (Z, +02:00, -05:00, +05:30, ...)."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS)
    rng = np.random.default_rng(seed)
    offsets = rng.choice(UTC_OFFSETS, len(tx))
    raw = _as_file(tx)
    raw[schemas.TIMESTAMP] = raw[schemas.TIMESTAMP].str.replace(" ", "T", regex=False) + offsets
    return DataShape("mixed_utc_offsets", "timestamps with mixed UTC offsets", raw, _canonical_columns())


def single_customer(seed: int = 0) -> DataShape:
    """One customer buying about every three weeks for a year and a half."""
    rng = np.random.default_rng(seed)
    days = np.cumsum(rng.integers(10, 32, 30))
    days = days[days < LONG_OBSERVATION_DAYS]
    raw = pd.DataFrame({
        schemas.CUSTOMER_ID: "solo",
        schemas.TIMESTAMP: (pd.Timestamp("2021-01-04") + pd.to_timedelta(days, unit="D")).strftime(TIMESTAMP_FORMAT),
        schemas.AMOUNT: np.round(rng.gamma(4.0, 10.0, days.size), 2),
    })
    return DataShape("single_customer", "one customer", raw, _canonical_columns())


def empty_holdout(seed: int = 0, n_customers: int = DEFAULT_SHAPE_CUSTOMERS) -> DataShape:
    """Purchases stop at the calibration end: the configured holdout has no purchases at all."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS)
    start = tx[schemas.TIMESTAMP].min().normalize()
    calibration_end = (start + pd.Timedelta(days=364)).date()
    kept = tx[tx[schemas.TIMESTAMP] < pd.Timestamp(calibration_end) + pd.Timedelta(days=1)]
    settings = {"calibration_end": calibration_end.isoformat(),
                "observation_end": (calibration_end + dt.timedelta(days=120)).isoformat()}
    return DataShape("empty_holdout", "a holdout with no purchases", _as_file(kept), _canonical_columns(), settings)


def all_negative_spend(seed: int = 0, n_customers: int = 80) -> DataShape:
    """Only refunds: every line is negative, so nothing is left after netting."""
    tx = _simulated(n_customers, seed, observation_days=LONG_OBSERVATION_DAYS)
    tx = tx.assign(**{schemas.AMOUNT: -tx[schemas.AMOUNT]})
    return DataShape("all_negative_spend", "every line a refund (negative amount)", _as_file(tx),
                     _canonical_columns())


def no_repeat_buyers(seed: int = 0, n_customers: int = 300) -> DataShape:
    """Every customer buys exactly once (first purchases spread over a year and a half)."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0, LONG_OBSERVATION_DAYS, n_customers))
    raw = pd.DataFrame({
        schemas.CUSTOMER_ID: [f"N{i:04d}" for i in range(n_customers)],
        schemas.TIMESTAMP: (pd.Timestamp("2021-01-01") + pd.to_timedelta(np.round(days * 86_400), unit="s"))
        .strftime(TIMESTAMP_FORMAT),
        schemas.AMOUNT: np.round(rng.gamma(3.0, 15.0, n_customers), 2),
    })
    return DataShape("no_repeat_buyers", "every customer buys once", raw, _canonical_columns())


#: Every generator by shape name (each takes ``seed`` and returns a DataShape).
SHAPES: dict[str, Callable[..., DataShape]] = {
    "weekly_buyers": weekly_buyers,
    "one_time_buyers": one_time_buyers,
    "returns_heavy": returns_heavy,
    "count_only": count_only,
    "tiny": tiny,
    "few_customers": few_customers,
    "one_day": one_day,
    "acquired_throughout": acquired_throughout,
    "heavy_tailed_spend": heavy_tailed_spend,
    "leading_zero_ids": leading_zero_ids,
    "mixed_utc_offsets": mixed_utc_offsets,
    "single_customer": single_customer,
    "empty_holdout": empty_holdout,
    "all_negative_spend": all_negative_spend,
    "no_repeat_buyers": no_repeat_buyers,
}


def make_shape(name: str, seed: int = 0) -> DataShape:
    """The named shape drawn with ``seed``."""
    if name not in SHAPES:
        raise ValueError(f"unknown data shape {name!r}; choose one of {sorted(SHAPES)}")
    return SHAPES[name](seed=seed)
