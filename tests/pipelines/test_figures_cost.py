"""The cheap report figures draw the same numbers as the direct computations they replace."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.data.simulate import simulate_transactions
from clvkit.data.timeframe import TimeFrame
from clvkit.features.btyd import summary
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.pipelines import figures
from clvkit.pipelines.evaluate import customer_rows

UNIT_DAYS = 7.0


@pytest.fixture(scope="module")
def log_and_model() -> tuple[pd.DataFrame, BetaGeoModel]:
    transactions = simulate_transactions(400, 3).transactions
    table = summary(transactions, transactions[schemas.TIMESTAMP].max(), "W")
    return transactions, BetaGeoModel().fit(table[[schemas.FREQUENCY, schemas.RECENCY, schemas.T]])


def _frame(transactions: pd.DataFrame) -> TimeFrame:
    first = transactions[schemas.TIMESTAMP].min().date()
    last = transactions[schemas.TIMESTAMP].max().date()
    return TimeFrame(first, first + (last - first) / 2, last, False)


def _actual_by_unique_and_search(transactions: pd.DataFrame, customers: pd.Index, frame: TimeFrame,
                                 grid: np.ndarray) -> np.ndarray:
    """The former count: np.unique of (customer, day) keys, repeat days sorted and searched."""
    rows = transactions[transactions[schemas.CUSTOMER_ID].isin(customers)]
    days = (rows[schemas.TIMESTAMP].dt.normalize() - pd.Timestamp(frame.first_date)).dt.days.to_numpy(np.int64)
    codes, _ = pd.factorize(rows[schemas.CUSTOMER_ID])
    span = int(days.max()) + 1
    pairs = np.unique(codes.astype(np.int64) * span + days)
    customer, day = pairs // span, pairs % span
    first = np.r_[True, customer[1:] != customer[:-1]]
    return np.searchsorted(np.sort(day[~first]), grid, side="right")


def test_cumulative_tracking_counts_equal_the_direct_count(log_and_model) -> None:
    transactions, model = log_and_model
    frame = _frame(transactions)
    # only customers known at the calibration end: later customers' rows must not count
    known = transactions.loc[transactions[schemas.TIMESTAMP].dt.date <= frame.calibration_end, schemas.CUSTOMER_ID]
    customers = pd.Index(known.unique())
    fig = figures.cumulative_tracking_figure(model, transactions, customers, frame, UNIT_DAYS)
    actual_line, model_line = fig.axes[0].lines[:2]
    horizon = (frame.observation_end - frame.first_date).days
    grid = np.arange(0, horizon + 1, figures.TRACKING_STEP_DAYS)
    want = _actual_by_unique_and_search(transactions, customers, frame, grid)
    np.testing.assert_array_equal(actual_line.get_ydata(), want)
    assert want[-1] > want[0] >= 0 and model_line.get_ydata()[-1] > 0


def test_days_since_first_date_matches_pandas() -> None:
    stamps = pd.Series(pd.to_datetime(format="ISO8601", arg=["2020-01-01 00:00:00", "2020-01-01 23:59:59.999", "2020-03-01 12:00:00",
                                       "2021-02-28 00:00:01"]))
    first = dt.date(2020, 1, 1)
    want = (stamps.dt.normalize() - pd.Timestamp(first)).dt.days.to_numpy(np.int64)
    np.testing.assert_array_equal(figures._days_since(stamps, first), want)
    np.testing.assert_array_equal(figures._days_since(stamps.astype("datetime64[s]"), first), want)


def test_period_transactions_expected_counts_per_distinct_age(log_and_model) -> None:
    transactions, model = log_and_model
    table = summary(transactions, transactions[schemas.TIMESTAMP].max(), "W")
    f, t = table[schemas.FREQUENCY].to_numpy(), table[schemas.T].to_numpy()
    fig = figures.period_transactions_figure(model, f, t)
    bars = np.array([patch.get_height() for patch in fig.axes[0].patches])
    counts = np.arange(figures.MAX_FREQUENCY_SHOWN)
    per_customer = model.probability_of_n_purchases(t[:, None], counts[None, :]).sum(axis=0)
    want = np.append(per_customer, len(t) - per_customer.sum())
    np.testing.assert_allclose(bars[len(want):], want, rtol=1e-10)  # actual bars first, then the model's
    assert np.unique(t).size < t.size  # customers share ages: the per-age sum is a real collapse


def test_customer_rows_skips_the_lookup_only_when_the_customers_are_the_table() -> None:
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=pd.Index(["a", "b", "c"], name=schemas.CUSTOMER_ID))
    assert customer_rows(table, pd.Index(["a", "b", "c"])) is table
    pd.testing.assert_frame_equal(customer_rows(table, pd.Index(["c", "a"], name=schemas.CUSTOMER_ID)),
                                  table.loc[["c", "a"]])
