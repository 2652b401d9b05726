"""Shared fixtures: small deterministic data sets."""

from __future__ import annotations

import pandas as pd
import pytest

from clvkit.data.simulate import SimulationParams, Simulation, simulate_transactions


@pytest.fixture(scope="session")
def simulation() -> Simulation:
    """2,000 simulated customers (CDNOW-like parameters, weeks), fixed seed."""
    return simulate_transactions(2_000, seed=7, params=SimulationParams())


@pytest.fixture()
def transactions(simulation: Simulation) -> pd.DataFrame:
    """A fresh copy of the simulated transactions (canonical columns)."""
    return simulation.transactions.copy()
