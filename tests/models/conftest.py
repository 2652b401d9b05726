"""Fixtures of the model tests: BTYD summaries built with lifetimes (the reference)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from clvkit.data.simulate import Simulation, SimulationParams, simulate_transactions
from clvkit.io.datasets import load_builtin_transactions
from clvkit.models._lifetimes import import_lifetimes

#: Calibration cut-off of Fader, Hardie & Lee (2005a) on CDNOW (weeks 1-39).
CDNOW_CALIBRATION_END = pd.Timestamp("1997-09-30")
DAYS_PER_WEEK = 7

SummaryMaker = Callable[..., pd.DataFrame]


@pytest.fixture(scope="session")
def lifetimes() -> ModuleType:
    """The lifetimes package, imported without side effects."""
    return import_lifetimes()


@pytest.fixture(scope="session")
def make_summary(lifetimes: ModuleType) -> SummaryMaker:
    """Build a BTYD summary with lifetimes (days as periods, ``freq_multiplier`` days a unit)."""
    from lifetimes.utils import summary_data_from_transaction_data

    def make(transactions: pd.DataFrame, cutoff: pd.Timestamp, freq_multiplier: int = DAYS_PER_WEEK) -> pd.DataFrame:
        history = transactions[transactions["timestamp"] < cutoff + pd.Timedelta(days=1)]
        summary = summary_data_from_transaction_data(
            history, "customer_id", "timestamp", monetary_value_col="amount",
            observation_period_end=cutoff, freq="D", freq_multiplier=freq_multiplier,
        )
        summary["recency"] = np.minimum(summary["recency"], summary["T"])  # lifetimes: T + 1 ulp
        return summary

    return make


@pytest.fixture(scope="session")
def cdnow_summary(make_summary: SummaryMaker) -> pd.DataFrame:
    """CDNOW 1/10 sample, calibration period to 1997-09-30, in weeks (2,357 customers)."""
    return make_summary(load_builtin_transactions("cdnow_sample"), CDNOW_CALIBRATION_END)


def observation_end(params: SimulationParams) -> pd.Timestamp:
    """Last day of a simulation's observation period."""
    return pd.Timestamp(params.start_date) + pd.Timedelta(days=params.observation_days)


@pytest.fixture(scope="session")
def simulated_summary(simulation: Simulation, make_summary: SummaryMaker) -> pd.DataFrame:
    """Summary of the shared 2,000-customer simulation at the end of observation (weeks)."""
    return make_summary(simulation.transactions, observation_end(simulation.params))


@pytest.fixture(scope="session")
def recovery_simulation() -> Simulation:
    """8,000 customers with the CDNOW parameters (weeks) for parameter-recovery tests."""
    return simulate_transactions(8_000, seed=11, params=SimulationParams())


@pytest.fixture(scope="session")
def recovery_summary(recovery_simulation: Simulation, make_summary: SummaryMaker) -> pd.DataFrame:
    return make_summary(recovery_simulation.transactions, observation_end(recovery_simulation.params))
