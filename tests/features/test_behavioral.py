"""Behavioural features: definitions against a per-customer reference, skips, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvkit import schemas
from clvkit.features.behavioral import (
    FEATURE_DEFINITIONS,
    FEATURE_SOURCES,
    INTEGER_FEATURES,
    behavioral_features,
    feature_names,
)
from tests.features._reference import reference_behavioral

WINDOWS = (7, 30, 90)


@pytest.fixture(scope="module")
def rich_features(rich: pd.DataFrame, rich_cutoff: pd.Timestamp) -> pd.DataFrame:
    out = behavioral_features(rich, rich_cutoff, trailing_windows_days=WINDOWS)
    assert out.skipped == ()
    return out.table


def test_every_feature_matches_reference(rich: pd.DataFrame, rich_cutoff: pd.Timestamp,
                                         rich_features: pd.DataFrame) -> None:
    subset = rich_features.index[::5]
    tx = rich.loc[rich["customer_id"].isin(subset)]
    ref = reference_behavioral(tx, rich_cutoff, WINDOWS)
    ours = rich_features.loc[subset]
    assert ref.index.equals(ours.index)
    assert sorted(ref.columns) == sorted(ours.columns)
    pd.testing.assert_frame_equal(ours, ref[ours.columns], check_dtype=False, rtol=1e-9, atol=1e-9)


def test_columns_dtypes_and_definitions(rich_features: pd.DataFrame) -> None:
    assert list(rich_features.columns) == feature_names(WINDOWS)
    assert rich_features.index.name == "customer_id"
    assert rich_features.index.is_monotonic_increasing
    for name, dtype in rich_features.dtypes.items():
        integer = name in INTEGER_FEATURES or name.startswith("purchase_days_")
        assert dtype == (np.int64 if integer else np.float64), name
    for name in rich_features.columns:
        template = name
        for w in WINDOWS:
            template = template.replace(f"_{w}d", "_{w}d")
        assert template in FEATURE_DEFINITIONS, name
        assert FEATURE_DEFINITIONS[template].endswith("]"), "definition must end with [unit]"


def test_value_ranges(rich_features: pd.DataFrame) -> None:
    f = rich_features
    assert (f["days_since_last_purchase"] <= f["tenure_days"]).all()
    assert (f["n_purchase_days"] >= 1).all() and (f["n_lines"] >= f["n_purchase_days"]).all()
    for w in WINDOWS:
        assert f[f"spend_trend_{w}d"].between(-1, 1).all()
    assert f["weekend_share"].between(0, 1).all()
    one_day = f["n_purchase_days"] == 1
    assert f.loc[one_day, ["gap_mean_days", "gap_std_days", "gap_cv", "overdue_ratio"]].isna().all().all()
    two_days = f["n_purchase_days"] == 2
    assert f.loc[two_days, "gap_mean_days"].notna().all()
    assert f.loc[two_days, ["gap_std_days", "gap_cv"]].isna().all().all()
    assert (f["returns_share"] > 0).any()


def test_hand_computed_customer() -> None:
    tx = pd.DataFrame({
        "customer_id": ["x"] * 6,
        "timestamp": pd.to_datetime(["2024-03-01 10:00:00", "2024-03-01 12:00:00", "2024-03-09 08:00:00",
                                     "2024-03-30 09:00:00", "2024-03-30 10:00:00", "2024-04-02 00:00:00"]),
        "amount": [20.0, -5.0, 30.0, 10.0, 40.0, 99.0],
    })
    # cut-off 2024-03-31 (Sunday); purchase days: Fri 03-01 (15), Sat 03-09 (30), Sat 03-30 (50)
    f = behavioral_features(tx, "2024-03-31", trailing_windows_days=(7, 30)).table.loc["x"]
    assert f["tenure_days"] == 30 and f["days_since_last_purchase"] == 1
    assert f["n_purchase_days"] == 3 and f["n_lines"] == 5
    assert f["total_spend"] == 95.0
    assert f["gap_mean_days"] == 14.5
    assert f["gap_std_days"] == pytest.approx(np.std([8, 21], ddof=1))
    assert f["overdue_ratio"] == pytest.approx(1 / 14.5)
    assert f["purchase_days_7d"] == 1 and f["spend_7d"] == 50.0
    assert f["spend_trend_7d"] == 1.0  # nothing in the 7 days before
    assert f["purchase_days_30d"] == 2 and f["spend_30d"] == 80.0  # (03-01, 03-31]
    assert f["spend_trend_30d"] == pytest.approx((80 - 15) / (80 + 15))
    assert f["avg_order_value"] == pytest.approx(95 / 3)
    assert f["max_order_value"] == 50.0 and f["first_order_value"] == 15.0
    assert f["returns_share"] == 5 / 100
    assert f["weekend_share"] == pytest.approx(2 / 3)


def test_orders_by_order_id() -> None:
    tx = pd.DataFrame({
        "customer_id": ["x"] * 5,
        "timestamp": pd.to_datetime(["2024-03-01 10:00:00", "2024-03-01 10:00:00", "2024-03-01 09:00:00",
                                     "2024-03-05 08:00:00", "2024-03-05 09:00:00"]),
        "amount": [20.0, 5.0, 7.0, 30.0, 1.0],
        "order_id": ["o2", "o2", "o9", "o3", None],
        "quantity": [1.0, 2.0, 1.0, 3.0, 1.0],
    })
    f = behavioral_features(tx, "2024-03-31").table.loc["x"]
    assert f["n_orders"] == 4  # o2, o9, o3, and the id-less row of 03-05
    assert f["first_order_value"] == 7.0  # o9 starts at 09:00, before o2
    assert f["max_order_value"] == 30.0
    assert f["avg_order_value"] == pytest.approx(63 / 4)
    assert f["avg_basket_quantity"] == pytest.approx(8 / 4)


def test_first_order_tie_broken_by_smallest_order_id() -> None:
    tx = pd.DataFrame({
        "customer_id": ["x", "x"], "timestamp": pd.to_datetime(["2024-03-01", "2024-03-01"]),
        "amount": [10.0, 3.0], "order_id": ["b", "a"],
    })
    assert behavioral_features(tx, "2024-03-31").table.loc["x", "first_order_value"] == 3.0


def test_absent_columns_are_skipped_not_faked(cdnow_sample: pd.DataFrame) -> None:
    out = behavioral_features(cdnow_sample, "1997-09-30")
    assert set(out.skipped) == {"n_orders", "n_distinct_products", "n_distinct_categories",
                                "n_distinct_channels"}
    assert not set(out.skipped) & set(out.table.columns)
    assert "avg_basket_quantity" in out.table.columns
    assert set(FEATURE_SOURCES) <= set(FEATURE_DEFINITIONS)


def test_returns_only_customer_has_nan_share() -> None:
    tx = pd.DataFrame({"customer_id": ["x", "y"], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01"]),
                       "amount": [-5.0, 0.0]})
    f = behavioral_features(tx, "2024-01-31").table
    assert np.isnan(f.loc["x", "returns_share"]) and f.loc["y", "returns_share"] == 0.0


def test_empty_cutoff_gives_empty_typed_table(rich: pd.DataFrame) -> None:
    out = behavioral_features(rich, "2000-01-01", trailing_windows_days=WINDOWS)
    assert out.table.empty and list(out.table.columns) == feature_names(WINDOWS)
    assert out.table["n_purchase_days"].dtype == np.int64


def test_input_not_modified_and_shuffle_invariant(rich: pd.DataFrame, rich_cutoff: pd.Timestamp,
                                                  rich_features: pd.DataFrame) -> None:
    before = rich.copy()
    shuffled = rich.sample(frac=1.0, random_state=99)
    again = behavioral_features(shuffled, rich_cutoff, trailing_windows_days=WINDOWS).table
    pd.testing.assert_frame_equal(rich, before)
    pd.testing.assert_frame_equal(again, rich_features, rtol=1e-12)


@pytest.mark.parametrize("windows", [(0, 30), (30, 30), (7.5,), "30", [True]])
def test_bad_windows(rich: pd.DataFrame, windows: object) -> None:
    with pytest.raises(ValueError, match="trailing_windows_days must be distinct positive integers"):
        behavioral_features(rich, "2020-06-01", trailing_windows_days=windows)  # type: ignore[arg-type]


def test_not_a_sequence_of_windows(rich: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="trailing_windows_days must be a sequence of day counts, got 30"):
        behavioral_features(rich, "2020-06-01", trailing_windows_days=30)  # type: ignore[arg-type]


def test_time_unit_checked(rich: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="time_unit must be one of"):
        behavioral_features(rich, "2020-06-01", time_unit="days")


def test_schema_constants_used() -> None:
    assert FEATURE_SOURCES["n_orders"] == schemas.ORDER_ID


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 40 * 86_400 - 1),
                  st.sampled_from([-7.5, 0.0, 0.01, 3.0, 12.25, 99.99])),
        min_size=1, max_size=30,
    ),
    cutoff_days=st.integers(0, 45),
)
def test_matches_reference_on_random_small_data(rows: list[tuple[int, int, float]], cutoff_days: int) -> None:
    customers, seconds, amounts = zip(*rows, strict=True)
    tx = pd.DataFrame({
        "customer_id": np.array(customers, dtype=np.int64),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.array(seconds), unit="s"),
        "amount": np.array(amounts),
        "quantity": np.arange(len(rows), dtype=np.float64),
    })
    cutoff = pd.Timestamp("2024-01-01") + pd.Timedelta(days=cutoff_days)
    ours = behavioral_features(tx, cutoff, trailing_windows_days=(1, 7)).table
    ref = reference_behavioral(tx, cutoff, (1, 7))
    if ref.empty:
        assert ours.empty
        return
    pd.testing.assert_frame_equal(ours, ref[ours.columns], check_dtype=False, check_index_type=False,
                                  rtol=1e-9, atol=1e-9)
