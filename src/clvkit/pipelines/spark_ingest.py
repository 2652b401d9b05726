"""Ingestion on the Spark engine: read, validate, quarantine (Parquet), reconcile."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clvkit.config.models import DataConfig
from clvkit.data.validation_spark import SparkValidatedTransactions, validate_transactions_spark
from clvkit.io.spark import quarantine_directory, read_transactions_spark, write_spark_table
from clvkit.pipelines.ingest import effective_columns

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparkIngestResult:
    """Validated transactions (Spark) and the Parquet directory of quarantined rows (None when none)."""

    validated: SparkValidatedTransactions
    quarantine_path: Path | None


def ingest_spark(data: DataConfig, spark: SparkSession, *, as_of: dt.date | None = None) -> SparkIngestResult:
    """Read and validate ``data.source`` on Spark; quarantined rows go to a Parquet directory.

    ``as_of`` (predict): rows dated after it are the ``after_as_of`` class.
    """
    columns, date_format = effective_columns(data)
    raw = read_transactions_spark(spark, data.source, columns)
    validated = validate_transactions_spark(
        raw, columns, data.validation, observation_end=data.observation_end,
        timezone=data.timezone, date_format=date_format, dayfirst=data.dayfirst, as_of=as_of,
    )
    path = None
    if validated.report.rows_quarantined:
        path = write_spark_table(validated.quarantine, quarantine_directory(data.quarantine_path))
        logger.warning("quarantined %s rows to %s", f"{validated.report.rows_quarantined:,}", path)
    for line in validated.report.summary_lines():
        logger.info(line)
    return SparkIngestResult(validated, path)
