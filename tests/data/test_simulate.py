from __future__ import annotations

import hashlib

import numpy as np
import pytest

from clvkit.data.simulate import SimulationParams, simulate_transactions
from clvkit.pipelines.simulate import simulate_to_files


def _digest(path) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_identical_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = simulate_to_files(300, 11, tmp_path / "a" / "tx.csv")
    b = simulate_to_files(300, 11, tmp_path / "b" / "tx.csv")
    c = simulate_to_files(300, 12, tmp_path / "c" / "tx.csv")
    for key in ("transactions", "truth", "params"):
        assert _digest(a[key]) == _digest(b[key])
    assert _digest(a["transactions"]) != _digest(c["transactions"])


def test_every_customer_has_a_first_purchase_and_truth() -> None:
    sim = simulate_transactions(1_000, seed=3)
    tx = sim.transactions
    assert tx["customer_id"].nunique() == 1_000
    assert len(sim.truth) == 1_000
    first = tx.groupby("customer_id")["timestamp"].min()
    assert (first.values == sim.truth["first_purchase"].reindex(first.index).values).all()
    assert (tx["amount"] > 0).all()


def test_purchase_rate_matches_theory() -> None:
    """Mean repeat purchases of customers alive all along approach lambda*t (BG/NBD)."""
    params = SimulationParams(a=1.0, b=1e6)  # p ~ 0: nobody drops out
    sim = simulate_transactions(20_000, seed=5, params=params)
    repeats = sim.transactions.groupby("customer_id").size() - 1
    span_weeks = (params.observation_days - sim.truth["first_purchase"].sub(
        sim.truth["first_purchase"].min()).dt.days.mean()) / 7
    expected = params.r / params.alpha * span_weeks
    assert repeats.mean() == pytest.approx(expected, rel=0.08)


def test_spend_mean_matches_gamma_gamma() -> None:
    """E[z] = p * v / (q - 1) under Gamma-Gamma."""
    params = SimulationParams()
    sim = simulate_transactions(30_000, seed=9, params=params)
    per_customer = sim.transactions.groupby("customer_id")["amount"].mean()
    assert np.median(per_customer) < per_customer.mean()  # right-skewed
    assert per_customer.mean() == pytest.approx(params.p * params.v / (params.q - 1), rel=0.05)


def test_rejects_zero_customers() -> None:
    with pytest.raises(ValueError, match="n_customers must be at least 1, got 0"):
        simulate_transactions(0, seed=1)
