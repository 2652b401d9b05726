"""Reading transaction files and writing tables (atomically)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from clvkit.config.models import ColumnMapping
from clvkit.data.validation import check_columns
from clvkit.exceptions import UserInputError
from clvkit.io.datasets import BUILTIN_DATASETS, read_builtin

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_transactions_source(source: str, columns: ColumnMapping) -> pd.DataFrame:
    """Raw transactions from a built-in dataset name or a CSV/Parquet path.

    Only the mapped columns are read from files; the customer id and any text columns
    are read as strings so ids keep their leading zeros.
    """
    if source in BUILTIN_DATASETS:
        return read_builtin(source)
    path = Path(source)
    _check_table_path(path, "data.source")
    if not path.exists():
        raise UserInputError(
            f"data.source {source!r}: no such file; give a .csv/.parquet path or one of the "
            f"built-in datasets {sorted(BUILTIN_DATASETS)}"
        )
    mapped = [c for c in columns.model_dump().values() if c is not None]
    if path.suffix.lower() == ".csv":
        check_columns(pd.read_csv(path, nrows=0), columns)
        text = [c for c in (columns.customer_id, columns.timestamp, columns.order_id) if c]
        return pd.read_csv(path, usecols=mapped, dtype=dict.fromkeys(text, str))
    import pyarrow.parquet as pq

    names = pq.ParquetFile(path).schema_arrow.names
    check_columns(pd.DataFrame(columns=names), columns)
    return pd.read_parquet(path, columns=mapped)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table."""
    path = Path(path)
    _check_table_path(path, "input")
    if not path.exists():
        raise UserInputError(f"{str(path)!r}: no such file")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def write_table(table: pd.DataFrame, path: str | Path, index: bool = True) -> Path:
    """Write CSV or Parquet (by extension) atomically: a temporary file, then a rename."""
    path = Path(path)
    _check_table_path(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".csv":
            table.to_csv(tmp_name, index=index)
        else:
            table.to_parquet(tmp_name, index=index)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_json(payload: Any, path: str | Path) -> Path:
    """Write JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _check_table_path(path: Path, what: str) -> None:
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise UserInputError(
            f"{what} {str(path)!r}: unsupported file type {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(TABLE_SUFFIXES)}"
        )
