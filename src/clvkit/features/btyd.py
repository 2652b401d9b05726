"""BTYD sufficient statistics: the RFM summary and the calibration/holdout split.

Time design. The purchase period is the calendar day: several purchases on one day count
once, their amounts (returns included) summed. ``time_unit`` only scales day counts by
``constants.DAYS_PER_TIME_UNIT`` (D = 1, W = 7, M = 365.2425 / 12 days). A cut-off ``c``
is a date and includes its whole day. For customer ``i`` with distinct purchase days
``d_1 < ... < d_n`` on or before ``c`` (Fader, Hardie & Lee 2005, "Counting your customers
the easy way", section 2; lifetimes' ``summary_data_from_transaction_data``):

* ``frequency`` x = n - 1 (repeat purchase days);
* ``recency`` t_x = (d_n - d_1) / k and ``T`` = (c - d_1) / k, k = days per unit;
* ``monetary_value`` = mean spend of the repeat days d_2..d_n, 0 when x = 0.

This equals lifetimes' ``summary_data_from_transaction_data(..., freq="D",
freq_multiplier=k)``. Recency and T are integer day counts divided by the same k, so
``recency <= T`` holds exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.features._periods import (
    CustomerDays,
    FeatureInputError,
    customer_days,
    day_to_date,
    days_per_unit,
    sort_rows,
    to_day,
)

logger = logging.getLogger(__name__)

__all__ = ["CalibrationHoldout", "calibration_holdout", "summary"]

CALIBRATION_COLUMNS = (
    schemas.FREQUENCY_CAL,
    schemas.RECENCY_CAL,
    schemas.T_CAL,
    schemas.MONETARY_VALUE_CAL,
)
HOLDOUT_COLUMNS = (
    schemas.FREQUENCY_HOLDOUT,
    schemas.SPEND_HOLDOUT,
    schemas.MONETARY_VALUE_HOLDOUT,
    schemas.DURATION_HOLDOUT,
)


@dataclass(frozen=True)
class CalibrationHoldout:
    """A calibration/holdout split of the transactions.

    Attributes
    ----------
    table
        One row per customer first seen on or before the calibration end (index
        ``customer_id``, sorted): ``frequency_cal, recency_cal, T_cal, monetary_value_cal``
        (the :func:`summary` at the calibration end), ``frequency_holdout`` (distinct purchase
        days in the holdout), ``spend_holdout`` (sum of holdout amounts),
        ``monetary_value_holdout`` (``spend_holdout / frequency_holdout``, 0 without a holdout
        purchase) and ``duration_holdout`` (holdout length in time units).
    n_customers_first_seen_in_holdout
        Customers whose first purchase falls in the holdout: left out of ``table``.
    duration_holdout
        Holdout length, (observation_end - calibration_end) days / days per unit.
    """

    table: pd.DataFrame
    n_customers_first_seen_in_holdout: int
    duration_holdout: float


def summary(transactions: pd.DataFrame, cutoff: object, time_unit: str = "D") -> pd.DataFrame:
    """Per-customer ``frequency, recency, T, monetary_value`` as of the end of day ``cutoff``.

    Parameters
    ----------
    transactions
        Canonical transactions (``customer_id``, ``timestamp``, ``amount``), any row order;
        not modified.
    cutoff
        Date-like; rows up to and including this whole day are used. Customers whose first
        purchase is later are absent.
    time_unit
        ``"D"``, ``"W"`` or ``"M"``: unit of ``recency`` and ``T``.

    Returns
    -------
    DataFrame
        Indexed by sorted ``customer_id``; float64 columns ``schemas.BTYD_COLUMNS`` as defined
        in the module docstring (Fader, Hardie & Lee 2005, section 2).
    """
    unit_days = days_per_unit(time_unit)
    end_day = to_day(cutoff, "cutoff")
    periods = customer_days(sort_rows(transactions), end_day)
    return summary_from_periods(periods, unit_days)


def summary_from_periods(periods: CustomerDays, unit_days: float) -> pd.DataFrame:
    """BTYD summary of customer-days (see module docstring for the definitions)."""
    return pd.DataFrame(summary_columns(periods, unit_days), index=periods.ids, copy=False)


def summary_columns(periods: CustomerDays, unit_days: float) -> dict[str, np.ndarray]:
    """The float64 arrays of :func:`summary_from_periods`, keyed by column name."""
    first = periods.first_day
    frequency = periods.n_days - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, _repeat_spend(periods) / frequency, 0.0)
    return {
        schemas.FREQUENCY: frequency.astype(np.float64),
        schemas.RECENCY: (periods.last_day - first).astype(np.float64) / unit_days,
        schemas.T: (periods.end_day - first).astype(np.float64) / unit_days,
        schemas.MONETARY_VALUE: monetary.astype(np.float64),
    }


def _repeat_spend(periods: CustomerDays) -> np.ndarray:
    """Spend of each customer's customer-days after the first, summed in day order."""
    if periods.n_customers == 0:
        return np.zeros(0, dtype=np.float64)
    spend = periods.spend.copy()
    spend[periods.start] = 0.0
    return np.add.reduceat(spend, periods.start)


def calibration_holdout(
    transactions: pd.DataFrame,
    calibration_end: object,
    observation_end: object,
    time_unit: str = "D",
) -> CalibrationHoldout:
    """Split transactions at ``calibration_end`` into calibration and holdout statistics.

    Calibration: rows up to and including day ``calibration_end``; holdout: rows on days in
    (``calibration_end``, ``observation_end``]. Unlike lifetimes'
    ``calibration_and_holdout_data`` (issues #371, #431), ``monetary_value_holdout`` is spend
    per holdout purchase *day*, like ``monetary_value_cal``, not per transaction line.

    Parameters
    ----------
    transactions
        Canonical transactions; not modified.
    calibration_end, observation_end
        Date-like, ``calibration_end < observation_end``; both include their whole day.
    time_unit
        ``"D"``, ``"W"`` or ``"M"``.

    Returns
    -------
    CalibrationHoldout
        The table (columns ``CALIBRATION_COLUMNS + HOLDOUT_COLUMNS``), the number of customers
        first seen in the holdout (left out), and the holdout duration in units.
    """
    unit_days = days_per_unit(time_unit)
    cal_day = to_day(calibration_end, "calibration_end")
    obs_day = to_day(observation_end, "observation_end")
    if cal_day >= obs_day:
        raise FeatureInputError(
            f"calibration_end ({day_to_date(cal_day)}) must be before observation_end "
            f"({day_to_date(obs_day)}): the holdout is the days after calibration_end up to "
            "observation_end"
        )
    observed = customer_days(sort_rows(transactions), obs_day)
    calibration = observed.until(cal_day)
    table = summary_from_periods(calibration, unit_days)
    table.columns = list(CALIBRATION_COLUMNS)
    duration = (obs_day - cal_day) / unit_days
    _add_holdout_columns(table, observed, calibration, cal_day, duration)
    n_new = observed.n_customers - calibration.n_customers
    logger.debug("calibration/holdout: %d customers, %d first seen in the holdout",
                 calibration.n_customers, n_new)
    return CalibrationHoldout(table, n_new, duration)


def _add_holdout_columns(
    table: pd.DataFrame,
    observed: CustomerDays,
    calibration: CustomerDays,
    cal_day: int,
    duration: float,
) -> None:
    """Holdout purchase days, spend and spend per purchase day of the calibration customers."""
    first_holdout = observed.first_after(cal_day)
    stop = observed.stop
    days = (stop - first_holdout).astype(np.float64)
    spend = observed.segment_sums(observed.spend, first_holdout, stop)
    # calibration customers are those of `observed` whose first day is <= cal_day, in order
    kept = observed.first_day <= cal_day
    days, spend = days[kept], spend[kept]
    assert days.size == calibration.n_customers
    with np.errstate(invalid="ignore", divide="ignore"):
        per_day = np.where(days > 0, spend / days, 0.0)
    table[schemas.FREQUENCY_HOLDOUT] = days
    table[schemas.SPEND_HOLDOUT] = spend
    table[schemas.MONETARY_VALUE_HOLDOUT] = per_day
    table[schemas.DURATION_HOLDOUT] = np.full(days.size, duration, dtype=np.float64)
