"""``clvkit predict``: load a registered scorer, build features if given transactions, score, write."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from clvkit import schemas
from clvkit.config.models import ClvkitConfig, ColumnMapping, DataConfig, ValidationPolicies
from clvkit.exceptions import UserInputError
from clvkit.features.builder import FeatureBuilder
from clvkit.io import tracking
from clvkit.io.files import read_table, write_table
from clvkit.io.scorer_model import signature_frame, to_scorer_input
from clvkit.pipelines.features import customer_table
from clvkit.pipelines.ingest import ingest
from clvkit.pipelines.progress import counter

logger = logging.getLogger(__name__)

#: Customers scored per batch (progress is reported per batch).
SCORING_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class PredictSummary:
    """What ``clvkit predict`` wrote."""

    output: Path
    customers: int
    total_clv: float
    value_at_risk: float
    as_of: str | None
    by_segment: pd.DataFrame
    quarantine: Path | None


def load_scorer(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """The pyfunc model and the metadata recorded with it (column mapping, feature builder...)."""
    tracking.configure_tracking()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except mlflow.exceptions.MlflowException as exc:
        raise UserInputError(f"cannot load model {model_uri!r}: {exc.message}") from None
    return model, model.unwrap_python_model().metadata


def predict(model_uri: str, output: str | Path, input_path: str | None = None,
            config: ClvkitConfig | None = None, as_of: dt.date | None = None) -> PredictSummary:
    """Score customers from transactions (features built on the fly) or a feature table."""
    source = input_path or (config.data.source if config else None)
    if source is None:
        raise UserInputError("nothing to score: give --input PATH (transactions or a feature table) or --config")
    model, meta = load_scorer(model_uri)
    table, as_of_used, quarantine_path = _customer_table(source, meta, config, as_of, _quarantine_path(Path(output)))
    scores = score_in_batches(model, table)
    write_table(scores, output, index=False)
    return _summary(Path(output), scores, as_of_used, quarantine_path)


def _quarantine_path(output: Path) -> Path:
    """Quarantined input rows go beside the scores: ``<name>.quarantine.csv``."""
    return output.with_name(f"{output.stem}.quarantine.csv")


def _customer_table(source: str, meta: dict[str, Any], config: ClvkitConfig | None, as_of: dt.date | None,
                    quarantine_path: Path) -> tuple[pd.DataFrame, str | None, Path | None]:
    if Path(source).suffix and Path(source).exists() and _is_feature_table(source):
        logger.info("input %s is a customer feature table", source)
        return to_scorer_input(read_table(source)), None, None
    ingested = ingest(_input_data_config(source, meta["data"], config, as_of, quarantine_path))
    transactions = ingested.validated.transactions
    as_of = as_of or transactions[schemas.TIMESTAMP].max().date()
    builder = FeatureBuilder.from_dict(meta["feature_builder"])
    logger.info("building features as of %s for %s transactions", as_of, f"{len(transactions):,}")
    table = customer_table(builder, transactions, as_of).rename_axis(schemas.CUSTOMER_ID)
    return table, str(as_of), ingested.quarantine_path


def _input_data_config(source: str, recorded: dict[str, Any], config: ClvkitConfig | None,
                       as_of: dt.date | None, quarantine_path: Path) -> DataConfig:
    """How to read the input: the config's mapping and policies where given, else those recorded with the model."""
    given = config.data if config else None
    columns = given.columns if given and "columns" in given.model_fields_set else ColumnMapping(**recorded["columns"])
    return DataConfig(
        source=source, columns=columns,
        validation=given.validation if given else ValidationPolicies(**recorded["validation"]),
        timezone=given.timezone if given else recorded["timezone"],
        date_format=(given.date_format if given and given.date_format else recorded["date_format"]),
        time_unit=recorded["time_unit"], observation_end=as_of, quarantine_path=str(quarantine_path),
    )


def _is_feature_table(path: str) -> bool:
    """True when the file has the BTYD columns (reads only the header or the Parquet schema)."""
    if Path(path).suffix.lower() == ".csv":
        names = set(pd.read_csv(path, nrows=0).columns)
    else:
        import pyarrow.parquet as pq

        names = set(pq.ParquetFile(path).schema_arrow.names)
    return {schemas.FREQUENCY, schemas.RECENCY, schemas.T} <= names


def score_in_batches(model: Any, table: pd.DataFrame) -> pd.DataFrame:
    """Score through the pyfunc (signature enforced) in batches, with a progress bar on a terminal."""
    frame = signature_frame(table).rename_axis(schemas.CUSTOMER_ID).reset_index()
    starts = range(0, len(frame), SCORING_BATCH_ROWS)
    parts = []
    with counter(len(frame), "scoring customers", min_total=SCORING_BATCH_ROWS + 1) as advance:
        for start in starts:
            batch = frame.iloc[start:start + SCORING_BATCH_ROWS]
            parts.append(model.predict(batch))
            advance(len(batch))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _summary(output: Path, scores: pd.DataFrame, as_of: str | None, quarantine: Path | None) -> PredictSummary:
    by_segment = (
        scores.groupby(schemas.RFM_SEGMENT, observed=True)
        .agg(customers=(schemas.CLV, "size"), clv=(schemas.CLV, "sum"), value_at_risk=(schemas.VALUE_AT_RISK, "sum"))
        .sort_values("value_at_risk", ascending=False)
    )
    return PredictSummary(
        output=output, customers=len(scores), total_clv=float(scores[schemas.CLV].sum()),
        value_at_risk=float(scores[schemas.VALUE_AT_RISK].sum()), as_of=as_of, by_segment=by_segment,
        quarantine=quarantine,
    )
