"""``clvkit predict --engine spark``: validate, build features and score on Spark.

What runs where:

* validation, quarantine (Parquet) and reconciliation: Spark (:mod:`clvkit.data.validation_spark`);
* the customer table: the pandas engine's own :func:`clvkit.pipelines.features.customer_table`
  applied per group of customers (``applyInPandas`` on a hash of ``customer_id``: each group
  holds whole customers, and the fitted :class:`FeatureBuilder` has learnt every cross-customer
  edge, so the rows equal the pandas engine's exactly);
* scoring: ``mlflow.pyfunc.spark_udf`` of the registered model URI on the executors;
* output: a Parquet directory partitioned by ``value_tier`` (when scored), written by Spark.

The driver holds only the model, a probe of a few customers (for the output schemas) and sums.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clvkit import schemas
from clvkit.config.models import (
    ClvkitConfig,
    ColumnMapping,
    DataConfig,
    SparkConfig,
    ValidationPolicies,
)
from clvkit.exceptions import UserInputError
from clvkit.io.scorer_model import signature_frame
from clvkit.io.spark import session_from_config, write_spark_table
from clvkit.pipelines.predict import load_scorer
from clvkit.pipelines.spark_ingest import ingest_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

#: Customers whose features and scores are computed on the driver to learn the output schemas.
SCHEMA_PROBE_CUSTOMERS = 20
#: Groups of customers the customer table is built in (each group is one pandas call on an executor).
DEFAULT_FEATURE_GROUPS = 64
#: Column the score directory is partitioned by, when the scorer returns it.
PARTITION_COLUMN = schemas.VALUE_TIER


@dataclass(frozen=True)
class SparkPredictSummary:
    """What ``clvkit predict --engine spark`` wrote."""

    output: Path
    customers: int
    total_clv: float
    as_of: str
    quarantine: Path | None
    reconciliation: dict[str, Any]


def predict_spark(model_uri: str, output: str | Path, input_path: str | None = None,
                  config: ClvkitConfig | None = None, as_of: dt.date | None = None) -> SparkPredictSummary:
    """Score every customer of the input transactions on Spark; write partitioned Parquet."""
    source = input_path or (config.data.source if config else None)
    if source is None:
        raise UserInputError("nothing to score: give --input PATH (transactions) or --config")
    spark = session_from_config(config.spark if config else SparkConfig())
    model, meta = load_scorer(model_uri)
    data = _input_data_config(source, meta["data"], config, Path(output))
    today = dt.datetime.now(dt.UTC).date()
    ingested = ingest_spark(data, spark, as_of=as_of or today)
    report = ingested.validated.report
    if report.rows_used == 0 or report.last_date is None:
        raise UserInputError(f"nothing to score: no usable transactions in {source!r} ({report.rows_read:,} rows read)")
    as_of = as_of or dt.date.fromisoformat(report.last_date)
    logger.info("scoring as of %s on Spark (%s)", as_of, spark.sparkContext.master)
    path = write_scores_spark(spark, ingested.validated.transactions, model_uri, (model, meta), as_of, output)
    written = spark.read.parquet(str(path))
    from pyspark.sql import functions as F

    totals = written.agg(F.count(F.lit(1)).alias("n"),
                         F.sum(schemas.CLV).alias("clv") if schemas.CLV in written.columns else F.lit(0.0)).collect()[0]
    return SparkPredictSummary(path, int(totals[0]), float(totals[1] or 0.0), str(as_of), ingested.quarantine_path,
                               report.to_dict())


def write_scores_spark(spark: SparkSession, transactions: DataFrame, model_uri: str, loaded: tuple[Any, dict[str, Any]],
                       as_of: dt.date, output: str | Path) -> Path:
    """Customer table (the model's learnt edges) and scores of validated ``transactions``, to Parquet.

    ``loaded``: the model and its metadata (:func:`clvkit.pipelines.predict.load_scorer`).
    The directory is partitioned by ``value_tier`` when the scorer returns it.
    """
    model, meta = loaded
    table = customer_table_spark(spark, transactions, meta["feature_builder"], as_of)
    scores = score_spark(spark, model_uri, model, table)
    partition = (PARTITION_COLUMN,) if PARTITION_COLUMN in scores.columns else ()
    return write_spark_table(scores, output, partition_by=partition)


def _input_data_config(source: str, recorded: dict[str, Any], config: ClvkitConfig | None, output: Path) -> DataConfig:
    """The config's data settings (mapping: the model's unless the config sets one), else the recorded ones."""
    quarantine = str(output.with_name(f"{output.stem}.quarantine.parquet"))
    given = config.data if config else None
    columns = given.columns if given and "columns" in given.model_fields_set else ColumnMapping(**recorded["columns"])
    if given is not None:
        return given.model_copy(update={"source": source, "columns": columns, "observation_end": None,
                                        "calibration_end": None, "time_unit": recorded["time_unit"],
                                        "quarantine_path": quarantine})
    return DataConfig(source=source, columns=columns, validation=ValidationPolicies(**recorded["validation"]),
                      timezone=recorded["timezone"], date_format=recorded["date_format"],
                      dayfirst=recorded.get("dayfirst"), time_unit=recorded["time_unit"], quarantine_path=quarantine)


def _pandas_table(builder_state: dict[str, Any], transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The pandas engine's customer table, ``customer_id`` as a column, scorer input types."""
    from clvkit.features.builder import FeatureBuilder
    from clvkit.pipelines.features import customer_table

    builder = FeatureBuilder.from_dict(builder_state)
    table = customer_table(builder, transactions, as_of)
    table = signature_frame(table).rename_axis(schemas.CUSTOMER_ID).reset_index()
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c].dtype)]
    return table.astype(dict.fromkeys(text, "string"))


def customer_table_spark(spark: SparkSession, transactions: DataFrame, builder_state: dict[str, Any],
                         as_of: dt.date, groups: int = DEFAULT_FEATURE_GROUPS) -> DataFrame:
    """One row per customer (the pandas engine's table, built per group of whole customers)."""
    from pyspark.sql import functions as F

    ids = transactions.select(schemas.CUSTOMER_ID).distinct().limit(SCHEMA_PROBE_CUSTOMERS)
    probe = _pandas_table(builder_state, transactions.join(ids, schemas.CUSTOMER_ID).toPandas(), as_of)
    schema = spark.createDataFrame(probe).schema
    names = list(schema.names)

    def build(group: pd.DataFrame) -> pd.DataFrame:
        table = _pandas_table(builder_state, group.drop(columns="_group"), as_of)
        return table[names]

    grouped = transactions.withColumn("_group", F.pmod(F.xxhash64(schemas.CUSTOMER_ID), F.lit(groups)))
    return grouped.groupBy("_group").applyInPandas(build, schema)


def score_spark(spark: SparkSession, model_uri: str, model: Any, table: DataFrame) -> DataFrame:
    """Scores of every row of ``table`` by ``mlflow.pyfunc.spark_udf`` of ``model_uri`` (executors)."""
    import mlflow
    from pyspark.sql import functions as F

    probe = table.limit(SCHEMA_PROBE_CUSTOMERS).toPandas()
    out_schema = spark.createDataFrame(_string_columns(model.predict(probe))).schema
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=out_schema, env_manager="local")
    scored = table.select(udf(F.struct(*[F.col(c) for c in table.columns])).alias("_s"))
    return scored.select("_s.*")


def _string_columns(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    return frame.astype(dict.fromkeys(text, "string"))
