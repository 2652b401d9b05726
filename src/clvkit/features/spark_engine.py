"""BTYD features as Spark DataFrame operations: the Spark engine of :mod:`clvkit.features.btyd`.

Same definitions as the pandas engine (purchase period = calendar day, cut-off day included,
``time_unit`` scales day counts by ``constants.DAYS_PER_TIME_UNIT``; Fader, Hardie & Lee 2005,
section 2): for customer i with distinct purchase days d_1 < ... < d_n on or before the cut-off
c, ``frequency = n - 1``, ``recency = (d_n - d_1) / k``, ``T = (c - d_1) / k`` and
``monetary_value`` = mean spend of days d_2..d_n (0 when n = 1).

Only built-in Spark SQL functions are used (no Python UDFs, nothing collected): rows -> one row
per customer-day (amounts summed) -> one row per customer. Repeat spend is summed in day order
from the customer's sorted day list, as the pandas engine does.

Fitting without moving customers: :func:`collapsed_summary` reduces a summary to its distinct
(frequency, recency, T[, monetary_value]) rows with their counts, the sufficient statistics of
the BTYD likelihoods, small enough for the driver whatever the number of customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from clvkit import schemas
from clvkit.features._periods import FeatureInputError, day_to_date, days_per_unit, to_day
from clvkit.features.btyd import CALIBRATION_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "COUNT",
    "SparkCalibrationHoldout",
    "calibration_holdout_spark",
    "collapsed_summary",
    "customer_days_spark",
    "summary_spark",
]

#: Column of :func:`collapsed_summary` holding how many customers share a row.
COUNT = "n_customers"
_DAY = "_day"
_SPEND = "_spend"


@dataclass(frozen=True)
class SparkCalibrationHoldout:
    """:class:`clvkit.features.btyd.CalibrationHoldout` on Spark: the table stays distributed."""

    table: DataFrame
    n_customers_first_seen_in_holdout: int
    duration_holdout: float


def day_number(stamp: Column) -> Column:
    """Days since 1970-01-01 of a local (tz-naive) timestamp: the purchase period."""
    from pyspark.sql import functions as F

    return F.unix_date(F.to_date(stamp))


def customer_days_spark(transactions: DataFrame, end_day: int) -> DataFrame:
    """One row per (customer_id, day number) on or before ``end_day``: ``_day``, ``_spend``."""
    from pyspark.sql import functions as F

    missing = [c for c in (schemas.CUSTOMER_ID, schemas.TIMESTAMP, schemas.AMOUNT) if c not in transactions.columns]
    if missing:
        raise FeatureInputError(
            f"transactions lack required column(s) {missing}; they have {transactions.columns}. "
            "Features need the canonical columns of clvkit ingestion (see clvkit.schemas)."
        )
    day = day_number(F.col(schemas.TIMESTAMP))
    return (transactions.select(schemas.CUSTOMER_ID, day.alias(_DAY), F.col(schemas.AMOUNT).cast("double").alias("_a"))
            .where(F.col(_DAY) <= F.lit(end_day))
            .groupBy(schemas.CUSTOMER_ID, _DAY).agg(F.sum("_a").alias(_SPEND)))


def _summary_of_days(days: DataFrame, end_day: int, unit_days: float, names: tuple[str, ...]) -> DataFrame:
    """frequency, recency, T, monetary_value (named ``names``) of customer-days up to ``end_day``."""
    from pyspark.sql import functions as F

    per = days.groupBy(schemas.CUSTOMER_ID).agg(
        F.array_sort(F.collect_list(F.struct(F.col(_DAY), F.col(_SPEND)))).alias("_days"))
    n_days = F.size("_days")
    first = F.col("_days")[0][_DAY]
    last = F.element_at("_days", -1)[_DAY]
    repeat = F.aggregate(F.slice("_days", 2, F.greatest(n_days - 1, F.lit(1))), F.lit(0.0),
                         lambda acc, d: acc + d[_SPEND])
    frequency = (n_days - 1).cast("double")
    monetary = F.when(frequency > 0, repeat / frequency).otherwise(F.lit(0.0))
    return per.select(
        schemas.CUSTOMER_ID,
        frequency.alias(names[0]),
        ((last - first).cast("double") / F.lit(unit_days)).alias(names[1]),
        ((F.lit(end_day) - first).cast("double") / F.lit(unit_days)).alias(names[2]),
        monetary.alias(names[3]),
    )


def summary_spark(transactions: DataFrame, cutoff: object, time_unit: str = "D") -> DataFrame:
    """Per-customer ``customer_id, frequency, recency, T, monetary_value`` as of day ``cutoff``.

    The Spark engine of :func:`clvkit.features.btyd.summary` (same definitions; one row per
    customer first seen on or before the cut-off; not sorted).
    """
    unit_days = days_per_unit(time_unit)
    end_day = to_day(cutoff, "cutoff")
    return _summary_of_days(customer_days_spark(transactions, end_day), end_day, unit_days, schemas.BTYD_COLUMNS)


def calibration_holdout_spark(
    transactions: DataFrame, calibration_end: object, observation_end: object, time_unit: str = "D"
) -> SparkCalibrationHoldout:
    """The Spark engine of :func:`clvkit.features.btyd.calibration_holdout` (same columns)."""
    from pyspark.sql import functions as F

    unit_days = days_per_unit(time_unit)
    cal_day = to_day(calibration_end, "calibration_end")
    obs_day = to_day(observation_end, "observation_end")
    if cal_day >= obs_day:
        raise FeatureInputError(
            f"calibration_end ({day_to_date(cal_day)}) must be before observation_end "
            f"({day_to_date(obs_day)}): the holdout is the days after calibration_end up to "
            "observation_end"
        )
    observed = customer_days_spark(transactions, obs_day)
    calibration = _summary_of_days(observed.where(F.col(_DAY) <= cal_day), cal_day, unit_days, CALIBRATION_COLUMNS)
    in_holdout = F.col(_DAY) > cal_day
    holdout = observed.groupBy(schemas.CUSTOMER_ID).agg(
        F.min(_DAY).alias("_first"),
        F.sum(in_holdout.cast("long")).cast("double").alias(schemas.FREQUENCY_HOLDOUT),
        F.coalesce(F.sum(F.when(in_holdout, F.col(_SPEND))), F.lit(0.0)).alias(schemas.SPEND_HOLDOUT),
    )
    n_new = holdout.where(F.col("_first") > cal_day).count()
    duration = (obs_day - cal_day) / unit_days
    days, spend = F.col(schemas.FREQUENCY_HOLDOUT), F.col(schemas.SPEND_HOLDOUT)
    table = calibration.join(holdout.where(F.col("_first") <= cal_day).drop("_first"), schemas.CUSTOMER_ID).select(
        schemas.CUSTOMER_ID, *CALIBRATION_COLUMNS, schemas.FREQUENCY_HOLDOUT, schemas.SPEND_HOLDOUT,
        F.when(days > 0, spend / days).otherwise(F.lit(0.0)).alias(schemas.MONETARY_VALUE_HOLDOUT),
        F.lit(float(duration)).alias(schemas.DURATION_HOLDOUT),
    )
    return SparkCalibrationHoldout(table, int(n_new), float(duration))


def collapsed_summary(summary: DataFrame, columns: tuple[str, ...] = schemas.BTYD_COLUMNS[:3]) -> DataFrame:
    """Distinct rows of ``columns`` with ``n_customers``: the BTYD sufficient statistics.

    The BG/NBD-family likelihoods depend on a customer only through (frequency, recency, T),
    and Gamma-Gamma's through (frequency, monetary_value), so a fit on these rows weighted by
    ``n_customers`` equals the per-customer fit.
    """
    from pyspark.sql import functions as F

    return summary.groupBy(*columns).agg(F.count(F.lit(1)).alias(COUNT))
