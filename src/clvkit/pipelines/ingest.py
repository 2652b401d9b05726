"""Ingestion: read the configured source, validate, quarantine, reconcile."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clvkit.config.models import ColumnMapping, DataConfig
from clvkit.data.validation import ValidatedTransactions, check_columns, validate_transactions
from clvkit.exceptions import UserInputError
from clvkit.io.datasets import BUILTIN_DATASETS
from clvkit.io.files import check_output_path, read_transactions_source, write_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """Validated transactions and where the quarantined rows went (None when none).

    ``stale_quarantine_removed``: the quarantine file of an earlier run, deleted because this
    run quarantined nothing (None when there was none).
    """

    validated: ValidatedTransactions
    quarantine_path: Path | None
    stale_quarantine_removed: Path | None = None


def effective_columns(data: DataConfig) -> tuple[ColumnMapping, str | None]:
    """The column mapping and date format to use: a built-in dataset brings its own defaults."""
    builtin = BUILTIN_DATASETS.get(data.source)
    if builtin is None:
        return data.columns, data.date_format
    columns = data.columns if "columns" in data.model_fields_set else ColumnMapping(**builtin.column_mapping())
    return columns, data.date_format or builtin.date_format


def ingest(data: DataConfig, *, as_of: dt.date | None = None, write_quarantine: bool = True) -> IngestResult:
    """Read and validate ``data.source``; write quarantined rows to ``data.quarantine_path``.

    ``as_of`` (``clvkit predict``): rows dated after it are the ``after_as_of`` class. With
    ``write_quarantine=False`` nothing is written: the caller calls :func:`save_quarantine`
    once its own work has succeeded. When :func:`prefetch` has started reading the same data,
    its result is taken (read once).
    """
    if write_quarantine:
        check_output_path(data.quarantine_path, "data.quarantine_path", inputs=[data.source])
    validated = _take_prefetched(data, as_of)
    if validated is None:
        validated = _read_and_validate(data, as_of)
    if not write_quarantine:
        return IngestResult(validated, None)
    return save_quarantine(validated, Path(data.quarantine_path))


def prefetch(data: DataConfig, *, as_of: dt.date | None = None) -> None:
    """Start reading and validating ``data`` in a background thread; the next :func:`ingest` of the
    same data (and ``as_of``) takes the result, or raises its error.

    For a command line: the file is read and checked while the modelling code is imported. Imports
    hold the interpreter lock, the Parquet reader and the columnar checks mostly release it, so the
    two share the machine's cores. The quarantine path is checked at once; nothing is written
    from the thread (the quarantine file is written by ``ingest``, in the caller's thread), so
    the thread is a daemon: a command that fails meanwhile exits without waiting for it.
    """
    import pyarrow.parquet  # noqa: F401  (imported here, not concurrently with the caller's imports)

    check_output_path(data.quarantine_path, "data.quarantine_path", inputs=[data.source])
    _PREFETCHED.append(_Prefetch(data, as_of))


class _Prefetch:
    """One background read-and-validate of ``data``."""

    def __init__(self, data: DataConfig, as_of: dt.date | None) -> None:
        self.data, self.as_of = data, as_of
        self._validated: ValidatedTransactions | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="clvkit-ingest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._validated = _read_and_validate(self.data, self.as_of)
        except BaseException as exc:  # raised in the thread that asks for the result
            self._error = exc

    def result(self) -> ValidatedTransactions:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._validated is not None
        return self._validated


_PREFETCHED: list[_Prefetch] = []


def discard_prefetched() -> None:
    """Drop every prefetch not taken by an ingest (a command that failed before reading its data)."""
    _PREFETCHED.clear()


def _take_prefetched(data: DataConfig, as_of: dt.date | None) -> ValidatedTransactions | None:
    for pending in _PREFETCHED:
        if (pending.data is data or pending.data == data) and pending.as_of == as_of:
            _PREFETCHED.remove(pending)
            return pending.result()
    return None


def _read_and_validate(data: DataConfig, as_of: dt.date | None) -> ValidatedTransactions:
    columns, date_format = effective_columns(data)
    raw = _read_source(data.source, columns, data)
    logger.info("read %s rows from %s", f"{len(raw):,}", data.source)
    validated = validate_transactions(
        raw,
        columns,
        data.validation,
        observation_end=data.observation_end,
        timezone=data.timezone,
        date_format=date_format,
        dayfirst=data.dayfirst,
        as_of=as_of,
    )
    for line in validated.report.summary_lines():
        logger.info(line)
    return validated


def save_quarantine(validated: ValidatedTransactions, path: Path) -> IngestResult:
    """Write this run's quarantine file fresh, or remove an earlier run's when nothing was quarantined."""
    if len(validated.quarantine):
        written = write_table(validated.quarantine, path, index=False)
        logger.warning("quarantined %s rows to %s (written by this run)", f"{len(validated.quarantine):,}", written)
        return IngestResult(validated, written)
    if path.is_file():
        path.unlink()
        logger.warning("no rows quarantined: removed the quarantine file %s left by an earlier run", path)
        return IngestResult(validated, None, stale_quarantine_removed=path)
    return IngestResult(validated, None)


# --- in-memory sources (the Python API: a DataFrame as data.source) -------------------

#: Prefix of a ``data.source`` that names a DataFrame registered with :func:`dataframe_source`.
MEMORY_SCHEME = "memory:"
_FRAMES: dict[str, pd.DataFrame] = {}


@contextmanager
def dataframe_source(frame: pd.DataFrame) -> Iterator[str]:
    """Register ``frame`` as a transactions source for the block; yield its ``data.source`` name.

    A config-driven pipeline (``fit_and_evaluate(config)``) then reads the DataFrame like a
    file: only the mapped columns, validated and reconciled the same way. The frame is neither
    copied up front nor changed.
    """
    if not isinstance(frame, pd.DataFrame):
        raise UserInputError(
            f"transactions must be a pandas DataFrame (one row per transaction), got {type(frame).__name__}"
        )
    name = f"{MEMORY_SCHEME}{uuid.uuid4().hex}"
    _FRAMES[name] = frame
    try:
        yield name
    finally:
        _FRAMES.pop(name, None)


def _read_source(source: str, columns: ColumnMapping, data: DataConfig) -> pd.DataFrame:
    """Raw transactions of ``source``: a registered DataFrame (its mapped columns, copied) or a file/dataset."""
    if not source.startswith(MEMORY_SCHEME):
        return read_transactions_source(source, columns, encoding=data.encoding, delimiter=data.delimiter)
    frame = _FRAMES.get(source)
    if frame is None:
        raise UserInputError(
            f"data.source {source!r} names no DataFrame in this process; pass the DataFrame itself "
            "(clvkit.CLVModel.fit(transactions)) or give a .csv/.parquet path"
        )
    check_columns(frame, columns)
    mapped = [c for c in columns.model_dump().values() if isinstance(c, str)]
    return frame.loc[:, list(dict.fromkeys(mapped))].copy()
