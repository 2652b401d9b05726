"""Churn and future-value labels: window boundaries, returns, resolutions, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvkit.features.labels import (
    CHURNED,
    PURCHASE_DAYS_WINDOW,
    SPEND_WINDOW,
    check_window_fits,
    churn_labels,
    future_value,
    future_values,
)
from tests.features._reference import reference_future_value

CUTOFF = "2020-01-10"


def _tx(rows: list[tuple[str, str, float]], unit: str = "us") -> pd.DataFrame:
    ids, stamps, amounts = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "timestamp": pd.to_datetime(list(stamps), format="ISO8601").as_unit(unit),
            "amount": np.array(amounts, dtype=float),
        }
    )


@pytest.fixture()
def tx() -> pd.DataFrame:
    return _tx(
        [
            ("a", "2020-01-01", 10.0),
            ("a", "2020-01-10 23:59:59", 5.0),  # on the cut-off day: history
            ("b", "2020-01-05", 3.0),
            ("b", "2020-04-09 12:00", 7.0),  # last day of a 90-day window: inside
            ("b", "2020-04-09 18:00", 1.0),  # same day: one purchase day
            ("c", "2020-01-08", -4.0),  # only a return: known (a transaction day, as in btyd)
            ("d", "2020-01-02", 8.0),
            ("d", "2020-04-10", 9.0),  # day 91: outside
            ("e", "2020-01-11", 2.0),  # first purchase after the cut-off: not known
            ("f", "2020-01-03", 4.0),
            ("f", "2020-01-11 00:00", 6.0),  # first instant of the window
            ("f", "2020-02-01", -6.0),  # a return inside the window: a second activity day
        ]
    )


def test_churn_labels_window_boundaries(tx: pd.DataFrame) -> None:
    labels = churn_labels(tx, CUTOFF, 90)
    assert labels.name == CHURNED
    assert labels.index.name == "customer_id"
    assert labels.to_dict() == {"a": 1, "b": 0, "c": 1, "d": 1, "f": 0}
    assert labels.dtype == "int64"


def test_future_value(tx: pd.DataFrame) -> None:
    out = future_value(tx, dt.date(2020, 1, 10), 90)
    assert list(out.columns) == [PURCHASE_DAYS_WINDOW, SPEND_WINDOW]
    assert out[PURCHASE_DAYS_WINDOW].to_dict() == {"a": 0, "b": 1, "c": 0, "d": 0, "f": 2}
    assert out[SPEND_WINDOW].to_dict() == {"a": 0.0, "b": 8.0, "c": 0.0, "d": 0.0, "f": 0.0}  # net of the return
    assert out[PURCHASE_DAYS_WINDOW].dtype == "int64" and out[SPEND_WINDOW].dtype == "float64"


def test_a_return_in_the_window_is_activity_as_in_the_btyd_summary() -> None:
    tx = _tx([("a", "2020-01-01", 10.0), ("a", "2020-01-20", -10.0)])
    assert churn_labels(tx, CUTOFF, 30).to_dict() == {"a": 0}
    assert future_value(tx, CUTOFF, 30)[SPEND_WINDOW].to_dict() == {"a": -10.0}


def test_shorter_window_changes_labels(tx: pd.DataFrame) -> None:
    assert churn_labels(tx, CUTOFF, 1).to_dict() == {"a": 1, "b": 1, "c": 1, "d": 1, "f": 0}
    assert churn_labels(tx, CUTOFF, 91).to_dict() == {"a": 1, "b": 0, "c": 1, "d": 0, "f": 0}


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_any_timestamp_resolution(tx: pd.DataFrame, unit: str) -> None:
    converted = tx.assign(timestamp=tx["timestamp"].dt.as_unit(unit))
    assert churn_labels(converted, CUTOFF, 90).to_dict() == {"a": 1, "b": 0, "c": 1, "d": 1, "f": 0}


def test_cutoff_types(tx: pd.DataFrame) -> None:
    expected = churn_labels(tx, CUTOFF, 90)
    # a time of day is dropped: the cut-off is the whole day (as in clvkit.features.btyd)
    for cutoff in (
        dt.date(2020, 1, 10), pd.Timestamp(CUTOFF), np.datetime64(CUTOFF), dt.datetime(2020, 1, 10),
        "2020-01-10 12:00",
    ):
        pd.testing.assert_series_equal(churn_labels(tx, cutoff, 90), expected)


def test_without_amount_column(tx: pd.DataFrame) -> None:
    no_amount = tx.drop(columns="amount")
    assert churn_labels(no_amount, CUTOFF, 90).to_dict() == {"a": 1, "b": 0, "c": 1, "d": 1, "f": 0}
    assert (future_value(no_amount, CUTOFF, 90)[SPEND_WINDOW] == 0.0).all()


def test_inputs_are_not_mutated(tx: pd.DataFrame) -> None:
    before = tx.copy()
    churn_labels(tx, CUTOFF, 90)
    future_value(tx, CUTOFF, 30)
    pd.testing.assert_frame_equal(tx, before)


def test_on_simulated_data_labels_agree_with_latent_truth(transactions, simulation) -> None:
    """Customers dead before the cut-off (latent dropout) never buy again: always label 1."""
    end = pd.Timestamp(simulation.params.start_date) + pd.Timedelta(days=simulation.params.observation_days)
    cutoff = (end - pd.Timedelta(days=90)).normalize()
    labels = churn_labels(transactions, cutoff, 90)
    truth = simulation.truth.reindex(labels.index)
    dead_days = truth["dropout_time_units"] * 7  # weeks after the first purchase
    dead_before = truth["first_purchase"] + pd.to_timedelta(dead_days.where(np.isfinite(dead_days)), unit="D") < cutoff
    assert (labels[dead_before.fillna(False).to_numpy()] == 1).all()
    assert 0 < labels.mean() < 1


def test_consistent_with_the_btyd_holdout_counts(transactions) -> None:
    """Churned exactly where the BTYD holdout has no purchase day, over the same customers."""
    from clvkit.features.btyd import calibration_holdout

    cutoff, end = pd.Timestamp("2021-03-01"), pd.Timestamp("2021-05-30")
    labels = churn_labels(transactions, cutoff, (end - cutoff).days)
    table = calibration_holdout(transactions, cutoff, end, "W").table
    pd.testing.assert_index_equal(labels.index, table.index, check_names=False)
    np.testing.assert_array_equal(labels.to_numpy(), (table["frequency_holdout"] == 0).to_numpy().astype(int))
    window = future_value(transactions, cutoff, (end - cutoff).days)
    np.testing.assert_allclose(window[SPEND_WINDOW].to_numpy(), table["spend_holdout"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("cutoff", "message"),
    [
        (pd.Timestamp("2020-01-10", tz="UTC"), "cutoff .* has a time zone; cut-offs are local dates"),
        ("not a date", r"cutoff: cannot read 'not a date' as a date"),
        (None, r"cutoff is missing \(NaT\); give a date such as '2024-12-31'"),
        (20200110, "cutoff must be a date .* got the number 20200110"),
    ],
)
def test_bad_cutoffs(tx: pd.DataFrame, cutoff, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        churn_labels(tx, cutoff, 90)


@pytest.mark.parametrize("window", [0, -5, 1.5, True])
def test_bad_window(tx: pd.DataFrame, window) -> None:
    with pytest.raises(ValueError, match=r"window_days must be a whole number of days >= 1.*churn\.window_days"):
        future_value(tx, CUTOFF, window)


def test_no_customer_known_at_the_cutoff(tx: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"no customer has a transaction on or before the cut-off 2019-12-01"):
        churn_labels(tx, "2019-12-01", 90)


def test_bad_transactions(tx: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"lack the canonical column\(s\) \['timestamp'\]"):
        churn_labels(tx.drop(columns="timestamp"), CUTOFF)
    with pytest.raises(ValueError, match=r"must be tz-naive datetime64, got datetime64\[us, UTC\]"):
        churn_labels(tx.assign(timestamp=tx["timestamp"].dt.tz_localize("UTC")), CUTOFF)
    with pytest.raises(ValueError, match="must be tz-naive datetime64, got (object|str)"):
        churn_labels(tx.assign(timestamp=tx["timestamp"].astype(str)), CUTOFF)
    with pytest.raises(ValueError, match=r"has 1 missing value\(s\)"):
        churn_labels(tx.assign(timestamp=tx["timestamp"].where(tx.index != 0)), CUTOFF)
    with pytest.raises(TypeError, match="transactions must be a pandas DataFrame"):
        churn_labels(tx.to_numpy(), CUTOFF)  # type: ignore[arg-type]


# --- check_window_fits ------------------------------------------------------------------


def test_window_fits() -> None:
    check_window_fits("1997-01-01", "1998-04-01", 90, "1998-06-30")
    check_window_fits("1997-01-01", "1998-04-01", 90, dt.date(1998, 6, 30))  # ends exactly on data end


def test_window_past_the_data_end() -> None:
    with pytest.raises(
        ValueError,
        match=r"the 90-day churn window after the cut-off 1998-05-01 ends 1998-07-30, after the data end "
        r"1998-06-30; set churn\.inner_cutoff on or before 1998-04-01 or churn\.window_days to at most 60",
    ):
        check_window_fits("1997-01-01", "1998-05-01", 90, "1998-06-30")


def test_cutoff_before_the_history() -> None:
    with pytest.raises(
        ValueError,
        match=r"churn\.inner_cutoff 1996-12-01 precedes the first transaction 1997-01-01.*between 1997-01-01 and 1998-04-01",
    ):
        check_window_fits("1997-01-01", "1996-12-01", 90, "1998-06-30")


def test_history_shorter_than_the_window() -> None:
    with pytest.raises(
        ValueError,
        match=r"the data span 1998-05-01 \.\. 1998-06-30 \(60 days\) is too short for a 90-day churn window.*churn\.window_days below 60",
    ):
        check_window_fits("1998-05-01", "1998-05-15", 90, "1998-06-30")


# --- the vectorised future_value equals the former pandas one, bit for bit ---------------


def _id_variants(rich: pd.DataFrame) -> dict[str, pd.DataFrame]:
    ids = rich["customer_id"].astype(str)
    shuffled = sorted(ids.unique(), reverse=True)  # categories not in sorted order
    numbers = ids.str.extract(r"(\d+)", expand=False)
    return {
        "str": rich.assign(customer_id=ids),
        "categorical": rich.assign(customer_id=ids.astype("category")),
        "unsorted_categories": rich.assign(customer_id=pd.Categorical(ids, categories=shuffled)),
        "sorted_rows": rich.assign(customer_id=ids).sort_values(["customer_id", "timestamp"]),  # monotonic groups
        "sorted_rows_unsorted_categories": rich.assign(customer_id=pd.Categorical(ids, categories=shuffled))
        .sort_values(["timestamp"]).sort_values("customer_id", kind="stable"),
        "int": rich.assign(customer_id=pd.factorize(ids)[0].astype(np.int64) * 7 + 3)
        if numbers.isna().any() else rich.assign(customer_id=numbers.astype(np.int64)),
    }


@pytest.mark.parametrize("variant", ["str", "categorical", "unsorted_categories", "sorted_rows",
                                     "sorted_rows_unsorted_categories", "int"])
def test_future_value_equals_the_former_pandas_implementation(rich: pd.DataFrame, rich_cutoff, variant) -> None:
    """Shuffled rows, same-day rows, returns and zero amounts: same index, counts and sums (exact)."""
    tx = _id_variants(rich)[variant]
    for window in (1, 30, 90, 273):
        expected = reference_future_value(tx, rich_cutoff, window)
        got = future_value(tx, rich_cutoff, window)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert got[PURCHASE_DAYS_WINDOW].sum() > 0 or window == 1


def test_future_values_in_one_pass_equal_one_window_at_a_time(rich: pd.DataFrame, rich_cutoff) -> None:
    windows = (273, 90, 30)
    together = future_values(rich, rich_cutoff, windows)
    assert len(together) == len(windows)
    for window, got in zip(windows, together, strict=True):
        pd.testing.assert_frame_equal(got, future_value(rich, rich_cutoff, window), check_exact=True)
    no_amount = future_values(rich.drop(columns="amount"), rich_cutoff, windows)
    assert all((w[SPEND_WINDOW] == 0.0).all() for w in no_amount)
    pd.testing.assert_series_equal(no_amount[1][PURCHASE_DAYS_WINDOW], together[1][PURCHASE_DAYS_WINDOW])
    with pytest.raises(ValueError, match="at least one window"):
        future_values(rich, rich_cutoff, ())
