"""``clvkit features --engine spark``: the customer table built on Spark, written as Parquet."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clvkit import schemas
from clvkit.config.models import ClvkitConfig
from clvkit.features._periods import to_day
from clvkit.features.spark_engine import learn_edges_spark, rfm_inputs_spark
from clvkit.io.spark import session_from_config, write_spark_table
from clvkit.pipelines.features import make_builder
from clvkit.pipelines.spark_ingest import ingest_spark
from clvkit.pipelines.spark_predict import customer_table_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from clvkit.features.builder import FeatureBuilder

logger = logging.getLogger(__name__)

#: Customers whose transactions are fitted on the driver to learn the builder's output columns.
EDGE_PROBE_CUSTOMERS = 50


@dataclass(frozen=True)
class SparkFeatureTable:
    """Where the Spark engine wrote the customer table, and its size."""

    output: Path
    customers: int
    columns: int
    as_of: str


def features_spark(config: ClvkitConfig, as_of: dt.date | None, output: str | Path) -> SparkFeatureTable:
    """Ingest on Spark and build the customer table as of ``as_of`` (default: observation end).

    The RFM edges and tier thresholds are learnt on Spark from every customer (they equal the
    pandas engine's); every customer's row is then built on the executors.
    """
    spark = session_from_config(config.spark)
    ingested = ingest_spark(config.data, spark)
    report = ingested.validated.report
    transactions = ingested.validated.transactions
    as_of = as_of or config.data.observation_end or dt.date.fromisoformat(str(report.last_date))
    table, _ = feature_table_spark(spark, transactions, config, as_of)
    path = write_spark_table(table, output)
    written = spark.read.parquet(str(path))
    return SparkFeatureTable(path, written.count(), len(written.columns) - 1, str(as_of))


def feature_table_spark(spark: SparkSession, transactions: DataFrame, config: ClvkitConfig,
                        as_of: dt.date) -> tuple[DataFrame, FeatureBuilder]:
    """The customer table of validated ``transactions`` (lazy) and the fitted builder it uses.

    The builder's cross-customer edges (purchase cycle, RFM edges, value-tier thresholds) are
    learnt on Spark from every customer (:func:`learn_edges_spark`), so they equal the pandas
    engine's; the rest of what it learns (output columns, skipped features) depends only on the
    columns present and is read off a fit on a probe of a few customers.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from clvkit.features.builder import FeatureBuilder

    end_day = to_day(as_of, "as_of")
    frame = transactions if schemas.AMOUNT in transactions.columns else transactions.withColumn(
        schemas.AMOUNT, F.lit(0.0))
    inputs = rfm_inputs_spark(frame, end_day).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        probe_ids = inputs.select(schemas.CUSTOMER_ID).limit(EDGE_PROBE_CUSTOMERS)
        probe = transactions.join(probe_ids, schemas.CUSTOMER_ID).toPandas()
        builder = make_builder(config).fit(probe, as_of=as_of)
        edges = learn_edges_spark(inputs, tier_shares=builder.tier_shares, recency_days=builder.rfm_recency_days,
                                  cycle_multiples=builder.rfm_cycle_multiples, has_amount=builder.has_amount_)
    finally:
        inputs.unpersist()
    state = builder.to_dict()
    state["fitted"] = {**state["fitted"], "rfm_edges": edges.rfm_edges.to_dict(),
                       "tier_thresholds": list(edges.tier_thresholds), "rfm_cycle_days": edges.cycle_days,
                       "n_customers_fit": edges.n_customers}
    builder = FeatureBuilder.from_dict(state)
    logger.info("feature edges learnt on Spark from all %s customers: cycle %.4g days, RFM %s, tiers %s",
                f"{edges.n_customers:,}", edges.cycle_days, edges.rfm_edges.to_dict(), edges.tier_thresholds)
    return customer_table_spark(spark, transactions, state, as_of), builder
