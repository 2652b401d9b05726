"""``clvkit predict``: load a registered scorer, build features if given transactions, score, write."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from clvkit import schemas
from clvkit.config.models import ClvkitConfig, ColumnMapping, DataConfig, ValidationPolicies
from clvkit.data.score_checks import check_scores
from clvkit.exceptions import UserInputError
from clvkit.features.builder import FeatureBuilder
from clvkit.io import tracking
from clvkit.io.files import (
    check_input_path,
    check_output_path,
    read_header,
    read_table,
    write_table,
)
from clvkit.io.scorer_model import signature_frame, to_scorer_input
from clvkit.models.customer_value import retention_list
from clvkit.pipelines.features import customer_table
from clvkit.pipelines.ingest import IngestResult, ingest, save_quarantine
from clvkit.pipelines.progress import counter

logger = logging.getLogger(__name__)

#: Customers in the retention list when --top is not given.
DEFAULT_RETENTION_TOP = 1_000
#: Customers scored per batch (progress is reported per batch).
SCORING_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class PredictSummary:
    """What ``clvkit predict`` wrote."""

    output: Path
    customers: int
    total_clv: float
    value_at_risk: float  # total churn-loss value (P(loss) x value if retained); 0 without clv columns
    as_of: str | None
    by_segment: pd.DataFrame
    quarantine: Path | None
    as_of_reason: str = ""
    stale_quarantine_removed: Path | None = None
    retention_list: Path | None = None
    retention_customers: int = 0


def load_scorer(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """The pyfunc model and the metadata recorded with it (column mapping, feature builder...)."""
    if model_uri.lower().startswith(("http://", "https://")):
        raise UserInputError(
            f"--model {model_uri!r} is a web address, not a model URI; give models:/<name>@<alias>, "
            "runs:/<run_id>/scorer or a local model directory (for a remote tracking server set "
            "MLFLOW_TRACKING_URI=http://... and use models:/...)"
        )
    tracking.configure_tracking()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except mlflow.exceptions.MlflowException as exc:
        raise UserInputError(f"cannot load model {model_uri!r}: {exc.message}") from None
    except OSError as exc:
        raise UserInputError(f"cannot load model {model_uri!r}: {exc}") from None
    return model, model.unwrap_python_model().metadata


def predict(model_uri: str, output: str | Path, input_path: str | None = None,
            config: ClvkitConfig | None = None, as_of: dt.date | None = None,
            retention_list_path: str | Path | None = None, top: int = DEFAULT_RETENTION_TOP) -> PredictSummary:
    """Score customers from transactions (features built on the fly) or a feature table.

    With ``retention_list_path``, also write the ``top`` customers ranked by churn-loss value
    (:func:`clvkit.models.customer_value.retention_list`).
    """
    source = input_path or (config.data.source if config else None)
    if source is None:
        raise UserInputError("nothing to score: give --input PATH (transactions or a feature table) or --config")
    output = Path(output)
    quarantine_path = _quarantine_path(output)
    if Path(source).suffix:
        check_input_path(Path(source), "--input" if input_path else "data.source")
    check_output_path(output, "--output", inputs=[source])
    check_output_path(quarantine_path, "the quarantine file", inputs=[source])
    if retention_list_path is not None:
        check_output_path(Path(retention_list_path), "--retention-list", inputs=[source])
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise UserInputError(f"--top must be a whole number of customers >= 1, got {top!r}")
    model, meta = load_scorer(model_uri)
    table, as_of_used, as_of_reason, ingested = _customer_table(source, meta, config, as_of)
    scores = score_in_batches(model, table)
    check_scores(scores, what=f"the scores of {len(scores):,} customers")
    summary = _summary(output, scores, as_of_used, None)
    retention = None
    if retention_list_path is not None:
        try:
            retention = retention_list(scores, top, _quadrant_actions(meta))
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
    # everything checked: only now are files written (quarantine first, then the scores, each atomically)
    saved = save_quarantine(ingested.validated, quarantine_path) if ingested is not None else None
    stale = saved.stale_quarantine_removed if saved else _remove_stale(quarantine_path)
    write_table(scores, output, index=False)
    if retention is not None:
        write_table(retention, retention_list_path, index=False)
        summary = replace(summary, retention_list=Path(retention_list_path), retention_customers=len(retention))
    return replace(summary, quarantine=saved.quarantine_path if saved else None, as_of_reason=as_of_reason,
                   stale_quarantine_removed=stale)


def _quadrant_actions(meta: dict[str, Any]) -> dict[str, str] | None:
    """Quadrant name -> one-line action, from the training config recorded with the model."""
    quadrant = ((meta.get("config") or {}).get("features") or {}).get("quadrant") or {}
    names, actions = quadrant.get("names") or {}, quadrant.get("actions") or {}
    return {str(names[c]): str(actions[c]) for c in names if c in actions} or None


def _remove_stale(quarantine_path: Path) -> Path | None:
    """A feature-table input quarantines nothing: an earlier run's quarantine file beside the output goes."""
    if not quarantine_path.is_file():
        return None
    quarantine_path.unlink()
    logger.warning("removed the quarantine file %s left by an earlier run", quarantine_path)
    return quarantine_path


def _quarantine_path(output: Path) -> Path:
    """Quarantined input rows go beside the scores: ``<name>.quarantine.csv``."""
    return output.with_name(f"{output.stem}.quarantine.csv")


def _customer_table(
    source: str, meta: dict[str, Any], config: ClvkitConfig | None, as_of: dt.date | None,
) -> tuple[pd.DataFrame, str | None, str, IngestResult | None]:
    """The customer table to score, the cut-off used and why, and the ingestion (None for a feature table)."""
    data = _input_data_config(source, meta["data"], config)
    if Path(source).suffix and _is_feature_table(source, data):
        logger.info("input %s is a customer feature table", source)
        table = to_scorer_input(read_table(source, encoding=data.encoding, delimiter=data.delimiter))
        if table.empty:
            raise UserInputError(f"--input {source!r} has no customer rows to score")
        return table, None, "the feature table's own cut-off", None
    today = _today(data.timezone)
    ingested = ingest(data, as_of=as_of or today, write_quarantine=False)
    transactions = ingested.validated.transactions
    after = ingested.validated.report.quarantined.get("after_as_of", 0)
    if transactions.empty:
        limit = f"--as-of {as_of}" if as_of else f"today ({today})"
        raise UserInputError(
            f"nothing to score: no usable transactions on or before {limit} in {source!r} "
            f"({ingested.validated.report.rows_read:,} rows read, {after:,} dated later); "
            "give a later --as-of, or check the input and its dates"
        )
    as_of, reason = _scoring_date(transactions, as_of, today, meta.get("cutoff"))
    if after:
        logger.warning("%s input rows dated after %s were quarantined (reason after_as_of) and not scored",
                       f"{after:,}", as_of)
    logger.info("scoring as of %s (%s)", as_of, reason)
    builder = FeatureBuilder.from_dict(meta["feature_builder"])
    logger.info("building features as of %s for %s transactions", as_of, f"{len(transactions):,}")
    table = customer_table(builder, transactions, as_of).rename_axis(schemas.CUSTOMER_ID)
    if table.empty:
        raise UserInputError(f"nothing to score: no customer has a purchase on or before {as_of} in {source!r}")
    return table, str(as_of), reason, ingested


def _today(timezone: str) -> dt.date:
    """The wall-clock date in the configured time zone."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(timezone)).date()


def _scoring_date(transactions: pd.DataFrame, as_of: dt.date | None, today: dt.date,
                  model_cutoff: str | None) -> tuple[dt.date, str]:
    """The cut-off to score at, and the reason: --as-of, else the input's last date on or before today."""
    if as_of is not None:
        return as_of, "--as-of"
    last = transactions[schemas.TIMESTAMP].max().date()
    trained = f"the model was trained to {model_cutoff}; " if model_cutoff else ""
    return last, (f"default: {trained}moved to the input's last transaction date on or before today "
                  f"({today}); rows dated later are quarantined; pass --as-of to choose")


def _input_data_config(source: str, recorded: dict[str, Any], config: ClvkitConfig | None) -> DataConfig:
    """How to read the input.

    With a config, its data settings are used (an unset ``date_format`` means: detect it), except
    the column mapping, which is the model's recorded one unless the config sets ``data.columns``.
    Without a config, the settings recorded with the model are used.
    """
    given = config.data if config else None
    columns = given.columns if given and "columns" in given.model_fields_set else ColumnMapping(**recorded["columns"])
    if given is not None:
        return given.model_copy(update={"source": source, "columns": columns, "observation_end": None,
                                        "calibration_end": None, "time_unit": recorded["time_unit"]})
    return DataConfig(
        source=source, columns=columns,
        validation=ValidationPolicies(**recorded["validation"]),
        timezone=recorded["timezone"], date_format=recorded["date_format"],
        dayfirst=recorded.get("dayfirst"), encoding=recorded.get("encoding"), delimiter=recorded.get("delimiter"),
        time_unit=recorded["time_unit"],
    )


def _is_feature_table(path: str, data: DataConfig) -> bool:
    """True when the file has the BTYD columns (reads only the header or the Parquet schema)."""
    names = set(read_header(path, encoding=data.encoding, delimiter=data.delimiter))
    return {schemas.FREQUENCY, schemas.RECENCY, schemas.T} <= names


def score_in_batches(model: Any, table: pd.DataFrame) -> pd.DataFrame:
    """Score through the pyfunc (signature enforced) in batches, with a progress bar on a terminal."""
    frame = signature_frame(table).rename_axis(schemas.CUSTOMER_ID).reset_index()
    starts = range(0, len(frame), SCORING_BATCH_ROWS)
    parts = []
    with counter(len(frame), "scoring customers", min_total=SCORING_BATCH_ROWS + 1) as advance:
        for start in starts:
            batch = frame.iloc[start:start + SCORING_BATCH_ROWS]
            try:
                parts.append(model.predict(batch))
            except mlflow.exceptions.MlflowException as exc:  # the scorer's input checks (HTTP 400 over REST)
                if exc.error_code != "INVALID_PARAMETER_VALUE":
                    raise
                raise UserInputError(f"the customer table cannot be scored: {exc.message}") from None
            advance(len(batch))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _summary(output: Path, scores: pd.DataFrame, as_of: str | None, quarantine: Path | None) -> PredictSummary:
    grouped = scores.groupby(schemas.RFM_SEGMENT, observed=True)
    if schemas.CHURN_LOSS_VALUE in scores.columns:
        by_segment = grouped.agg(
            customers=(schemas.CLV, "size"), current_value=(schemas.CURRENT_VALUE, "sum"), clv=(schemas.CLV, "sum"),
            churn_loss_value=(schemas.CHURN_LOSS_VALUE, "sum"),
        ).sort_values(schemas.CHURN_LOSS_VALUE, ascending=False)
        total_clv, at_risk = float(scores[schemas.CLV].sum()), float(scores[schemas.CHURN_LOSS_VALUE].sum())
    else:  # count-only model: no money columns
        by_segment = grouped.agg(customers=(schemas.P_ALIVE, "size"), p_alive=(schemas.P_ALIVE, "mean"),
                                 churn_probability=(schemas.CHURN_PROBABILITY, "mean"))
        total_clv = at_risk = 0.0
    return PredictSummary(
        output=output, customers=len(scores), total_clv=total_clv, value_at_risk=at_risk, as_of=as_of,
        by_segment=by_segment, quarantine=quarantine,
    )
