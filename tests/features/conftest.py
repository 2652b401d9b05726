"""Fixtures of the feature tests: CDNOW, enriched simulated transactions, lifetimes' summary."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.data.simulate import Simulation
from clvkit.io.datasets import load_builtin_transactions

CDNOW_CALIBRATION_END = "1997-09-30"
CDNOW_OBSERVATION_END = "1998-06-30"


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    """CDNOW 1/10 sample (treat as read-only; copy before changing)."""
    return load_builtin_transactions("cdnow_sample")


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """CDNOW master (treat as read-only)."""
    return load_builtin_transactions("cdnow")


@pytest.fixture(scope="session")
def lifetimes_summary() -> Callable[..., pd.DataFrame]:
    """lifetimes' summary_data_from_transaction_data with the clvkit time design, sorted."""
    with warnings.catch_warnings():  # lifetimes sets a deprecated pandas option on import
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data

    def run(tx: pd.DataFrame, cutoff: str, time_unit: str) -> pd.DataFrame:
        out = summary_data_from_transaction_data(
            tx, "customer_id", "timestamp", monetary_value_col="amount",
            observation_period_end=cutoff, freq="D", freq_multiplier=DAYS_PER_TIME_UNIT[time_unit],
        )
        out.index.name = "customer_id"
        return out.sort_index()

    return run


def enrich(tx: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Transactions with same-day repeats, returns, zero amounts and every optional column."""
    rng = np.random.default_rng(seed)
    base = tx.reset_index(drop=True)
    extra = base.sample(frac=0.4, random_state=seed).copy()
    extra["timestamp"] = extra["timestamp"] + pd.to_timedelta(rng.integers(0, 3_600, len(extra)), unit="s")
    extra["amount"] = np.round(rng.gamma(2.0, 10.0, len(extra)), 2)
    returns = base.sample(frac=0.08, random_state=seed + 1).copy()
    returns["amount"] = -np.round(returns["amount"] * rng.uniform(0.2, 1.0, len(returns)), 2)
    zeros = base.sample(frac=0.03, random_state=seed + 2).copy()
    zeros["amount"] = 0.0
    out = pd.concat([base, extra, returns, zeros], ignore_index=True)
    n = len(out)
    day = out["timestamp"].dt.strftime("%Y%m%d")
    out["order_id"] = (out["customer_id"].astype(str) + "-" + day + "-" + rng.integers(0, 2, n).astype(str))
    out.loc[rng.random(n) < 0.05, "order_id"] = None
    out["quantity"] = rng.integers(1, 5, n).astype("float64")
    out["product"] = rng.choice([f"P{i}" for i in range(40)], n)
    out["category"] = pd.Series(rng.choice(["books", "music", "film", None], n), dtype="string")
    out["channel"] = rng.choice(["web", "store", "app"], n)
    return out.sample(frac=1.0, random_state=seed + 3).reset_index(drop=True)


@pytest.fixture(scope="session")
def rich(simulation: Simulation) -> pd.DataFrame:
    """Simulated transactions of 2,000 customers, enriched (shuffled; read-only)."""
    return enrich(simulation.transactions, seed=11)


@pytest.fixture(scope="session")
def rich_cutoff(rich: pd.DataFrame) -> pd.Timestamp:
    """A cut-off in the middle of the simulated history."""
    return pd.Timestamp("2020-09-15")
