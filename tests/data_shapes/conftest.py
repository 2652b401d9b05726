"""Helpers of the data-shape matrix: write a shape's file and config, run the real CLI in-process.

Each case gets its own MLflow SQLite store in a temporary directory; the CLI runs through
typer's CliRunner (same code path as the ``clvkit`` console script, without a new interpreter).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from clvkit import schemas
from clvkit.cli.main import app
from clvkit.data.shapes import DataShape

#: Small boosters: the matrix checks survival, not accuracy.
FAST_OVERRIDES = (
    "churn.n_estimators=20",
    "churn.early_stopping_rounds=5",
    "models.value.n_estimators=20",
)
#: A config setting named in a message (section.key), e.g. data.calibration_end or models.bgnbd.penalizer.
SETTING_PATTERN = r"\b(data|features|clv|churn|models|evaluation|mlflow)\.[a-z_]+"
#: Scores that are probabilities, and scores that are money or counts (never negative).
PROBABILITY_COLUMNS = (schemas.P_ALIVE, "churn_probability")
NON_NEGATIVE_COLUMNS = (
    "expected_purchases", "expected_order_value", "clv", "clv_p10", "clv_p90", "churn_loss_value",
    "value_at_risk", "current_value", "current_value_trailing",
)


@dataclass
class ShapeHome:
    """A working directory with its own MLflow store, where shapes are written and trained."""

    path: Path

    def write(self, shape: DataShape, settings: dict[str, Any] | None = None) -> Path:
        """Write the shape's CSV and a config for it (``settings``: dotted key -> value); return its path."""
        source = self.path / f"{shape.name}.csv"
        shape.raw.to_csv(source, index=False)
        config: dict[str, Any] = {
            "data": {"time_unit": "W", **shape.data_config(str(source), str(self.path / f"{shape.name}.quarantine.csv"))},
            "mlflow": {"experiment": f"shapes-{shape.name}", "registered_model": f"shapes-{shape.name}"},
            "seed": 7,
        }
        for dotted, value in (settings or {}).items():  # "models.bgnbd.penalizer" -> nested keys
            *sections, key = dotted.split(".")
            node = config
            for section in sections:
                node = node.setdefault(section, {})
            node[key] = value
        path = self.path / f"{shape.name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def clvkit(self, *args: str) -> Result:
        """Run ``clvkit -q ARGS`` in-process (exceptions become exit 1 as in the console script)."""
        return CliRunner().invoke(app, ["-q", *args], catch_exceptions=True)

    def train(self, config: Path, *overrides: str) -> Result:
        """``clvkit train --json`` with the fast overrides."""
        args = ["train", "--config", str(config), "--json"]
        for override in (*FAST_OVERRIDES, *overrides):
            args += ["--set", override]
        return self.clvkit(*args)


@pytest.fixture()
def shape_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShapeHome]:
    """A fresh MLflow home (tracking URI in the environment, as users set it); the CLI runs there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield ShapeHome(tmp_path)


def describe(result: Result) -> str:
    """Exit code, stdout and stderr of a CLI run, for assertion messages."""
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def train_json(result: Result) -> dict[str, Any]:
    """The ``--json`` line of a successful ``clvkit train``."""
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_scores(scores: pd.DataFrame) -> None:
    """Every score finite, probabilities in [0, 1], money and counts non-negative, ids unique text."""
    assert len(scores) > 0
    ids = scores[schemas.CUSTOMER_ID]
    assert ids.map(type).eq(str).all(), ids.head()
    assert ids.is_unique
    numeric = scores.select_dtypes(include="number")
    bad = ~np.isfinite(numeric.to_numpy(dtype=float))
    assert not bad.any(), f"non-finite scores in {list(numeric.columns[bad.any(axis=0)])}:\n{numeric[bad.any(axis=1)].head()}"
    for column in PROBABILITY_COLUMNS:
        if column in scores:
            assert scores[column].between(0.0, 1.0).all(), scores[column].describe()
    for column in NON_NEGATIVE_COLUMNS:
        if column in scores:
            assert (scores[column] >= 0).all(), f"negative {column}:\n{scores[scores[column] < 0].head()}"
