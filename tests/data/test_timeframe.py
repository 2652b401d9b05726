from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from clvkit.data.timeframe import resolve_time_frame
from clvkit.exceptions import UserInputError


def _tx(first: str, last: str) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime([first, last]), "customer_id": ["a", "a"], "amount": [1.0, 1.0]})


def test_derived_holdout_is_half_the_span_capped_at_horizon() -> None:
    frame = resolve_time_frame(_tx("1997-01-01", "1998-06-30"), None, None, horizon_months=12)
    assert frame.calibration_end_derived
    assert frame.observation_end == dt.date(1998, 6, 30)
    assert frame.holdout_days == 272  # half of 545 days
    short = resolve_time_frame(_tx("1997-01-01", "1998-06-30"), None, None, horizon_months=3)
    assert short.holdout_days == 91  # 3 average months
    assert "derived" in short.describe()


def test_configured_dates_are_used() -> None:
    frame = resolve_time_frame(_tx("1997-01-01", "1998-06-30"), dt.date(1997, 9, 30), dt.date(1998, 6, 30), 12)
    assert not frame.calibration_end_derived
    assert frame.holdout_days == 273


def test_too_short_calibration() -> None:
    with pytest.raises(UserInputError, match=r"calibration period 1997-01-01 \.\. 1997-01-10 is shorter than 28 days"):
        resolve_time_frame(_tx("1997-01-01", "1998-06-30"), dt.date(1997, 1, 10), None, 12)


def test_calibration_after_history() -> None:
    with pytest.raises(UserInputError, match=r"data\.calibration_end \(1998-08-01\) must be before the end of the history \(1998-06-30\)"):
        resolve_time_frame(_tx("1997-01-01", "1998-06-30"), dt.date(1998, 8, 1), None, 12)


def test_no_transactions() -> None:
    with pytest.raises(UserInputError, match="no transactions left after validation"):
        resolve_time_frame(_tx("1997-01-01", "1998-06-30").iloc[:0], None, None, 12)
