"""Validation and quarantine of raw transactions on Spark: the policies of the pandas engine.

Mirrors :func:`clvkit.data.validation.validate_transactions`: the same row classes, checked in
the same order (a row is counted under its first class), the same policies (``error`` collects
every problem into one :class:`DataValidationError`, ``quarantine`` sets rows aside with the
class as ``reason``, ``keep`` counts them, ``net`` nets returns against same customer-day
spend) and the same reconciliation: ``rows_read == rows_used + rows_quarantined``.

Everything is Spark DataFrame expressions; only counts and a few example rows reach the
driver. ``source_row`` is the 1-based row number in Spark's read order, which is the file
order for one file (``monotonically_increasing_id`` numbered per partition, partitions offset
by their row counts). Timestamps become ``TIMESTAMP_NTZ`` local times in ``timezone``.

Text timestamps are parsed by the pandas engine's own parser
(:func:`clvkit.data.dates.parse_timestamps`) inside a vectorised pandas UDF (Arrow batches,
no row loop), after the column's format is detected once on the driver from a seeded sample,
so that both engines read every date the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from clvkit import schemas
from clvkit.config.models import ColumnMapping, ValidationPolicies
from clvkit.constants import MAX_EXAMPLE_ROWS
from clvkit.data.validation import (
    AFTER_AS_OF,
    REASON,
    ROW_CLASSES,
    SOURCE_ROW,
    UNMATCHED_RETURN,
    ReconciliationReport,
    check_columns,
)
from clvkit.exceptions import DataValidationError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["SparkValidatedTransactions", "parse_timestamps_spark", "validate_transactions_spark"]

#: Bits of monotonically_increasing_id() that hold the row number inside a partition.
_PARTITION_SHIFT = 33
#: Seed of the sample on which the driver detects the date format of a text column.
_FORMAT_SAMPLE_SEED = 0
#: Invalid timestamps whose text is described (formats found) in an error message.
_MAX_DESCRIBED_VALUES = 100_000
_NUMERIC_KEYS = ("amount", "quantity", "unit_price", "cost", "margin")
_TEXT_KEYS = ("order_id", "product", "category", "channel")
_PROBLEMS = {
    "missing_customer_id": "have no customer id",
    "invalid_timestamp": "have a missing or unparseable timestamp",
    "duplicate_rows": "are exact duplicates of an earlier row",
    "zero_amount": "have a zero amount",
    "negative_amount": "have a negative amount (returns)",
}


@dataclass(frozen=True)
class SparkValidatedTransactions:
    """Canonical rows (Spark), quarantined rows (Spark: source columns as text, ``source_row``,
    ``reason``) and the accounting (on the driver)."""

    transactions: DataFrame
    quarantine: DataFrame
    report: ReconciliationReport


def validate_transactions_spark(
    raw: DataFrame,
    columns: ColumnMapping,
    policies: ValidationPolicies,
    *,
    observation_end: object | None = None,
    timezone: str = "UTC",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    as_of: object | None = None,
) -> SparkValidatedTransactions:
    """Map, parse and check raw transactions on Spark; apply each class's policy.

    Same classes, order, policies and reason names as
    :func:`clvkit.data.validation.validate_transactions`; the canonical transactions are
    persisted (memory and disk) because features read them more than once.
    """
    from pyspark import StorageLevel
    from pyspark.errors import PythonException
    from pyspark.sql import functions as F

    check_columns(pd.DataFrame(columns=raw.columns), columns)
    numbered, n_rows = _with_source_row(raw)
    canonical = _canonical_columns(numbered, n_rows, columns, timezone, date_format, dayfirst)
    parsed = numbered.select("*", *[expr.alias(_c(name)) for name, expr in canonical.items()])
    flags = _row_class_flags({name: F.col(_c(name)) for name in canonical}, columns, policies, observation_end, as_of)
    frame = parsed.select("*", *[expr.alias(_flag(reason)) for reason, expr in flags.items()])
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = _first_class_counts(frame, flags, policies)
    except PythonException as exc:  # the date parser refused a batch (formats mixed inside it)
        frame.unpersist()
        raise _worker_error(exc) from None
    dates = {"after_observation_end": observation_end, AFTER_AS_OF: as_of}
    errors = [_error_text(frame, flags, policies, reason, n, columns, dates)
              for reason, n in counts.items() if n and getattr(policies, reason) == "error"]
    if errors:
        frame.unpersist()
        raise DataValidationError(f"{len(errors)} problem(s) in the transactions:\n\n" + "\n\n".join(errors))
    kept = {reason: n for reason, n in counts.items() if n and getattr(policies, reason) == "keep"}
    frame = frame.withColumn(REASON, _reason(flags, policies))
    if policies.negative_amount == "net" and counts.get("negative_amount"):  # no returns: nothing to net
        frame, netted = _net_returns(frame)
        if netted:
            kept["returns_netted"] = netted
    return _assemble(raw, frame, list(canonical), kept)


def _worker_error(exc: Exception) -> DataValidationError:
    text = str(exc)
    marker = "DataValidationError: "
    if marker in text:
        return DataValidationError(text.split(marker, 1)[1].strip())
    raise exc


# --- numbering and parsing -----------------------------------------------------------


def _with_source_row(raw: DataFrame) -> tuple[DataFrame, int]:
    """Add ``source_row`` (1-based, read order) without collecting rows: per-partition offsets.

    Also returns the number of rows.
    """
    from pyspark.sql import functions as F

    tagged = raw.withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())
    sizes = dict(tagged.groupBy("_pid").count().collect())
    offsets, total = [], 0
    for pid in sorted(sizes):
        offsets += [F.lit(pid), F.lit(total)]
        total += sizes[pid]
    offset = F.element_at(F.create_map(*offsets), F.col("_pid")) if offsets else F.lit(0)
    local = F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), _PARTITION_SHIFT)
    return tagged.withColumn(SOURCE_ROW, (offset + local + 1).cast("long")).drop("_pid", "_mid"), total


def _canonical_columns(raw: DataFrame, n_rows: int, columns: ColumnMapping, timezone: str,
                       date_format: str | None, dayfirst: bool | None) -> dict[str, Column]:
    from pyspark.sql import functions as F

    text = F.regexp_replace(F.col(_q(columns.customer_id)).cast("string"), r"^\s+|\s+$", "")
    out: dict[str, Column] = {
        schemas.CUSTOMER_ID: F.when(text != "", text),
        schemas.TIMESTAMP: parse_timestamps_spark(raw, columns.timestamp, timezone, date_format, dayfirst,
                                                    n_rows=n_rows),
    }
    if columns.has_amount:
        out[schemas.AMOUNT] = _amount(columns)
    for name in (schemas.QUANTITY, schemas.UNIT_PRICE, schemas.COST, schemas.MARGIN):
        source = getattr(columns, name)
        if source is not None:
            out[name] = _number(source)
    for name in (schemas.ORDER_ID, schemas.PRODUCT, schemas.CATEGORY, schemas.CHANNEL):
        source = getattr(columns, name)
        if source is not None:
            out[name] = F.col(_q(source)).cast("string")
    return out


def parse_timestamps_spark(raw: DataFrame, column: str, timezone: str, date_format: str | None = None,
                           dayfirst: bool | None = None, *, n_rows: int | None = None) -> Column:
    """Local ``TIMESTAMP_NTZ`` in ``timezone`` (null where unparseable), as the pandas engine reads it.

    Timestamp columns: instants are converted to ``timezone``, naive values kept. Text: the
    format is detected on the driver from a seeded sample (:func:`clvkit.data.dates.detect_format`,
    which raises on mixed formats), then every Arrow batch is parsed by
    :func:`clvkit.data.dates.parse_timestamps` with that day/month order.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    col = F.col(_q(column))
    dtype = raw.schema[column].dataType
    if isinstance(dtype, TimestampType):  # an instant: its wall-clock time in `timezone`
        return F.from_utc_timestamp(col, timezone).cast("timestamp_ntz")
    if isinstance(dtype, TimestampNTZType):
        return col
    if isinstance(dtype, DateType):
        return col.cast("timestamp_ntz")
    text = F.regexp_replace(col.cast("string"), r"^\s+|\s+$", "")
    if date_format is None:
        dayfirst = _detected_dayfirst(raw, text, column, dayfirst, n_rows)
    return _parser(column, timezone, date_format, dayfirst)(text)


def _detected_dayfirst(raw: DataFrame, text: Column, column: str, dayfirst: bool | None,
                       n_rows: int | None) -> bool | None:
    """The column's day/month order, detected on a sample as the pandas engine does (or an error)."""
    from pyspark.sql import functions as F

    from clvkit.constants import DATE_FORMAT_SAMPLE_ROWS
    from clvkit.data.dates import detect_format

    present = raw.select(text.alias("t")).where(F.col("t").isNotNull() & (F.col("t") != ""))
    n_rows = raw.count() if n_rows is None else n_rows
    fraction = min(1.0, 2.0 * DATE_FORMAT_SAMPLE_ROWS / max(n_rows, 1))
    sample = present.sample(fraction=fraction, seed=_FORMAT_SAMPLE_SEED) if fraction < 1 else present
    values = pd.Series([r[0] for r in sample.limit(DATE_FORMAT_SAMPLE_ROWS).collect()], dtype="string")
    choice = detect_format(values, column, dayfirst)
    return choice.dayfirst if choice.family is not None else dayfirst


def _parser(column: str, timezone: str, date_format: str | None, dayfirst: bool | None):  # type: ignore[no-untyped-def]
    """A vectorised pandas UDF: text -> local TIMESTAMP_NTZ by the pandas engine's parser."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("timestamp_ntz")  # type: ignore[untyped-decorator]
    def parse(values: pd.Series) -> pd.Series:
        from clvkit.data.dates import parse_timestamps

        text = values.astype("string").rename(column)
        return parse_timestamps(text, timezone, date_format, dayfirst).astype("datetime64[us]")

    return parse


def _number(source: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(_q(source)).try_cast("double")


def _amount(columns: ColumnMapping) -> Column:
    if columns.amount is not None:
        return _number(columns.amount)
    return _number(columns.quantity) * _number(columns.unit_price)  # type: ignore[arg-type]


# --- row classes ---------------------------------------------------------------------------


def _row_class_flags(canonical: dict[str, Column], columns: ColumnMapping, policies: ValidationPolicies,
                     observation_end: object | None, as_of: object | None) -> dict[str, Column]:
    """Boolean (never null) column of each row class, in the order classes are checked."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    stamp = canonical[schemas.TIMESTAMP]
    mapping = columns.model_dump()
    keys = [(F.coalesce(_number(c).cast("string"), F.col(_q(c)).cast("string")) if k in _NUMERIC_KEYS
             else F.col(_q(c))) for k, c in mapping.items() if c is not None]
    flags: dict[str, Column] = {
        "missing_customer_id": canonical[schemas.CUSTOMER_ID].isNull(),
        "invalid_timestamp": stamp.isNull(),
    }
    amount = canonical.get(schemas.AMOUNT)
    if amount is not None:
        flags["invalid_amount"] = (amount.isNull() | F.isnan(amount)
                                   | (F.abs(amount) > F.lit(float(policies.max_abs_amount))))
    flags["duplicate_rows"] = F.row_number().over(Window.partitionBy(*keys).orderBy(SOURCE_ROW)) > 1
    for reason, date in (("after_observation_end", observation_end), (AFTER_AS_OF, as_of)):
        if date is not None:
            flags[reason] = F.coalesce(stamp >= F.lit(observation_limit(date)).cast("timestamp_ntz"), F.lit(False))
    if amount is not None:
        flags["zero_amount"] = F.coalesce(amount == 0, F.lit(False))
        flags["negative_amount"] = F.coalesce(amount < 0, F.lit(False))
    assert tuple(flags) == tuple(r for r in ROW_CLASSES if r in flags)
    return flags


def _flag(reason: str) -> str:
    return f"_is_{reason}"


def _c(name: str) -> str:
    """Internal name of a canonical column (the source may have a column of the same name)."""
    return f"_c_{name}"


def _assigned_before(flags: dict[str, Column], policies: ValidationPolicies, reason: str) -> Column:
    """True where an earlier class with the quarantine policy has already claimed the row."""
    from pyspark.sql import functions as F

    result = F.lit(False)
    for earlier in flags:
        if earlier == reason:
            break
        if getattr(policies, earlier) == "quarantine":
            result = result | F.col(_flag(earlier))
    return result


def _first_class_counts(frame: DataFrame, flags: dict[str, Column],
                        policies: ValidationPolicies) -> dict[str, int]:
    """Rows of each class not claimed by an earlier quarantined class (one pass)."""
    from pyspark.sql import functions as F

    aggs = [F.sum((F.col(_flag(r)) & ~_assigned_before(flags, policies, r)).cast("long")).alias(r) for r in flags]
    row = frame.agg(*aggs).collect()[0]
    return {r: int(row[r] or 0) for r in flags}


def _reason(flags: dict[str, Column], policies: ValidationPolicies) -> Column:
    from pyspark.sql import functions as F

    reason = None
    for r in flags:
        if getattr(policies, r) != "quarantine":
            continue
        reason = F.when(F.col(_flag(r)), F.lit(r)) if reason is None else reason.when(F.col(_flag(r)), F.lit(r))
    return reason if reason is not None else F.lit(None).cast("string")


def _net_returns(frame: DataFrame) -> tuple[DataFrame, int]:
    """Quarantine returns whose customer-day has no positive spend or nets below zero."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    usable = F.col(REASON).isNull()
    amount = F.when(usable, F.col(_c(schemas.AMOUNT))).otherwise(F.lit(0.0))
    day = Window.partitionBy(_c(schemas.CUSTOMER_ID), F.to_date(_c(schemas.TIMESTAMP)))
    negative = usable & (F.col(_c(schemas.AMOUNT)) < 0)
    unmatched = negative & ((F.sum(F.greatest(amount, F.lit(0.0))).over(day) <= 0) | (F.sum(amount).over(day) < 0))
    frame = frame.withColumn("_negative", negative).withColumn(
        REASON, F.when(unmatched, F.lit(UNMATCHED_RETURN)).otherwise(F.col(REASON)))
    row = frame.agg(F.sum(F.col("_negative").cast("long")).alias("n"),
                    F.sum((F.col("_negative") & (F.col(REASON) == UNMATCHED_RETURN)).cast("long")).alias("u")).collect()[0]
    return frame.drop("_negative"), int(row["n"] or 0) - int(row["u"] or 0)


# --- assembly ------------------------------------------------------------------------------


def _assemble(raw: DataFrame, frame: DataFrame, canonical: list[str], kept: dict[str, int]) -> SparkValidatedTransactions:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    frame = frame.select(SOURCE_ROW, *[F.col(_q(c)) for c in raw.columns], *[_c(c) for c in canonical], REASON)
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    used = F.col(REASON).isNull()
    clean = frame.where(used).select(*[F.col(_c(c)).alias(c) for c in canonical])
    clean = clean.persist(StorageLevel.MEMORY_AND_DISK)
    quarantine = frame.where(~used).select(
        SOURCE_ROW, *[F.col(_q(c)).cast("string").alias(c) for c in raw.columns], REASON)
    by_reason = {r: int(n) for r, n in frame.groupBy(REASON).count().collect()}
    rows_used = by_reason.pop(None, 0)
    stats = clean.agg(F.count_distinct(schemas.CUSTOMER_ID).alias("customers"),
                      F.min(schemas.TIMESTAMP).alias("first"), F.max(schemas.TIMESTAMP).alias("last")).collect()[0]
    report = ReconciliationReport(
        rows_read=rows_used + sum(by_reason.values()),
        rows_used=rows_used,
        quarantined=by_reason,
        kept_flagged=kept,
        customers=int(stats["customers"]),
        first_date=str(stats["first"].date()) if stats["first"] is not None else None,
        last_date=str(stats["last"].date()) if stats["last"] is not None else None,
    )
    return SparkValidatedTransactions(clean, quarantine, report)


def _error_text(frame: DataFrame, flags: dict[str, Column], policies: ValidationPolicies, reason: str,
                n_rows: int, columns: ColumnMapping, dates: dict[str, object | None]) -> str:
    """The same message as the pandas engine: class, column, count, example rows and the fix."""
    from pyspark.sql import functions as F

    from clvkit.data.dates import describe_formats

    mapped = [c for c in columns.model_dump().values() if c is not None]
    rows = frame.where(F.col(_flag(reason)) & ~_assigned_before(flags, policies, reason)).orderBy(SOURCE_ROW)
    examples = rows.limit(MAX_EXAMPLE_ROWS).select(SOURCE_ROW, *[F.col(_q(c)) for c in mapped]).toPandas()
    shown = examples.pop(SOURCE_ROW).astype("int64")
    examples.index = pd.Index(shown, name="row")
    row_list = ", ".join(str(r) for r in shown) + (", ..." if n_rows > len(shown) else "")
    formats = ""
    if reason == "invalid_timestamp":
        failing = rows.limit(_MAX_DESCRIBED_VALUES).select(
            SOURCE_ROW, F.regexp_replace(F.col(_q(columns.timestamp)).cast("string"), r"^\s+|\s+$", "")
        ).toPandas()
        text = failing.iloc[:, 1].astype("string")
        formats = f"Their formats:\n{describe_formats(text, failing[SOURCE_ROW].to_numpy())}\n"
    return (
        f"[{reason}] column {_class_column(reason, columns)!r}: {n_rows:,} row(s) "
        f"{_problem(reason, policies, dates)} (rows {row_list}; row = data row number, 1-based):\n"
        f"{examples.to_string()}\n{formats}"
        f"Fix the data, or set data.validation.{reason}: quarantine to set these rows "
        f"aside in the quarantine file."
    )


def _class_column(reason: str, columns: ColumnMapping) -> str:
    amount_col = columns.amount or f"{columns.quantity} × {columns.unit_price}"
    return {
        "missing_customer_id": columns.customer_id,
        "invalid_timestamp": columns.timestamp,
        "duplicate_rows": ", ".join(c for c in columns.model_dump().values() if c is not None),
        "after_observation_end": columns.timestamp,
        AFTER_AS_OF: columns.timestamp,
    }.get(reason, amount_col)


def _problem(reason: str, policies: ValidationPolicies, dates: dict[str, object | None]) -> str:
    if reason in dates:
        what = "data.observation_end" if reason == "after_observation_end" else "the scoring date as_of"
        return f"are dated after {what} ({pd.Timestamp(dates[reason]).date()})"
    if reason == "invalid_amount":
        return (f"have a non-numeric, NaN, infinite or implausible amount (|amount| > "
                f"{policies.max_abs_amount:g}, data.validation.max_abs_amount)")
    return _PROBLEMS[reason]


def _q(name: str) -> str:
    """A column name quoted for Spark (names with dots or spaces)."""
    return f"`{name.replace('`', '``')}`"


def observation_limit(observation_end: object) -> dt.datetime:
    """First excluded instant: the day after ``observation_end``, at midnight."""
    return (pd.Timestamp(observation_end).normalize() + pd.Timedelta(days=1)).to_pydatetime()
