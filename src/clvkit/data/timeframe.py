"""The time frame of a run: first purchase, calibration end, observation end (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from clvkit import schemas
from clvkit.constants import DAYS_PER_MONTH
from clvkit.exceptions import UserInputError

#: A derived holdout is half the observed span, capped at the CLV horizon.
DERIVED_HOLDOUT_SHARE = 0.5
MIN_CALIBRATION_DAYS = 28


@dataclass(frozen=True)
class TimeFrame:
    """Dates of the time design; all cut-offs include their whole day."""

    first_date: dt.date
    calibration_end: dt.date
    observation_end: dt.date
    calibration_end_derived: bool

    @property
    def holdout_days(self) -> int:
        """Length of the holdout in days."""
        return (self.observation_end - self.calibration_end).days

    def describe(self) -> str:
        """One line for logs and the CLI."""
        how = "derived: half the span, at most the CLV horizon" if self.calibration_end_derived else "configured"
        return (
            f"history {self.first_date} .. {self.observation_end}; calibration ends {self.calibration_end} "
            f"({how}); holdout {self.holdout_days} days"
        )


def resolve_time_frame(
    transactions: pd.DataFrame,
    calibration_end: dt.date | None,
    observation_end: dt.date | None,
    horizon_months: int,
) -> TimeFrame:
    """Fill in absent dates: observation end = last transaction day; calibration end derived."""
    if transactions.empty:
        raise UserInputError("no transactions left after validation; check data.source and the quarantine file")
    stamps = transactions[schemas.TIMESTAMP]
    first = stamps.min().date()
    end = observation_end or stamps.max().date()
    derived = calibration_end is None
    if derived:
        span_days = (end - first).days
        holdout_days = min(int(span_days * DERIVED_HOLDOUT_SHARE), int(horizon_months * DAYS_PER_MONTH))
        calibration_end = end - dt.timedelta(days=holdout_days)
    assert calibration_end is not None
    if (calibration_end - first).days < MIN_CALIBRATION_DAYS:
        raise UserInputError(
            f"calibration period {first} .. {calibration_end} is shorter than {MIN_CALIBRATION_DAYS} days; "
            "set data.calibration_end later (or data.observation_end) so the models have history to learn from"
        )
    if calibration_end >= end:
        raise UserInputError(
            f"data.calibration_end ({calibration_end}) must be before the end of the history ({end}); "
            "set data.observation_end or an earlier data.calibration_end"
        )
    return TimeFrame(first, calibration_end, end, derived)
