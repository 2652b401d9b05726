"""Shared fixtures: small deterministic data sets."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest

from clvkit.data.simulate import Simulation, SimulationParams, simulate_transactions


@pytest.fixture(scope="session")
def simulation() -> Simulation:
    """2,000 simulated customers (CDNOW-like parameters, weeks), fixed seed."""
    return simulate_transactions(2_000, seed=7, params=SimulationParams())


@pytest.fixture()
def transactions(simulation: Simulation) -> pd.DataFrame:
    """A fresh copy of the simulated transactions (canonical columns)."""
    return simulation.transactions.copy()


@pytest.fixture(autouse=True)
def _restore_mlflow_environment() -> Iterator[None]:
    """MLflow writes its URIs and active experiment into os.environ; undo it after each test."""
    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    before = {key: os.environ.get(key) for key in keys}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
