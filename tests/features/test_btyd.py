"""BTYD summary and calibration/holdout split: parity with lifetimes and the definitions."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.features.btyd import CalibrationHoldout, calibration_holdout, summary
from tests.features._reference import reference_summary
from tests.features.conftest import CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END

UNITS = ("D", "W", "M")


def assert_matches_lifetimes(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Exact frequency/recency/T, monetary_value to 1e-12 relative."""
    assert list(ours.columns) == list(schemas.BTYD_COLUMNS)
    assert (ours.dtypes == np.float64).all()
    assert ours.index.name == "customer_id"
    assert ours.index.is_monotonic_increasing
    assert ours.index.equals(ref.index)
    for col in (schemas.FREQUENCY, schemas.RECENCY, schemas.T):
        np.testing.assert_array_equal(ours[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(ours[schemas.MONETARY_VALUE], ref[schemas.MONETARY_VALUE],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("unit", UNITS)
def test_parity_cdnow_sample(cdnow_sample: pd.DataFrame, lifetimes_summary: Callable[..., pd.DataFrame],
                             unit: str) -> None:
    ours = summary(cdnow_sample, CDNOW_CALIBRATION_END, unit)
    assert_matches_lifetimes(ours, lifetimes_summary(cdnow_sample, CDNOW_CALIBRATION_END, unit))
    assert len(ours) == 2_357


@pytest.mark.parametrize(("unit", "cutoff"), [("D", CDNOW_OBSERVATION_END), ("W", CDNOW_CALIBRATION_END),
                                              ("M", "1997-02-15")])
def test_parity_cdnow_full(cdnow: pd.DataFrame, lifetimes_summary: Callable[..., pd.DataFrame],
                           unit: str, cutoff: str) -> None:
    assert_matches_lifetimes(summary(cdnow, cutoff, unit), lifetimes_summary(cdnow, cutoff, unit))


@pytest.mark.parametrize("unit", UNITS)
def test_parity_simulated_unsorted_with_returns(rich: pd.DataFrame, rich_cutoff: pd.Timestamp,
                                               lifetimes_summary: Callable[..., pd.DataFrame],
                                               unit: str) -> None:
    """Shuffled rows, several rows per day, zero and negative amounts, one-purchase customers."""
    tx = rich[["customer_id", "timestamp", "amount"]]
    assert not tx["timestamp"].is_monotonic_increasing
    ours = summary(rich, rich_cutoff, unit)
    assert (ours[schemas.FREQUENCY] == 0).sum() > 100
    assert_matches_lifetimes(ours, lifetimes_summary(tx, str(rich_cutoff.date()), unit))


def test_parity_integer_ids(cdnow_sample: pd.DataFrame,
                            lifetimes_summary: Callable[..., pd.DataFrame]) -> None:
    tx = cdnow_sample.assign(customer_id=cdnow_sample["customer_id"].astype("int64"))
    ours = summary(tx, CDNOW_CALIBRATION_END, "W")
    assert ours.index.dtype == np.int64
    assert_matches_lifetimes(ours, lifetimes_summary(tx, CDNOW_CALIBRATION_END, "W"))


@pytest.mark.parametrize("scale", [-1, 10**12])
def test_sparse_and_negative_integer_ids(cdnow_sample: pd.DataFrame, scale: int) -> None:
    """Ids far apart (hash path) or negative (lookup path) give the same table as strings."""
    ids = cdnow_sample["customer_id"].astype("int64")
    tx = cdnow_sample.assign(customer_id=ids * scale)
    ours = summary(tx, CDNOW_CALIBRATION_END, "D")
    assert ours.index.is_monotonic_increasing
    expected = summary(cdnow_sample.assign(customer_id=ids), CDNOW_CALIBRATION_END, "D")
    expected.index = expected.index * scale
    pd.testing.assert_frame_equal(ours, expected.sort_index())


def test_matches_reference_definitions(rich: pd.DataFrame, rich_cutoff: pd.Timestamp) -> None:
    ours = summary(rich, rich_cutoff, "W")
    ref = reference_summary(rich, rich_cutoff, DAYS_PER_TIME_UNIT["W"])
    pd.testing.assert_frame_equal(ours, ref, check_index_type=False, rtol=1e-12)


@pytest.mark.parametrize("resolution", ["s", "ms", "us", "ns"])
def test_any_timestamp_resolution(cdnow_sample: pd.DataFrame, resolution: str) -> None:
    tx = cdnow_sample.assign(timestamp=cdnow_sample["timestamp"].astype(f"datetime64[{resolution}]"))
    pd.testing.assert_frame_equal(summary(tx, CDNOW_CALIBRATION_END), summary(cdnow_sample, CDNOW_CALIBRATION_END))


def test_cutoff_day_is_whole_and_time_of_day_ignored() -> None:
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b"],
        "timestamp": pd.to_datetime(["2024-01-01 09:00:00", "2024-01-01 18:00:00", "2024-01-05 23:59:59",
                                     "2024-01-06 00:00:00"]),
        "amount": [10.0, 5.0, 7.0, 1.0],
    })
    out = summary(tx, pd.Timestamp("2024-01-05 00:00"), "D")
    assert list(out.index) == ["a"]  # b's first purchase is after the cut-off
    assert out.loc["a"].to_dict() == {"frequency": 1.0, "recency": 4.0, "T": 4.0, "monetary_value": 7.0}
    assert summary(tx, "2024-01-05 13:30").equals(out)


def test_recency_never_exceeds_t_in_months(cdnow: pd.DataFrame) -> None:
    out = summary(cdnow, CDNOW_OBSERVATION_END, "M")
    assert (out[schemas.RECENCY] <= out[schemas.T]).all()


def test_input_not_modified(rich: pd.DataFrame, rich_cutoff: pd.Timestamp) -> None:
    before = rich.copy()
    summary(rich, rich_cutoff, "W")
    calibration_holdout(rich, rich_cutoff, "2021-06-30", "W")
    pd.testing.assert_frame_equal(rich, before)


def test_empty_before_first_purchase(cdnow_sample: pd.DataFrame) -> None:
    out = summary(cdnow_sample, "1990-01-01")
    assert out.empty and list(out.columns) == list(schemas.BTYD_COLUMNS)
    assert (out.dtypes == np.float64).all()
    assert summary(cdnow_sample.iloc[:0], "1997-01-01").empty


# --- calibration / holdout ---------------------------------------------------------------


@pytest.fixture(scope="module")
def split_w(rich: pd.DataFrame) -> CalibrationHoldout:
    return calibration_holdout(rich, "2020-09-15", "2021-03-31", "W")


def test_calibration_columns_equal_summary(rich: pd.DataFrame, split_w: CalibrationHoldout) -> None:
    table = split_w.table
    assert list(table.columns) == [
        schemas.FREQUENCY_CAL, schemas.RECENCY_CAL, schemas.T_CAL, schemas.MONETARY_VALUE_CAL,
        schemas.FREQUENCY_HOLDOUT, schemas.SPEND_HOLDOUT, schemas.MONETARY_VALUE_HOLDOUT,
        schemas.DURATION_HOLDOUT,
    ]
    cal = summary(rich, "2020-09-15", "W")
    cal.columns = table.columns[:4]
    pd.testing.assert_frame_equal(table.iloc[:, :4], cal)


def test_holdout_columns_match_reference(rich: pd.DataFrame, split_w: CalibrationHoldout) -> None:
    day = rich["timestamp"].dt.floor("D")
    hold = rich.loc[(day > "2020-09-15") & (day <= "2021-03-31")].assign(day=day)
    per_day = hold.groupby(["customer_id", "day"])["amount"].sum().groupby(level=0)
    expected_days = per_day.size().reindex(split_w.table.index, fill_value=0)
    expected_spend = per_day.sum().reindex(split_w.table.index, fill_value=0.0)
    table = split_w.table
    np.testing.assert_array_equal(table[schemas.FREQUENCY_HOLDOUT], expected_days.astype(float))
    np.testing.assert_allclose(table[schemas.SPEND_HOLDOUT], expected_spend, rtol=1e-12, atol=1e-9)
    with np.errstate(invalid="ignore"):
        per_purchase_day = np.where(expected_days > 0, expected_spend / expected_days, 0.0)
    np.testing.assert_allclose(table[schemas.MONETARY_VALUE_HOLDOUT], per_purchase_day, rtol=1e-12, atol=1e-9)
    assert (table[schemas.DURATION_HOLDOUT] == 197 / 7).all()
    assert split_w.duration_holdout == 197 / 7


def test_holdout_value_is_per_purchase_day_not_per_line() -> None:
    """lifetimes #371/#431: two lines on one holdout day are one purchase worth their sum."""
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01 10:00", "2024-02-01 11:00", "2024-02-02"], format="ISO8601"),
        "amount": [5.0, 30.0, 10.0, 3.0],
    })
    split = calibration_holdout(tx, "2024-01-31", "2024-02-29")
    row = split.table.loc["a"]
    assert row[schemas.FREQUENCY_HOLDOUT] == 1.0
    assert row[schemas.SPEND_HOLDOUT] == 40.0
    assert row[schemas.MONETARY_VALUE_HOLDOUT] == 40.0
    assert list(split.table.index) == ["a"]
    assert split.n_customers_first_seen_in_holdout == 1
    assert split.duration_holdout == 29.0


def test_customers_first_seen_in_holdout_counted(rich: pd.DataFrame, split_w: CalibrationHoldout) -> None:
    first = rich.groupby("customer_id")["timestamp"].min().dt.floor("D")
    in_holdout = ((first > "2020-09-15") & (first <= "2021-03-31")).sum()
    assert split_w.n_customers_first_seen_in_holdout == in_holdout
    assert len(split_w.table) == (first <= "2020-09-15").sum()


def test_matches_lifetimes_calibration_frequency(cdnow_sample: pd.DataFrame,
                                                 lifetimes_summary: Callable[..., pd.DataFrame]) -> None:
    """frequency_holdout = (frequency over all) - (frequency in calibration), per lifetimes' summary."""
    split = calibration_holdout(cdnow_sample, CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END, "W")
    full = lifetimes_summary(cdnow_sample, CDNOW_OBSERVATION_END, "W").loc[split.table.index]
    expected = full[schemas.FREQUENCY] - split.table[schemas.FREQUENCY_CAL]
    np.testing.assert_array_equal(split.table[schemas.FREQUENCY_HOLDOUT], expected)
    assert split.duration_holdout == 273 / 7


@pytest.mark.parametrize(("cal", "obs"), [("2024-02-01", "2024-02-01"), ("2024-03-01", "2024-02-01")])
def test_calibration_must_precede_observation(cal: str, obs: str) -> None:
    tx = pd.DataFrame({"customer_id": ["a"], "timestamp": pd.to_datetime(["2024-01-01"]), "amount": [1.0]})
    with pytest.raises(ValueError, match=r"calibration_end \(2024-0\d-01\) must be before observation_end"):
        calibration_holdout(tx, cal, obs)


# --- input errors --------------------------------------------------------------------------


def _tiny() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                         "amount": [1.0, 2.0]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="amount"), r"lack required column\(s\) \['amount'\]"),
        (lambda t: t.assign(timestamp=t["timestamp"].dt.tz_localize("UTC")), "tz-aware"),
        (lambda t: t.assign(timestamp=["2024-01-01", "2024-01-02"]), "'timestamp' must be datetime64"),
        (lambda t: t.assign(amount=["1", "2"]), "'amount' must be numeric"),
        (lambda t: t.assign(amount=[1.0, np.nan]), r"1 transaction row\(s\) have a missing or infinite amount"),
        (lambda t: t.assign(timestamp=pd.to_datetime(["2024-01-01", None])), r"missing timestamp \(NaT\)"),
        (lambda t: t.assign(customer_id=["a", None]), "missing customer_id"),
    ],
)
def test_bad_transactions_raise_clear_errors(change: Callable[[pd.DataFrame], pd.DataFrame], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        summary(change(_tiny()), "2024-01-31")


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="time_unit must be one of 'D', 'W', 'M', got 'Y'"):
        summary(_tiny(), "2024-01-31", "Y")
    with pytest.raises(ValueError, match="cutoff: cannot read 'soon' as a date"):
        summary(_tiny(), "soon")
    with pytest.raises(ValueError, match=r"cutoff is missing \(NaT\)"):
        summary(_tiny(), pd.NaT)
    with pytest.raises(ValueError, match="cutoff must be a date .* got the number 20240131"):
        summary(_tiny(), 20240131)
    with pytest.raises(ValueError, match="has a time zone"):
        summary(_tiny(), pd.Timestamp("2024-01-31", tz="UTC"))
    with pytest.raises(ValueError, match="must be a pandas DataFrame, got list"):
        summary([1, 2], "2024-01-31")  # type: ignore[arg-type]


def test_mixed_id_types_are_ordered() -> None:
    tx = pd.DataFrame({"customer_id": pd.Series([2, "a", 1, "a"], dtype=object),
                       "timestamp": pd.to_datetime(["2024-01-01"] * 4), "amount": [1.0, 2.0, 3.0, 4.0]})
    out = summary(tx, "2024-01-02")
    assert list(out.index) == [1, 2, "a"]
    assert out.loc["a", "monetary_value"] == 0.0 and out.loc["a", "frequency"] == 0.0


def test_input_errors_are_user_input_errors() -> None:
    from clvkit.exceptions import UserInputError

    with pytest.raises(UserInputError, match="time_unit must be one of"):
        summary(_tiny(), "2024-01-31", "Y")


@pytest.mark.parametrize("unit", ["W", "M"])
def test_parity_lifetimes_calibration_and_holdout(cdnow: pd.DataFrame, unit: str) -> None:
    """Same as lifetimes' calibration_and_holdout_data (which on pandas 3 runs only with a
    monetary column), except monetary_value_holdout where a holdout day has several lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import calibration_and_holdout_data

        ref = calibration_and_holdout_data(
            cdnow, "customer_id", "timestamp", CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END,
            freq="D", freq_multiplier=DAYS_PER_TIME_UNIT[unit], monetary_value_col="amount",
        ).sort_index()
    ours = calibration_holdout(cdnow, CDNOW_CALIBRATION_END, CDNOW_OBSERVATION_END, unit).table
    assert ours.index.equals(ref.index)
    for col in (schemas.FREQUENCY_CAL, schemas.RECENCY_CAL, schemas.T_CAL, schemas.FREQUENCY_HOLDOUT,
                schemas.DURATION_HOLDOUT):
        np.testing.assert_array_equal(ours[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(ours[schemas.MONETARY_VALUE_CAL], ref[schemas.MONETARY_VALUE_CAL], rtol=1e-12)
    day = cdnow["timestamp"].dt.floor("D")
    hold = cdnow.loc[(day > CDNOW_CALIBRATION_END) & (day <= CDNOW_OBSERVATION_END)]
    lines = hold.groupby("customer_id").size().reindex(ours.index, fill_value=0)
    one_line_per_day = lines == ours[schemas.FREQUENCY_HOLDOUT]
    assert (~one_line_per_day).sum() > 300
    np.testing.assert_allclose(ours.loc[one_line_per_day, schemas.MONETARY_VALUE_HOLDOUT],
                               ref.loc[one_line_per_day, schemas.MONETARY_VALUE_HOLDOUT], rtol=1e-12)
    several = ~one_line_per_day
    per_line = hold.groupby("customer_id")["amount"].mean().reindex(ours.index[several])
    np.testing.assert_allclose(ref.loc[several, schemas.MONETARY_VALUE_HOLDOUT], per_line, rtol=1e-12)


def test_intraday_timestamps_match_lifetimes_given_end_of_day(rich: pd.DataFrame) -> None:
    """lifetimes' split compares its end dates with raw timestamps (midnight): given the last
    microsecond of each day it agrees with clvkit's whole-day cut-offs."""
    def end_of(day: str) -> pd.Timestamp:
        return pd.Timestamp(day) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import calibration_and_holdout_data

        ref = calibration_and_holdout_data(
            rich, "customer_id", "timestamp", end_of("2020-09-15"), end_of("2021-03-31"),
            freq="D", freq_multiplier=7, monetary_value_col="amount",
        ).sort_index()
    ours = calibration_holdout(rich, "2020-09-15", "2021-03-31", "W").table
    assert ours.index.equals(ref.index)
    for col in (schemas.FREQUENCY_CAL, schemas.RECENCY_CAL, schemas.T_CAL, schemas.FREQUENCY_HOLDOUT,
                schemas.DURATION_HOLDOUT):
        np.testing.assert_array_equal(ours[col].to_numpy(), ref[col].to_numpy(), err_msg=col)


def test_argsort_fallback_when_key_does_not_fit(rich: pd.DataFrame, rich_cutoff: pd.Timestamp,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Too many customers x days x rows for one packed int64: a stable argsort, same result."""
    from clvkit.features import _periods
    from clvkit.features.behavioral import behavioral_features

    expected = summary(rich, rich_cutoff, "W"), behavioral_features(rich, rich_cutoff).table
    monkeypatch.setattr(_periods, "_KEY_BITS", 8)
    pd.testing.assert_frame_equal(summary(rich, rich_cutoff, "W"), expected[0])
    pd.testing.assert_frame_equal(behavioral_features(rich, rich_cutoff).table, expected[1])


def test_time_unit_must_be_a_name() -> None:
    with pytest.raises(ValueError, match=r"time_unit must be one of 'D', 'W', 'M', got \['W'\]"):
        summary(_tiny(), "2024-01-31", ["W"])  # type: ignore[arg-type]
