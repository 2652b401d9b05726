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

Learning the feature builder's cross-customer edges on every customer: :func:`learn_edges_spark`
gives the purchase cycle, the RFM edges and the value-tier thresholds that
:meth:`clvkit.features.builder.FeatureBuilder.fit` learns, from exact quantiles (Spark's
``percentile``: linear interpolation between order statistics, numpy's default) and a running
sum over the distinct spend values; only those few numbers reach the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from clvkit import schemas
from clvkit.constants import DEFAULT_PURCHASE_CYCLE_DAYS, MIN_PURCHASE_CYCLE_DAYS, RFM_SCORE_BINS
from clvkit.features._periods import FeatureInputError, day_to_date, days_per_unit, to_day
from clvkit.features.btyd import CALIBRATION_COLUMNS
from clvkit.features.rfm import REPEAT_QUARTILES, RFMEdges, check_tier_shares

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "COUNT",
    "RFM_INPUT_COLUMNS",
    "SparkCalibrationHoldout",
    "SparkEdges",
    "calibration_holdout_spark",
    "collapsed_summary",
    "customer_days_spark",
    "learn_edges_spark",
    "rfm_inputs_spark",
    "summary_spark",
]

#: Column of :func:`collapsed_summary` holding how many customers share a row.
COUNT = "n_customers"
_DAY = "_day"
_SPEND = "_spend"
#: Per-customer inputs of the learnt edges (the behavioural catalogue's definitions).
RFM_INPUT_COLUMNS = ("days_since_last_purchase", "n_purchase_days", "spend_per_purchase_day",
                     "gap_mean_days", "total_spend")
#: Quantiles of spend per purchase day giving the M edges (as :class:`RFMEdges`: 0.2 .. 0.8).
_SCORE_QUANTILES = tuple(float(q) for q in np.linspace(0.0, 1.0, RFM_SCORE_BINS + 1)[1:-1])


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


@dataclass(frozen=True)
class SparkEdges:
    """What :meth:`FeatureBuilder.fit` learns across customers, learnt on Spark from all of them."""

    cycle_days: float
    rfm_edges: RFMEdges
    tier_thresholds: tuple[float | None, float | None]
    n_customers: int


def rfm_inputs_spark(transactions: DataFrame, end_day: int) -> DataFrame:
    """Per customer with a purchase day on or before ``end_day``: :data:`RFM_INPUT_COLUMNS`.

    days since the last purchase day, distinct purchase days n, total spend (summed in day
    order), spend per purchase day, and the mean gap (last - first) / (n - 1) (null when n = 1).
    """
    from pyspark.sql import functions as F

    days = customer_days_spark(transactions, end_day)
    per = days.groupBy(schemas.CUSTOMER_ID).agg(
        F.array_sort(F.collect_list(F.struct(F.col(_DAY), F.col(_SPEND)))).alias("_days"))
    n_days = F.size("_days")
    first = F.col("_days")[0][_DAY]
    last = F.element_at("_days", -1)[_DAY]
    total = F.aggregate("_days", F.lit(0.0), lambda acc, d: acc + d[_SPEND])
    return per.select(
        schemas.CUSTOMER_ID,
        (F.lit(end_day) - last).cast("double").alias(RFM_INPUT_COLUMNS[0]),
        n_days.cast("double").alias(RFM_INPUT_COLUMNS[1]),
        (total / n_days).alias(RFM_INPUT_COLUMNS[2]),
        F.when(n_days > 1, (last - first).cast("double") / (n_days - 1)).alias(RFM_INPUT_COLUMNS[3]),
        total.alias(RFM_INPUT_COLUMNS[4]),
    )


def learn_edges_spark(
    inputs: DataFrame,
    *,
    tier_shares: Sequence[float],
    recency_days: Sequence[float] | None = None,
    cycle_multiples: Sequence[float] | None = None,
    has_amount: bool = True,
) -> SparkEdges:
    """The builder's edges from :func:`rfm_inputs_spark` rows (every customer).

    * cycle: median of the positive mean gaps, floored at ``MIN_PURCHASE_CYCLE_DAYS``
      (``DEFAULT_PURCHASE_CYCLE_DAYS`` without repeat customers); recency edges from it;
    * F edges: 1 and the quartiles of repeat customers' purchase days; M edges: quintile edges
      of their spend per purchase day (every customer when none repeats);
    * tiers: the smallest value of tier A (B) is the smallest positive total spend whose
      customers ranked above hold less than ``a_share`` (``b_share``) of all spend.
    """
    from pyspark.sql import functions as F

    check_tier_shares(*tier_shares)
    n_days, spend_per_day, gap = (F.col(c) for c in RFM_INPUT_COLUMNS[1:4])
    repeat = n_days > 1
    stats = inputs.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(repeat.cast("long")).alias("n_repeat"),
        F.percentile(F.when(gap > 0, gap), 0.5).alias("cycle"),
        F.percentile(F.when(repeat, n_days), list(REPEAT_QUARTILES)).alias("f_repeat"),
        F.percentile(F.when(repeat, spend_per_day), list(_SCORE_QUANTILES)).alias("m_repeat"),
    ).first()
    n_customers = int(stats["n"])
    if n_customers == 0:
        raise FeatureInputError("no customer has a purchase on or before the cut-off: cannot learn RFM edges")
    f_quartiles, m_edges = stats["f_repeat"], stats["m_repeat"]
    if not stats["n_repeat"]:  # nobody repeats: every customer is the pool
        pooled = inputs.agg(F.percentile(n_days, list(REPEAT_QUARTILES)),
                            F.percentile(spend_per_day, list(_SCORE_QUANTILES))).first()
        f_quartiles, m_edges = pooled[0], pooled[1]
    cycle = (DEFAULT_PURCHASE_CYCLE_DAYS if stats["cycle"] is None
             else max(float(stats["cycle"]), MIN_PURCHASE_CYCLE_DAYS))
    f_edges = np.maximum.accumulate(np.asarray([1.0, *f_quartiles], dtype=float))
    # the recency edges depend on the cycle and the settings only (RFMEdges.fit checks the settings)
    recency = RFMEdges.fit([0.0], [1.0], [0.0], cycle_days=cycle, recency_days=recency_days,
                           **({} if cycle_multiples is None else {"cycle_multiples": cycle_multiples}))
    edges = replace(recency, frequency=tuple(float(e) for e in f_edges),
                    monetary=tuple(float(e) if has_amount else 0.0 for e in m_edges))
    thresholds = _tier_thresholds_spark(inputs, tier_shares) if has_amount else (None, None)
    return SparkEdges(float(cycle), edges, thresholds, n_customers)


def _tier_thresholds_spark(inputs: DataFrame, tier_shares: Sequence[float]) -> tuple[float | None, float | None]:
    """:func:`clvkit.features.rfm.value_tier_thresholds` of ``total_spend`` on Spark.

    Distinct positive values with their counts, and the spend of the customers ranked above each
    (a running sum over the distinct values in descending order: one partition of distinct
    values, not of customers).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    a_share, b_share = tier_shares
    value = F.greatest(F.col(RFM_INPUT_COLUMNS[4]), F.lit(0.0))
    groups = (inputs.select(value.alias("_v")).where(F.col("_v") > 0)
              .groupBy("_v").agg((F.col("_v") * F.count(F.lit(1))).alias("_s")))
    above = F.coalesce(F.sum("_s").over(Window.orderBy(F.desc("_v")).rowsBetween(Window.unboundedPreceding, -1)),
                       F.lit(0.0))
    ranked = groups.select("_v", above.alias("_above"), F.sum("_s").over(Window.partitionBy()).alias("_total"))
    row = ranked.agg(F.min(F.when(F.col("_above") < F.lit(a_share) * F.col("_total"), F.col("_v"))).alias("a"),
                     F.min(F.when(F.col("_above") < F.lit(b_share) * F.col("_total"), F.col("_v"))).alias("b")).first()
    low_a = None if row is None or row["a"] is None else float(row["a"])
    low_b = None if row is None or row["b"] is None else float(row["b"])
    if low_a is not None and low_b is not None and low_b >= low_a:
        low_b = None
    return low_a, low_b
