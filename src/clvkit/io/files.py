"""Reading transaction files and writing tables (atomically).

Reading: CSV (encoding and delimiter configurable, the delimiter detected from the header line
when not given), Parquet and Excel ``.xlsx`` (through openpyxl). Empty files, directories,
unreadable files, undecodable bytes and files that are not what their suffix says are answered
with :class:`UserInputError` naming the file and the setting that fixes it.

Writing: a temporary file beside the target (``.clvkit-tmp-<pid>-<name>``), created with the
permissions the umask gives, flushed and fsynced, then renamed over the target; removed on any
failure and on SIGINT/SIGTERM, so the target is either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from clvkit.config.models import ColumnMapping
from clvkit.constants import CSV_SNIFF_BYTES
from clvkit.data.validation import check_columns
from clvkit.exceptions import DataValidationError, UserInputError
from clvkit.io.datasets import BUILTIN_DATASETS, read_builtin

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx",)
#: File types clvkit reads (transactions, feature tables).
INPUT_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + EXCEL_SUFFIXES
#: File types clvkit writes (scores, feature tables, quarantine files).
TABLE_SUFFIXES = (".csv", *PARQUET_SUFFIXES)
#: Temporary files of an atomic write start with this (beside their target).
TEMP_PREFIX = ".clvkit-tmp-"
#: Delimiters tried when ``data.delimiter`` is not set, most likely first.
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
#: File mode before the umask, as ``open()`` would create a file.
_NEW_FILE_MODE = 0o666
DEFAULT_ENCODING = "utf-8"


# --- reading ------------------------------------------------------------------------------


def read_transactions_source(
    source: str, columns: ColumnMapping, *, encoding: str | None = None, delimiter: str | None = None
) -> pd.DataFrame:
    """Raw transactions from a built-in dataset name or a CSV/Parquet/Excel path.

    Only the mapped columns are read; the customer id and text columns are read as strings so
    ids keep their leading zeros.
    """
    if source in BUILTIN_DATASETS:
        return read_builtin(source)
    path = Path(source)
    check_input_path(path, "data.source", builtin_hint=True)
    mapped = list(dict.fromkeys(c for c in columns.model_dump().values() if c is not None))
    text = [c for c in (columns.customer_id, columns.timestamp, columns.order_id) if c]
    header = read_header(path, encoding=encoding, delimiter=delimiter)
    try:
        check_columns(pd.DataFrame(columns=header), columns)
    except DataValidationError as exc:
        raise DataValidationError(f"{source}: {exc}{_delimiter_hint(header, delimiter)}") from None
    suffix = path.suffix.lower()
    with _reading(path, "data.source", encoding):
        if suffix in EXCEL_SUFFIXES:
            raw = pd.read_excel(path, engine="openpyxl", usecols=mapped, dtype=dict.fromkeys(text, str))
        elif suffix in PARQUET_SUFFIXES:
            raw = pd.read_parquet(path, columns=mapped)
        else:
            raw = pd.read_csv(path, usecols=mapped, dtype=dict.fromkeys(text, str),
                              encoding=encoding or DEFAULT_ENCODING, sep=_delimiter(path, encoding, delimiter))
    if raw.empty:
        raise UserInputError(f"data.source {source!r} has a header but no rows: there are no transactions to read")
    return raw


def read_table(path: str | Path, *, encoding: str | None = None, delimiter: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or Excel table (a customer feature table, for instance)."""
    path = Path(path)
    check_input_path(path, "input")
    suffix = path.suffix.lower()
    with _reading(path, "input", encoding):
        if suffix in EXCEL_SUFFIXES:
            return pd.read_excel(path, engine="openpyxl")
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return pd.read_csv(path, encoding=encoding or DEFAULT_ENCODING, sep=_delimiter(path, encoding, delimiter))


def read_header(path: str | Path, *, encoding: str | None = None, delimiter: str | None = None) -> list[str]:
    """Column names of a table file (reads the header line, the Parquet schema or the first sheet row)."""
    path = Path(path)
    check_input_path(path, "input")
    suffix = path.suffix.lower()
    with _reading(path, "input", encoding):
        if suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        if suffix in EXCEL_SUFFIXES:
            return [str(c) for c in pd.read_excel(path, engine="openpyxl", nrows=0).columns]
        return [str(c) for c in pd.read_csv(path, nrows=0, encoding=encoding or DEFAULT_ENCODING,
                                            sep=_delimiter(path, encoding, delimiter)).columns]


def check_input_path(path: Path, what: str, *, builtin_hint: bool = False) -> None:
    """Refuse, with a message, what cannot be a readable table file."""
    if path.suffix.lower() not in INPUT_SUFFIXES:
        raise UserInputError(
            f"{what} {str(path)!r}: unsupported file type {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(INPUT_SUFFIXES)}"
        )
    if path.is_dir():
        raise UserInputError(f"{what} {str(path)!r} is a directory, not a file; give the path of a table file")
    if not path.exists():
        builtins = f" or one of the built-in datasets {sorted(BUILTIN_DATASETS)}" if builtin_hint else ""
        raise UserInputError(f"{what} {str(path)!r}: no such file; give a {'/'.join(INPUT_SUFFIXES)} path{builtins}")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UserInputError(f"{what} {str(path)!r} cannot be read: {exc.strerror}; check its permissions") from None
    if path.stat().st_size == 0:
        raise UserInputError(f"{what} {str(path)!r} is empty (0 bytes); it needs a header line and rows")


@contextlib.contextmanager
def _reading(path: Path, what: str, encoding: str | None) -> Iterator[None]:
    """Translate the readers' errors on a bad file into messages naming the file and the fix."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise UserInputError(
            f"{what} {str(path)!r} is not valid {encoding or 'UTF-8'} text ({exc.reason} at byte "
            f"{exc.start}: {exc.object[exc.start:exc.start + 1]!r}); set data.encoding to the file's encoding, "
            "e.g. data.encoding: latin-1 (or cp1252), or --set data.encoding=latin-1"
        ) from None
    except pd.errors.EmptyDataError:
        raise UserInputError(f"{what} {str(path)!r} has no header line (empty file)") from None
    except pd.errors.ParserError as exc:
        raise UserInputError(
            f"{what} {str(path)!r} is not a well-formed CSV file ({str(exc).strip()}); check data.delimiter "
            "(e.g. ';') and quoting"
        ) from None
    except zipfile.BadZipFile:
        raise UserInputError(f"{what} {str(path)!r} is not an Excel .xlsx workbook; save it as .xlsx or .csv") from None
    except PermissionError as exc:
        raise UserInputError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None
    except (ValueError, OSError) as exc:
        if not _is_arrow_error(exc) and not isinstance(exc, OSError):
            raise
        raise UserInputError(f"{what} {str(path)!r} cannot be read as {path.suffix} ({exc})") from None


def _is_arrow_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("pyarrow")


def _delimiter(path: Path, encoding: str | None, delimiter: str | None) -> str:
    """``delimiter`` when given, else the candidate that splits the header line into most fields."""
    if delimiter is not None:
        return delimiter
    with path.open("rb") as handle:
        head = handle.read(CSV_SNIFF_BYTES)
    first_line = head.split(b"\n", 1)[0].decode(encoding or DEFAULT_ENCODING, errors="replace")
    counts = {d: first_line.count(d) for d in CANDIDATE_DELIMITERS}
    best = max(CANDIDATE_DELIMITERS, key=lambda d: counts[d])
    if counts[best] == 0:
        return ","
    if best != ",":
        logger.info("%s: detected the delimiter %r from the header line (set data.delimiter to choose)", path, best)
    return best


def _delimiter_hint(header: list[str], delimiter: str | None) -> str:
    """A hint when the header looks split by another delimiter than the one used."""
    if len(header) != 1:
        return ""
    for candidate in CANDIDATE_DELIMITERS:
        if candidate != delimiter and candidate in header[0]:
            return f"\nThe header looks {candidate!r}-separated: set data.delimiter: {candidate!r}."
    return ""


# --- writing ------------------------------------------------------------------------------


def check_output_path(path: str | Path, what: str = "output", inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse an output path that is a directory, an unsupported type, or one of the ``inputs``."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise UserInputError(
            f"{what} {str(path)!r}: unsupported file type {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(TABLE_SUFFIXES)}"
        )
    if path.is_dir():
        raise UserInputError(f"{what} {str(path)!r} is a directory; give a file path such as {str(path / 'scores.csv')!r}")
    target = path.resolve()
    for source in inputs:
        if Path(source).suffix and Path(source).resolve() == target:
            raise UserInputError(
                f"{what} {str(path)!r} is the input file {str(source)!r}: writing it would destroy the input; "
                "choose another --output path"
            )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserInputError(f"{what} {str(path)!r}: cannot write in {str(parent)!r} (not a writable directory)")
    return path


def write_table(table: pd.DataFrame, path: str | Path, index: bool = True) -> Path:
    """Write CSV or Parquet (by extension) atomically: a temporary file beside it, then a rename."""
    path = check_output_path(path)
    if path.suffix.lower() == ".csv":
        return atomic_write(path, lambda handle: table.to_csv(handle, index=index))
    return atomic_write(path, lambda handle: table.to_parquet(handle, index=index))


def write_json(payload: Any, path: str | Path) -> Path:
    """Write JSON atomically."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str).encode("utf-8")
    return atomic_write(Path(path), lambda handle: handle.write(text))


def temp_path(path: Path) -> Path:
    """The temporary file of an atomic write of ``path`` by this process."""
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write`` on a binary handle of a temporary file beside ``path``; fsync; rename over ``path``.

    The temporary file gets the permissions the umask gives a new file (like ``open``); it is
    removed if ``write`` fails or the process receives SIGINT/SIGTERM meanwhile.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create the folder of {str(path)!r}: {exc.strerror}") from None
    tmp = temp_path(path)
    with _terminate_as_interrupt():
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _NEW_FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, UnicodeError):
                raise UserInputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
            raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While writing, SIGTERM raises KeyboardInterrupt (as SIGINT does) so clean-up code runs.

    Only in the main thread and only where SIGTERM has its default action (a server or a caller
    with its own handler keeps it).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
