"""``clvkit train --engine spark``: the same recipe, with the heavy parts on Spark.

What runs where:

* validation, quarantine (Parquet) and reconciliation of every row: Spark;
* the BTYD models served (the purchase model the recipe chose and Gamma-Gamma): fitted on the
  distinct (frequency, recency, T) and (frequency, monetary_value) rows of *every* customer with
  their counts, built by Spark (:func:`clvkit.features.spark_engine.collapsed_summary`); the
  driver holds those few rows only;
* the supervised models, their evaluation at origins inside the history, and the recipe's
  choices: the pandas engine's recipe on a seeded sample of customers (``spark.sample_customers``,
  stratified by purchase frequency band) whose transactions are collected to the driver.

The MLflow run logs the sample sizes (``spark_*`` params) and the full-data BTYD parameters.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd
from sklearn.base import clone

from clvkit import schemas
from clvkit.config.models import ClvkitConfig, ColumnMapping, ValidationPolicies
from clvkit.data.timeframe import resolve_time_frame
from clvkit.features.spark_engine import COUNT, collapsed_summary, summary_spark
from clvkit.io import tracking
from clvkit.io.spark import session_from_config
from clvkit.pipelines.fitting import scorer_for
from clvkit.pipelines.ingest import dataframe_source
from clvkit.pipelines.spark_ingest import ingest_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)

#: Upper edges of the purchase-frequency bands the customer sample is stratified by.
FREQUENCY_BANDS = (0, 1, 3, 7)
#: Resolution of the seeded hash that draws the sample (fractions are multiples of 1/this).
_HASH_BUCKETS = 1_000_000


def frequency_band(frequency: Any) -> Any:
    """Stratum of a Spark ``frequency`` column: 0, 1, 2-3, 4-7, 8+ repeat purchase days."""
    from pyspark.sql import functions as F

    band = F.lit(len(FREQUENCY_BANDS))
    for i, edge in reversed(list(enumerate(FREQUENCY_BANDS))):
        band = F.when(frequency <= edge, F.lit(i)).otherwise(band)
    return band


def sample_customers(summary: DataFrame, size: int, seed: int) -> tuple[DataFrame, dict[int, tuple[int, int]]]:
    """A seeded sample of about ``size`` customers, the same fraction from every frequency band.

    Returns the sampled ``customer_id`` rows and, per band, (customers, sampled).
    """
    from pyspark.sql import functions as F

    banded = summary.select(schemas.CUSTOMER_ID, frequency_band(F.col(schemas.FREQUENCY)).alias("_band"))
    counts = dict(banded.groupBy("_band").count().collect())
    total = sum(counts.values())
    fraction = min(1.0, size / max(total, 1))
    draw = F.pmod(F.xxhash64(F.col(schemas.CUSTOMER_ID), F.lit(seed)), F.lit(_HASH_BUCKETS))
    chosen = banded.where(draw < F.lit(int(round(fraction * _HASH_BUCKETS)))).select(schemas.CUSTOMER_ID, "_band")
    sampled = dict(chosen.groupBy("_band").count().collect())
    return chosen.select(schemas.CUSTOMER_ID), {int(b): (int(n), int(sampled.get(b, 0))) for b, n in counts.items()}


def fit_collapsed(stage: Any, summary: DataFrame) -> tuple[Any, Any, dict[str, int]]:
    """Refit the stage's purchase model and Gamma-Gamma on every customer's collapsed statistics."""
    rows = collapsed_summary(summary).toPandas()
    spend_rows = collapsed_summary(summary, (schemas.FREQUENCY, schemas.MONETARY_VALUE)).toPandas()
    purchase = clone(stage.bgnbd).fit(rows, sample_weight=rows[COUNT].to_numpy())
    spend = clone(stage.gamma_gamma).fit(spend_rows, sample_weight=spend_rows[COUNT].to_numpy())
    sizes = {"customers": int(rows[COUNT].sum()), "purchase_rows": len(rows), "spend_rows": len(spend_rows)}
    logger.info("BTYD models refitted on all %s customers from %s distinct (frequency, recency, T) rows and "
                "%s distinct (frequency, monetary_value) rows", f"{sizes['customers']:,}",
                f"{sizes['purchase_rows']:,}", f"{sizes['spend_rows']:,}")
    return purchase, spend, sizes


def fit_and_evaluate_spark(config: ClvkitConfig) -> tuple[Any, dict[str, Any]]:
    """The pandas recipe on a customer sample, with full-data BTYD models; no MLflow.

    Returns the :class:`~clvkit.pipelines.train.TrainingOutcome` and the Spark run facts.
    """
    from clvkit.pipelines.train import fit_and_evaluate

    spark = session_from_config(config.spark)
    ingested = ingest_spark(config.data, spark)
    report = ingested.validated.report
    transactions = ingested.validated.transactions
    if report.rows_used == 0:
        raise_no_rows(config)
    stamps = pd.Series(pd.to_datetime([report.first_date, report.last_date]))
    frame = resolve_time_frame(pd.DataFrame({schemas.TIMESTAMP: stamps}), config.data.calibration_end,
                               config.data.observation_end, config.clv.horizon_months)
    served_summary = summary_spark(transactions, frame.observation_end, config.data.time_unit).persist()
    chosen, strata = sample_customers(served_summary, config.spark.sample_customers, config.seed)
    sample = transactions.join(chosen, schemas.CUSTOMER_ID).toPandas()
    n_sampled = sum(s for _, s in strata.values())
    logger.info("supervised recipe on a sample of %s of %s customers (%s transactions) collected to the driver; "
                "per frequency band (customers, sampled): %s", f"{n_sampled:,}", f"{report.customers:,}",
                f"{len(sample):,}", strata)
    with dataframe_source(sample) as source:
        outcome = fit_and_evaluate(_sample_config(config, source, frame.observation_end))
    purchase, spend, sizes = fit_collapsed(outcome.served, served_summary)
    served_summary.unpersist()
    served = replace(outcome.served, bgnbd=purchase, gamma_gamma=spend)
    outcome = replace(outcome, served=served, scorer=scorer_for(served, config),
                      reconciliation=report.to_dict(), transactions=None)
    facts = {"spark_master": spark.sparkContext.master, "spark_customers": report.customers,
             "spark_sample_customers": n_sampled, "spark_sample_transactions": len(sample),
             "spark_collapsed_purchase_rows": sizes["purchase_rows"],
             "spark_collapsed_spend_rows": sizes["spend_rows"],
             "spark_strata": {str(b): list(v) for b, v in sorted(strata.items())},
             "spark_btyd_params": {**{f"purchase_{k}": v for k, v in purchase.params_.items()},
                                   **{f"gamma_gamma_{k}": v for k, v in spend.params_.items()}}}
    return outcome, facts


def _sample_config(config: ClvkitConfig, source: str, observation_end: Any) -> ClvkitConfig:
    """The config of the pandas recipe on the sample: canonical columns, already validated rows."""
    kept = ValidationPolicies(duplicate_rows="keep", zero_amount="keep", after_observation_end="quarantine")
    columns = ColumnMapping(customer_id=schemas.CUSTOMER_ID, timestamp=schemas.TIMESTAMP,
                            amount=schemas.AMOUNT if config.data.columns.has_amount else None,
                            **_optional_columns(config))
    data = config.data.model_copy(update={
        "source": source, "columns": columns, "validation": kept, "date_format": None, "dayfirst": None,
        "observation_end": observation_end,
    })
    return config.model_copy(update={"engine": "pandas", "data": data})


def _optional_columns(config: ClvkitConfig) -> dict[str, str]:
    mapping = config.data.columns.model_dump()
    names = (schemas.QUANTITY, schemas.UNIT_PRICE, schemas.COST, schemas.MARGIN,
             schemas.ORDER_ID, schemas.PRODUCT, schemas.CATEGORY, schemas.CHANNEL)
    return {n: n for n in names if mapping.get(n) is not None and not (
        n in (schemas.QUANTITY, schemas.UNIT_PRICE) and mapping.get("amount") is None)}


def raise_no_rows(config: ClvkitConfig) -> None:
    """Nothing usable to train on: a user error naming the source."""
    from clvkit.exceptions import UserInputError

    raise UserInputError(f"data.source {config.data.source!r}: no usable transactions after validation; "
                         "see the reconciliation and the quarantine")


def train_spark(config: ClvkitConfig, config_path: str | None = None) -> Any:
    """The training job on Spark, logged to MLflow like the pandas engine's (plus the Spark facts)."""
    import mlflow

    from clvkit.pipelines.run_logging import log_training, training_run

    tracking.configure_tracking()
    with training_run(config):
        outcome, facts = fit_and_evaluate_spark(config)
        mlflow.log_dict(facts, "spark/run_facts.json")
        mlflow.log_params({k: v for k, v in facts.items() if isinstance(v, int | str)})
        mlflow.log_metrics({f"spark_full_{k}": float(v) for k, v in facts["spark_btyd_params"].items()})
        return log_training(config, config_path, outcome)
