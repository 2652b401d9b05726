"""Seeded simulator of transactions from BG/NBD (purchases) and Gamma-Gamma (spend).

Generative story (Fader, Hardie & Lee 2005a, 2005b), in the model time unit:

* purchase rate ``lambda_i ~ Gamma(shape=r, rate=alpha)``; dropout ``p_i ~ Beta(a, b)``;
* each customer makes a first purchase at a uniform time in the acquisition window, then
  repeat purchases at exponential(``lambda_i``) gaps; after each repeat purchase the customer
  becomes inactive with probability ``p_i`` (BG/NBD eq. 1-3);
* spend per transaction ``z_ij ~ Gamma(shape=p, rate=nu_i)``, ``nu_i ~ Gamma(shape=q, rate=v)``
  (Gamma-Gamma model, Fader, Hardie & Lee 2005b, eq. 1-2).

Pure numpy/pandas: writing files is done in :mod:`clvkit.io`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class SimulationParams:
    """Population parameters and time frame of a simulation.

    Defaults are the CDNOW estimates (weeks) of Fader, Hardie & Lee (2005).
    """

    r: float = 0.243
    alpha: float = 4.414
    a: float = 0.793
    b: float = 2.426
    p: float = 6.25
    q: float = 3.74
    v: float = 15.44
    time_unit: str = "W"
    start_date: str = "2020-01-01"
    acquisition_days: int = 84
    observation_days: int = 546

    def to_dict(self) -> dict[str, object]:
        """Plain dictionary, for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class Simulation:
    """Simulated transactions and the latent truth behind them."""

    transactions: pd.DataFrame
    truth: pd.DataFrame
    params: SimulationParams


def simulate_transactions(
    n_customers: int, seed: int, params: SimulationParams | None = None
) -> Simulation:
    """Draw transactions for ``n_customers`` customers; same seed, same output."""
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    params = params or SimulationParams()
    rng = np.random.default_rng(seed)
    unit_days = DAYS_PER_TIME_UNIT[params.time_unit]
    lam = rng.gamma(params.r, 1.0 / params.alpha, n_customers)
    p_drop = rng.beta(params.a, params.b, n_customers)
    nu = rng.gamma(params.q, 1.0 / params.v, n_customers)
    birth_days = rng.uniform(0.0, params.acquisition_days, n_customers)
    end_units = (params.observation_days - birth_days) / unit_days

    owners, times_units, dropout_units = _repeat_purchase_times(rng, lam, p_drop, end_units)
    cust = np.concatenate([np.arange(n_customers), owners])
    offset_days = np.concatenate([np.zeros(n_customers), times_units * unit_days])
    order = np.lexsort((offset_days, cust))
    cust, offset_days = cust[order], offset_days[order]
    amounts = rng.gamma(params.p, 1.0 / nu[cust])

    seconds = np.round((birth_days[cust] + offset_days) * SECONDS_PER_DAY).astype("int64")
    timestamps = pd.Timestamp(params.start_date) + pd.to_timedelta(seconds, unit="s")
    ids = _customer_ids(n_customers)
    transactions = pd.DataFrame(
        {
            schemas.CUSTOMER_ID: ids[cust],
            schemas.TIMESTAMP: timestamps,
            schemas.AMOUNT: np.round(amounts, 2),
        }
    )
    truth = pd.DataFrame(
        {
            "lambda": lam,
            "p_dropout": p_drop,
            "nu": nu,
            "first_purchase": pd.Timestamp(params.start_date)
            + pd.to_timedelta(np.round(birth_days * SECONDS_PER_DAY).astype("int64"), unit="s"),
            "dropout_time_units": dropout_units,
            "alive_at_end": ~np.isfinite(dropout_units),
        },
        index=pd.Index(ids, name=schemas.CUSTOMER_ID),
    )
    return Simulation(transactions=transactions, truth=truth, params=params)


def _customer_ids(n_customers: int) -> np.ndarray:
    width = len(str(n_customers))
    return np.array([f"C{i:0{width}d}" for i in range(n_customers)], dtype=object)


def _repeat_purchase_times(
    rng: np.random.Generator, lam: np.ndarray, p_drop: np.ndarray, end_units: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeat purchase times (since first purchase) of all customers, vectorised by round.

    Returns the owner index and time of each repeat purchase and, per customer, the time
    of dropout (``inf`` where the customer is still active at the end of observation).
    """
    n = lam.size
    dropout = np.full(n, np.inf)
    active = np.arange(n)
    clock = np.zeros(n)
    owners: list[np.ndarray] = []
    times: list[np.ndarray] = []
    while active.size:
        gap = rng.exponential(1.0, active.size) / lam[active]
        clock[active] += gap
        in_window = clock[active] <= end_units[active]
        bought = active[in_window]
        owners.append(bought)
        times.append(clock[bought])
        dies = rng.random(bought.size) < p_drop[bought]
        dropout[bought[dies]] = clock[bought[dies]]
        active = bought[~dies]
    return np.concatenate(owners), np.concatenate(times), dropout
