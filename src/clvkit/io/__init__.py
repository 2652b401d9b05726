"""Side effects: files, built-in datasets, MLflow tracking and the pyfunc adapter."""

from __future__ import annotations

from pathlib import Path


def pyfunc_entry_path() -> str:
    """Path of the models-from-code file that MLflow loads the scorer from."""
    return str(Path(__file__).with_name("pyfunc_entry.py"))
