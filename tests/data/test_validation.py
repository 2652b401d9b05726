from __future__ import annotations

import pandas as pd
import pytest

from clvkit.config.models import ColumnMapping, ValidationPolicies
from clvkit.data.validation import ROW_CLASSES, parse_timestamps, validate_transactions
from clvkit.exceptions import DataValidationError

MAPPING = ColumnMapping(customer_id="cust", timestamp="when", amount="amt")
ALL_QUARANTINE = ValidationPolicies(
    missing_customer_id="quarantine", invalid_timestamp="quarantine", invalid_amount="quarantine",
    duplicate_rows="quarantine", after_observation_end="quarantine", zero_amount="quarantine",
    negative_amount="quarantine",
)


def every_kind_of_bad_row() -> pd.DataFrame:
    """Two good rows and one or more of each bad class (row numbers are 1-based)."""
    return pd.DataFrame(
        {
            "cust": ["a", "b", "", None, "c", "d", "d", "e", "f", "a", "g", "h", "h"],
            "when": ["2024-01-01", "2024-01-02 10:00", "2024-01-03", "2024-01-03", "not a date", "2024-01-05",
                     "2024-01-05", "2024-03-01", "2024-01-06", "2024-01-01", "2024-01-07", "2024-01-08",
                     "2024-01-08"],
            "amt": ["10", "5", "3", "3", "4", "x", "inf", "7", "0", "10", "-2", "9", "-4"],
        }
    )


def test_all_problems_reported_at_once_with_rows_and_fix() -> None:
    with pytest.raises(DataValidationError) as info:
        validate_transactions(every_kind_of_bad_row(), MAPPING, ValidationPolicies(), observation_end="2024-01-31")
    text = str(info.value)
    assert text.startswith("3 problem(s) in the transactions:")
    assert "[missing_customer_id] column 'cust': 2 row(s) have no customer id (rows 3, 4;" in text
    assert "[invalid_timestamp] column 'when': 1 row(s) have a missing or unparseable timestamp (rows 5;" in text
    assert "[invalid_amount] column 'amt': 2 row(s) have a non-numeric, NaN, infinite or implausible amount (|amount| > 1e+12, data.validation.max_abs_amount) (rows 6, 7;" in text
    assert "set data.validation.invalid_amount: quarantine" in text
    assert "not a date" in text  # the offending row is shown


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("duplicate_rows", r"\[duplicate_rows\] column 'cust, when, amt': 1 row\(s\) are exact duplicates of an earlier row \(rows 10;"),
        ("after_observation_end", r"\[after_observation_end\] column 'when': 1 row\(s\) are dated after data\.observation_end \(2024-01-31\) \(rows 8;"),
        ("zero_amount", r"\[zero_amount\] column 'amt': 1 row\(s\) have a zero amount \(rows 9;"),
        ("negative_amount", r"\[negative_amount\] column 'amt': 2 row\(s\) have a negative amount \(returns\) \(rows 11, 13;"),
    ],
)
def test_each_class_error_message(policy: str, message: str) -> None:
    policies = ALL_QUARANTINE.model_copy(update={policy: "error"})
    with pytest.raises(DataValidationError, match=message):
        validate_transactions(every_kind_of_bad_row(), MAPPING, policies, observation_end="2024-01-31")


def test_examples_capped_at_five_rows_with_count() -> None:
    raw = pd.DataFrame({"cust": ["a"] * 8, "when": ["2024-01-01"] * 8, "amt": ["x"] * 8})
    with pytest.raises(DataValidationError, match=r"8 row\(s\) have a non-numeric, NaN, infinite or implausible amount \(.*\) \(rows 1, 2, 3, 4, 5, \.\.\.;"):
        validate_transactions(raw, MAPPING, ValidationPolicies())


def test_reconciliation_with_every_kind_of_bad_row() -> None:
    result = validate_transactions(every_kind_of_bad_row(), MAPPING, ALL_QUARANTINE, observation_end="2024-01-31")
    report = result.report
    assert report.rows_read == 13
    assert report.reconciles
    assert report.rows_used == len(result.transactions) == 3  # rows 1, 2 and 12
    assert report.quarantined == {
        "missing_customer_id": 2, "invalid_timestamp": 1, "invalid_amount": 2, "duplicate_rows": 1,
        "after_observation_end": 1, "zero_amount": 1, "negative_amount": 2,
    }
    assert len(result.quarantine) == report.rows_quarantined == 10
    assert set(result.quarantine["reason"]) == set(ROW_CLASSES) - {"after_as_of"}
    assert result.quarantine["source_row"].tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13]
    assert report.to_dict()["reconciles"] is True


def test_returns_net_against_same_day_spend() -> None:
    policies = ALL_QUARANTINE.model_copy(update={"negative_amount": "net"})
    result = validate_transactions(every_kind_of_bad_row(), MAPPING, policies, observation_end="2024-01-31")
    # row 13 (h, -4) nets against row 12 (h, 9) the same day; row 11 (g, -2) has no same-day spend
    assert result.report.kept_flagged == {"returns_netted": 1}
    assert result.report.quarantined["unmatched_return"] == 1
    day = result.transactions[result.transactions["customer_id"] == "h"]
    assert day["amount"].sum() == 5.0
    assert result.report.reconciles


def test_return_larger_than_same_day_spend_is_quarantined() -> None:
    raw = pd.DataFrame({"cust": ["a", "a"], "when": ["2024-01-01 09:00", "2024-01-01 17:00"], "amt": [5, -8]})
    result = validate_transactions(raw, MAPPING, ValidationPolicies())
    assert result.report.quarantined == {"unmatched_return": 1}
    assert result.transactions["amount"].tolist() == [5.0]


def test_keep_policies_count_rows_but_keep_them() -> None:
    raw = pd.DataFrame({"cust": ["a", "a", "b"], "when": ["2024-01-01"] * 3, "amt": [1, 1, 0]})
    policies = ValidationPolicies(duplicate_rows="keep", zero_amount="keep")
    result = validate_transactions(raw, MAPPING, policies)
    assert result.report.rows_used == 3
    assert result.report.kept_flagged == {"duplicate_rows": 1, "zero_amount": 1}


def test_missing_columns_list_what_exists_and_suggest() -> None:
    raw = pd.DataFrame({"customer": ["a"], "when": ["2024-01-01"], "amount": [1.0]})
    mapping = ColumnMapping(customer_id="cust", timestamp="when", amount="amt")
    with pytest.raises(DataValidationError) as info:
        validate_transactions(raw, mapping, ValidationPolicies())
    text = str(info.value)
    assert "data.columns.customer_id -> 'cust' is not in the file" in text
    assert "data.columns.amount -> 'amt' is not in the file" in text
    assert "The file has columns: 'customer', 'when', 'amount'." in text
    assert "Fix: set data.columns.<name>" in text


def test_quantity_times_unit_price() -> None:
    raw = pd.DataFrame({"cust": ["a"], "when": ["2024-01-01"], "q": [3], "p": ["2.5"]})
    mapping = ColumnMapping(customer_id="cust", timestamp="when", amount=None, quantity="q", unit_price="p")
    result = validate_transactions(raw, mapping, ValidationPolicies())
    assert result.transactions["amount"].tolist() == [7.5]
    assert result.transactions["quantity"].tolist() == [3.0]


def test_offsets_converted_to_configured_zone_before_day_boundary() -> None:
    values = pd.Series(["2024-01-01T23:30:00-05:00", "2024-01-01 23:30", "2024-01-02T01:00:00Z"])
    parsed = parse_timestamps(values, "Europe/Paris")
    assert parsed.tolist() == [
        pd.Timestamp("2024-01-02 05:30"), pd.Timestamp("2024-01-01 23:30"), pd.Timestamp("2024-01-02 02:00"),
    ]


def test_aware_datetime_column_is_converted() -> None:
    values = pd.Series(pd.to_datetime(["2024-06-30 23:00"]).tz_localize("UTC"))
    assert parse_timestamps(values, "Asia/Tokyo").tolist() == [pd.Timestamp("2024-07-01 08:00")]


def test_caller_frame_not_mutated() -> None:
    raw = every_kind_of_bad_row()
    before = raw.copy()
    validate_transactions(raw, MAPPING, ALL_QUARANTINE, observation_end="2024-01-31")
    pd.testing.assert_frame_equal(raw, before)


def test_ids_are_text_and_keep_leading_zeros() -> None:
    raw = pd.DataFrame({"cust": ["007", " 008 "], "when": ["2024-01-01", "2024-01-02"], "amt": [1, 2]})
    result = validate_transactions(raw, MAPPING, ValidationPolicies())
    assert result.transactions["customer_id"].tolist() == ["007", "008"]


def test_implausible_and_non_finite_amounts_are_invalid_with_rows_named() -> None:
    """Issue 11: amounts of 1e300 scored a CLV of 9.4e299; now they are invalid_amount rows."""
    raw = pd.DataFrame({"cust": ["a", "b", "c", "d"], "when": ["2024-01-01"] * 4,
                        "amt": ["10", "1e300", "-2e12", "inf"]})
    with pytest.raises(DataValidationError) as info:
        validate_transactions(raw, MAPPING, ValidationPolicies())
    text = str(info.value)
    assert ("[invalid_amount] column 'amt': 3 row(s) have a non-numeric, NaN, infinite or implausible amount "
            "(|amount| > 1e+12, data.validation.max_abs_amount) (rows 2, 3, 4;") in text
    assert "1e300" in text
    tight = ValidationPolicies(invalid_amount="quarantine", max_abs_amount=5)
    result = validate_transactions(raw, MAPPING, tight)
    assert result.report.quarantined == {"invalid_amount": 4}
    assert result.quarantine["source_row"].tolist() == [1, 2, 3, 4]


def test_count_only_log_has_no_amount_column() -> None:
    """Issue 8: a log with customer and date only; the amount classes do not apply."""
    raw = pd.DataFrame({"cust": ["a", "a", "b"], "when": ["2024-01-01", "2024-01-05", "2024-01-02"]})
    mapping = ColumnMapping(customer_id="cust", timestamp="when", amount=None)
    result = validate_transactions(raw, mapping, ValidationPolicies())
    assert list(result.transactions.columns) == ["customer_id", "timestamp"]
    assert result.report.rows_used == 3 and result.report.reconciles


def test_quantity_and_price_without_amount_key() -> None:
    raw = pd.DataFrame({"cust": ["a"], "when": ["2024-01-01"], "q": [2], "p": [1.25]})
    mapping = ColumnMapping.model_validate({"customer_id": "cust", "timestamp": "when", "quantity": "q",
                                            "unit_price": "p"})
    assert validate_transactions(raw, mapping, ValidationPolicies()).transactions["amount"].tolist() == [2.5]


def test_missing_amount_column_suggests_count_only() -> None:
    raw = pd.DataFrame({"cust": ["a"], "when": ["2024-01-01"]})
    with pytest.raises(DataValidationError, match=r"set data\.columns\.amount: null"):
        validate_transactions(raw, MAPPING, ValidationPolicies())


def test_rows_after_as_of_are_their_own_class() -> None:
    raw = pd.DataFrame({"cust": ["a", "b", "c"], "when": ["2024-01-01", "2024-01-31 23:59", "2031-05-05"],
                        "amt": [1, 2, 3]})
    result = validate_transactions(raw, MAPPING, ValidationPolicies(), as_of="2024-01-31")
    assert result.report.quarantined == {"after_as_of": 1}
    assert result.quarantine["source_row"].tolist() == [3]
    with pytest.raises(DataValidationError, match=r"\[after_as_of\] .* are dated after the scoring date as_of \(2024-01-31\)"):
        validate_transactions(raw, MAPPING, ValidationPolicies(after_as_of="error"), as_of="2024-01-31")
