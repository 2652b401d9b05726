"""Built-in datasets read from the files that ship inside the installed lifetimes package.

``cdnow``: the CDNOW master file (69,659 lines, 23,570 customers, 1997-01 to 1998-06).
``cdnow_sample``: the 1/10 sample (6,919 lines, 2,357 customers) of Fader, Hardie & Lee (2005).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clvkit.exceptions import UserInputError


@dataclass(frozen=True)
class BuiltinDataset:
    """How to read one built-in dataset into raw columns."""

    filename: str
    columns: tuple[str, ...]
    header_rows: int
    description: str
    date_format: str = "%Y%m%d"

    def column_mapping(self) -> dict[str, str | None]:
        """The clvkit column mapping of this file."""
        return {"customer_id": "customer_id", "timestamp": "date", "amount": "amount", "quantity": "quantity"}


#: Raw column names of the built-in files; the default column mapping maps them.
BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "cdnow": BuiltinDataset(
        filename="CDNOW_master.txt",
        columns=("customer_id", "date", "quantity", "amount"),
        header_rows=1,
        description="CDNOW master: 69,659 lines, 23,570 customers, 1997-01-01 to 1998-06-30",
    ),
    "cdnow_sample": BuiltinDataset(
        filename="CDNOW_sample.txt",
        columns=("customer_id", "sample_id", "date", "quantity", "amount"),
        header_rows=0,
        description="CDNOW 1/10 sample of Fader, Hardie & Lee (2005): 6,919 lines, 2,357 customers",
    ),
}


def _lifetimes_datasets_dir() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise UserInputError(
            "built-in datasets need the 'lifetimes' package, which is not installed; "
            "install clvkit with its dependencies (make demo) or point data.source at a file"
        )
    return Path(spec.origin).parent / "datasets"


def builtin_path(name: str) -> Path:
    """Path of the file behind built-in dataset ``name``."""
    if name not in BUILTIN_DATASETS:
        raise UserInputError(
            f"unknown built-in dataset {name!r}; built-ins are {sorted(BUILTIN_DATASETS)}, "
            "or give a path to a .csv or .parquet file"
        )
    return _lifetimes_datasets_dir() / BUILTIN_DATASETS[name].filename


def read_builtin(name: str) -> pd.DataFrame:
    """Raw table of built-in dataset ``name``: ids as strings, dates as ``YYYYMMDD`` strings."""
    spec = BUILTIN_DATASETS.get(name)
    path = builtin_path(name)
    assert spec is not None
    return pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        skiprows=spec.header_rows,
        names=list(spec.columns),
        dtype={"customer_id": str, "sample_id": str, "date": str},
        engine="c",
    )


def load_builtin_transactions(name: str) -> pd.DataFrame:
    """Built-in dataset in canonical columns (customer_id, timestamp, amount, quantity).

    A convenience for tests, notebooks and benchmarks: no validation policy is applied
    (the CDNOW files hold zero amounts and exact duplicate lines, all kept).
    """
    raw = read_builtin(name)
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype("float64"),
            "quantity": raw["quantity"].astype("int64"),
        }
    )
