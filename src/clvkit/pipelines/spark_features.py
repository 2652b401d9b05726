"""``clvkit features --engine spark``: the customer table built on Spark, written as Parquet."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from clvkit import schemas
from clvkit.config.models import ClvkitConfig
from clvkit.features.spark_engine import summary_spark
from clvkit.io.spark import session_from_config, write_spark_table
from clvkit.pipelines.features import make_builder
from clvkit.pipelines.spark_ingest import ingest_spark
from clvkit.pipelines.spark_predict import customer_table_spark
from clvkit.pipelines.spark_train import sample_customers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparkFeatureTable:
    """Where the Spark engine wrote the customer table, and its size."""

    output: Path
    customers: int
    columns: int
    as_of: str


def features_spark(config: ClvkitConfig, as_of: dt.date | None, output: str | Path) -> SparkFeatureTable:
    """Ingest on Spark and build the customer table as of ``as_of`` (default: observation end).

    The RFM edges and tier thresholds are learnt (``FeatureBuilder.fit``) on the seeded sample of
    ``spark.sample_customers`` customers (all of them when there are fewer: then the table equals
    the pandas engine's); every customer's row is then built on the executors.
    """
    spark = session_from_config(config.spark)
    ingested = ingest_spark(config.data, spark)
    report = ingested.validated.report
    transactions = ingested.validated.transactions
    as_of = as_of or config.data.observation_end or dt.date.fromisoformat(str(report.last_date))
    chosen, _ = sample_customers(summary_spark(transactions, as_of, config.data.time_unit),
                                 config.spark.sample_customers, config.seed)
    sample = transactions.join(chosen, schemas.CUSTOMER_ID).toPandas()
    builder = make_builder(config).fit(sample, as_of=as_of)
    logger.info("feature edges learnt on %s customers' transactions", f"{sample[schemas.CUSTOMER_ID].nunique():,}")
    table = customer_table_spark(spark, transactions, builder.to_dict(), as_of)
    path = write_spark_table(table, output)
    written = spark.read.parquet(str(path))
    return SparkFeatureTable(path, written.count(), len(written.columns) - 1, str(as_of))
