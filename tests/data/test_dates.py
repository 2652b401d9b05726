"""Strict date parsing (issue 11, item 2): one format per column or an exit-2 error naming the formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.config.models import ColumnMapping, ValidationPolicies
from clvkit.data.dates import classify_dates, parse_timestamps
from clvkit.data.validation import validate_transactions
from clvkit.exceptions import DataValidationError

MAPPING = ColumnMapping(customer_id="cust", timestamp="when", amount="amt")


def _parse(values: list[str], **kwargs: object) -> list[pd.Timestamp]:
    return parse_timestamps(pd.Series(values, name="when"), "UTC", **kwargs).tolist()  # type: ignore[arg-type]


def test_year_first_variants_are_one_family() -> None:
    assert _parse(["1997-01-05", "1997-03-25 10:00", "19970401", "1997/04/02"]) == [
        pd.Timestamp("1997-01-05"), pd.Timestamp("1997-03-25 10:00"), pd.Timestamp("1997-04-01"),
        pd.Timestamp("1997-04-02"),
    ]


def test_order_decided_by_values_above_twelve() -> None:
    assert _parse(["03/25/1997", "04/01/1997 10:00"]) == [pd.Timestamp("1997-03-25"), pd.Timestamp("1997-04-01 10:00")]
    assert _parse(["25/03/1997", "01/04/1997"]) == [pd.Timestamp("1997-03-25"), pd.Timestamp("1997-04-01")]
    assert _parse(["25-03-1997", "01-04-1997"]) == [pd.Timestamp("1997-03-25"), pd.Timestamp("1997-04-01")]
    assert _parse(["3/4/97", "12/25/97"]) == [pd.Timestamp("1997-03-04"), pd.Timestamp("1997-12-25")]


def test_mixed_iso_mdy_dmy_is_refused_with_formats_rows_and_fix() -> None:
    """The issue's file: ISO, mm/dd/yyyy and dd/mm/yyyy in one column were silently misparsed."""
    values = ["1997-01-05"] * 6 + ["03/25/1997", "04/13/1997", "25/03/1997"]
    with pytest.raises(DataValidationError) as info:
        _parse(values)
    text = str(info.value)
    assert text.startswith("[mixed_date_formats] column 'when': the dates are written in more than one format")
    assert "year-month-day (ISO 8601, e.g. 1997-03-25): 6 row(s), e.g. rows 1 ('1997-01-05')" in text
    assert "month/day/year (e.g. 03/25/1997): 2 row(s), e.g. rows 7 ('03/25/1997'), 8 ('04/13/1997')" in text
    assert "day/month/year (e.g. 25/03/1997): 1 row(s), e.g. rows 9 ('25/03/1997')" in text
    assert "set data.date_format" in text and "data.dayfirst: true" in text


def test_minority_format_outside_the_sample_is_caught_by_the_full_parse() -> None:
    """Detection runs on a sample; rows of another format that the sample missed fail the full parse."""
    values = ["03/25/1997"] * 50_000
    values[31_337] = "25/03/1997"  # never in the evenly spaced sample
    with pytest.raises(DataValidationError, match=r"day/month/year \(e\.g\. 25/03/1997\): 1 row\(s\), e\.g\. rows 31338"):
        _parse(values)


def test_ambiguous_day_month_needs_dayfirst() -> None:
    with pytest.raises(DataValidationError, match=r"(?s)\[ambiguous_date_format\] .*\nFix: set data\.dayfirst: true for DD/MM/YYYY"):
        _parse(["03/04/1997", "04/05/1997"])
    assert _parse(["03/04/1997"], dayfirst=True) == [pd.Timestamp("1997-04-03")]
    assert _parse(["03/04/1997"], dayfirst=False) == [pd.Timestamp("1997-03-04")]


def test_dayfirst_contradicted_by_the_data() -> None:
    with pytest.raises(DataValidationError, match=r"data\.dayfirst is true but the dates are month/day/year"):
        _parse(["03/25/1997"], dayfirst=True)


def test_explicit_format_rows_in_another_format_are_invalid_with_their_formats_named() -> None:
    raw = pd.DataFrame({"cust": ["a", "b", "c"], "when": ["03/25/1997", "25/03/1997", "1997-03-25"], "amt": [1, 2, 3]})
    with pytest.raises(DataValidationError) as info:
        validate_transactions(raw, MAPPING, ValidationPolicies(), date_format="%m/%d/%Y")
    text = str(info.value)
    assert "[invalid_timestamp] column 'when': 2 row(s) have a missing or unparseable timestamp (rows 2, 3;" in text
    assert "day/month/year (e.g. 25/03/1997): 1 row(s), e.g. rows 2 ('25/03/1997')" in text
    assert "year-month-day (ISO 8601, e.g. 1997-03-25): 1 row(s), e.g. rows 3 ('1997-03-25')" in text
    policies = ValidationPolicies(invalid_timestamp="quarantine")
    result = validate_transactions(raw, MAPPING, policies, date_format="%m/%d/%Y")
    assert result.report.quarantined == {"invalid_timestamp": 2}


def test_garbage_values_stay_invalid_timestamps() -> None:
    parsed = _parse(["2024-01-01T23:30:00-05:00", "2024-01-01 23:30", "not a date", ""])
    assert parsed[:2] == [pd.Timestamp("2024-01-02 04:30"), pd.Timestamp("2024-01-01 23:30")]
    assert pd.isna(parsed[2]) and pd.isna(parsed[3])


def test_dash_separated_day_month_year_is_not_an_offset() -> None:
    """'25-03-1997' ends like a '-1997' UTC offset; it is a date."""
    assert _parse(["25-03-1997 10:00"]) == [pd.Timestamp("1997-03-25 10:00")]


def test_month_names() -> None:
    assert _parse(["5 Jan 2024", "Jan 6, 2024"]) == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06")]


def test_classify_vectorised() -> None:
    families = classify_dates(pd.Series(["1997-01-01", "13/01/1997", "01/13/1997", "01/02/1997", "x", None]))
    assert families.tolist() == ["year_first", "day_month_year", "month_day_year", "day_month_ambiguous",
                                 "unrecognised", "unrecognised"]


@pytest.mark.slow  # a million rows
def test_a_million_rows_parse_exactly() -> None:
    rng = np.random.default_rng(3)
    stamps = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 900, 1_000_000), unit="s")
    text = pd.Series(stamps.strftime("%m/%d/%Y %H:%M:%S"), name="when")
    parsed = parse_timestamps(text, "UTC")
    assert (parsed.to_numpy() == stamps.to_numpy()).all()
