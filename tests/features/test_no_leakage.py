"""No leakage (rows after the cut-off change nothing) and properties of the BTYD summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.features import FeatureBuilder
from clvkit.features.behavioral import behavioral_features
from clvkit.features.btyd import calibration_holdout, summary
from clvkit.features.rfm import rfm_scores
from tests.features._reference import reference_summary

CUTOFF = pd.Timestamp("2020-09-15")


def _future_rows(tx: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Arbitrary rows after the cut-off day: known and new customers, odd amounts, all columns."""
    rng = np.random.default_rng(seed)
    n = 3_000
    known = tx["customer_id"].drop_duplicates().to_numpy()
    ids = np.where(rng.random(n) < 0.8, rng.choice(known, n), [f"new{i}" for i in range(n)])
    future = pd.DataFrame({
        "customer_id": ids,
        "timestamp": CUTOFF + pd.Timedelta(days=1) + pd.to_timedelta(rng.integers(0, 400 * 86_400, n), unit="s"),
        "amount": rng.normal(0, 500, n).round(2),
        "order_id": rng.choice(["o1", "o2", None], n),
        "quantity": rng.integers(-3, 50, n).astype("float64"),
        "product": rng.choice(["new product", "P1"], n),
        "category": pd.Series(rng.choice(["toys", None], n), dtype="string"),
        "channel": rng.choice(["phone", "web"], n),
    })
    return pd.concat([tx, future], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def with_future(rich: pd.DataFrame) -> pd.DataFrame:
    return _future_rows(rich, seed=21)


def test_summary_ignores_future_rows(rich: pd.DataFrame, with_future: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(summary(with_future, CUTOFF, "W"), summary(rich, CUTOFF, "W"))


def test_calibration_columns_ignore_rows_after_calibration(rich: pd.DataFrame,
                                                           with_future: pd.DataFrame) -> None:
    before = rich.loc[rich["timestamp"] < CUTOFF + pd.Timedelta(days=1)]
    a = calibration_holdout(before, CUTOFF, "2021-12-31", "W").table
    b = calibration_holdout(with_future, CUTOFF, "2021-12-31", "W").table
    cal = [schemas.FREQUENCY_CAL, schemas.RECENCY_CAL, schemas.T_CAL, schemas.MONETARY_VALUE_CAL]
    pd.testing.assert_frame_equal(b[cal], a[cal])


def test_behavioral_ignores_future_rows(rich: pd.DataFrame, with_future: pd.DataFrame) -> None:
    a = behavioral_features(rich, CUTOFF).table
    b = behavioral_features(with_future, CUTOFF).table
    pd.testing.assert_frame_equal(b, a)


def test_rfm_and_builder_ignore_future_rows(rich: pd.DataFrame, with_future: pd.DataFrame) -> None:
    a_builder = FeatureBuilder(time_unit="M").fit(rich, CUTOFF)
    b_builder = FeatureBuilder(time_unit="M").fit(with_future, CUTOFF)
    assert a_builder.rfm_edges_ == b_builder.rfm_edges_
    assert a_builder.tier_thresholds_ == b_builder.tier_thresholds_
    a = a_builder.transform(rich, CUTOFF)
    pd.testing.assert_frame_equal(b_builder.transform(with_future, CUTOFF), a)
    assert a_builder.rfm_cycle_days_ == b_builder.rfm_cycle_days_
    scores = rfm_scores(a["days_since_last_purchase"], a["n_purchase_days"], a["spend_per_purchase_day"],
                        cycle_days=a_builder.rfm_cycle_days_)
    pd.testing.assert_frame_equal(scores, a[["r_score", "f_score", "m_score", "rfm_score"]])


# --- property test ------------------------------------------------------------------------

START = pd.Timestamp("2023-01-01")

rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),  # customer
        st.integers(0, 60 * 86_400 - 1),  # seconds since START
        st.floats(0.01, 1_000.0, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


def _frame(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    customers, seconds, amounts = zip(*rows, strict=True)
    return pd.DataFrame({
        "customer_id": [f"c{c}" for c in customers],
        "timestamp": START + pd.to_timedelta(np.array(seconds), unit="s"),
        "amount": np.array(amounts, dtype=np.float64),
    })


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, cutoff_days=st.integers(-2, 65), unit=st.sampled_from(["D", "W", "M"]),
       future=rows_strategy)
def test_summary_properties(rows: list[tuple[int, int, float]], cutoff_days: int, unit: str,
                            future: list[tuple[int, int, float]]) -> None:
    tx = _frame(rows)
    cutoff = START + pd.Timedelta(days=cutoff_days)
    out = summary(tx, cutoff, unit)
    f, r, t, m = (out[c].to_numpy() for c in schemas.BTYD_COLUMNS)
    assert (f == np.floor(f)).all() and (f >= 0).all()
    assert (r >= 0).all() and (r <= t).all()
    assert (r[f == 0] == 0).all()
    assert (m[f > 0] > 0).all() and (m[f == 0] == 0).all()
    expected = reference_summary(tx, cutoff, DAYS_PER_TIME_UNIT[unit])
    if expected.empty:
        assert out.empty
    else:
        pd.testing.assert_frame_equal(out, expected, check_index_type=False, rtol=1e-12)
    # rows after the cut-off day change nothing
    later = _frame(future)
    later["timestamp"] = cutoff.normalize() + pd.Timedelta(days=1) + (later["timestamp"] - START)
    pd.testing.assert_frame_equal(summary(pd.concat([later, tx], ignore_index=True), cutoff, unit), out)
