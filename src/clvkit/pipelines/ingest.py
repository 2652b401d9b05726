"""Ingestion: read the configured source, validate, quarantine, reconcile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from clvkit.config.models import ColumnMapping, DataConfig
from clvkit.data.validation import ValidatedTransactions, validate_transactions
from clvkit.io.datasets import BUILTIN_DATASETS
from clvkit.io.files import read_transactions_source, write_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """Validated transactions and where the quarantined rows went (None when none)."""

    validated: ValidatedTransactions
    quarantine_path: Path | None


def effective_columns(data: DataConfig) -> tuple[ColumnMapping, str | None]:
    """The column mapping and date format to use: a built-in dataset brings its own defaults."""
    builtin = BUILTIN_DATASETS.get(data.source)
    if builtin is None:
        return data.columns, data.date_format
    columns = data.columns if "columns" in data.model_fields_set else ColumnMapping(**builtin.column_mapping())
    return columns, data.date_format or builtin.date_format


def ingest(data: DataConfig) -> IngestResult:
    """Read and validate ``data.source``; write quarantined rows to ``data.quarantine_path``."""
    columns, date_format = effective_columns(data)
    raw = read_transactions_source(data.source, columns)
    logger.info("read %s rows from %s", f"{len(raw):,}", data.source)
    validated = validate_transactions(
        raw,
        columns,
        data.validation,
        observation_end=data.observation_end,
        timezone=data.timezone,
        date_format=date_format,
    )
    path = None
    if len(validated.quarantine):
        path = write_table(validated.quarantine, data.quarantine_path, index=False)
        logger.warning("quarantined %s rows to %s", f"{len(validated.quarantine):,}", path)
    for line in validated.report.summary_lines():
        logger.info(line)
    return IngestResult(validated, path)
