"""The MLflow pyfunc adapter of the combined scorer: it only loads state and delegates.

The artifact is a directory of JSON files (fitted parameters as numbers, XGBoost models in
XGBoost's JSON format, the feature builder's fitted state): no pickled lifetimes objects and
no training data.
"""

from __future__ import annotations

import json
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from clvkit import schemas
from clvkit.exceptions import FeatureMismatchError, IncompatibleModelError

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
ARTIFACT_KEY = "scorer"
#: Distributions whose versions the artifact records, and how many version parts must match.
VERSIONED_PACKAGES: dict[str, int] = {"clvkit": 2, "xgboost-cpu": 1, "lifetimes": 2}


def installed_versions() -> dict[str, str]:
    """Installed versions of the packages the artifact depends on."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_versions(recorded: dict[str, str], installed: dict[str, str] | None = None) -> None:
    """Refuse to load under versions whose leading parts differ from the recorded ones."""
    installed = installed or installed_versions()
    problems = []
    for name, parts in VERSIONED_PACKAGES.items():
        saved, have = recorded.get(name), installed.get(name)
        if saved is None:
            continue
        if have is None or saved.split(".")[:parts] != have.split(".")[:parts]:
            problems.append(f"{name} {saved} (installed: {have})")
    if problems:
        raise IncompatibleModelError(
            "this clvkit model was saved under " + ", ".join(problems) + "; the first "
            "version parts must match. Install the versions it was trained with "
            "(pip install -c constraints.txt ...) or retrain it with clvkit train."
        )


def save_scorer_state(directory: Path, state: dict[str, Any], boosters: dict[str, str]) -> Path:
    """Write the scorer's JSON state and boosters into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = {**state, "versions": installed_versions(), "boosters": sorted(boosters)}
    (directory / STATE_FILE).write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
    for name, text in boosters.items():
        (directory / f"{name}.xgb.json").write_text(text, encoding="utf-8")
    return directory


def load_scorer_state(directory: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read what :func:`save_scorer_state` wrote, after the version check."""
    state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    check_versions(state.get("versions", {}))
    boosters = {name: (directory / f"{name}.xgb.json").read_text(encoding="utf-8") for name in state["boosters"]}
    return state, boosters


class ClvScorerModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: input the customer table (``customer_id`` column + features)."""

    def load_context(self, context: Any) -> None:
        """Rebuild the pure scorer from the artifact directory."""
        from clvkit.models.scorer import ClvScorer

        state, boosters = load_scorer_state(Path(context.artifacts[ARTIFACT_KEY]))
        self._scorer = ClvScorer.from_dict(state["scorer"], boosters)
        self.metadata = {k: v for k, v in state.items() if k not in {"scorer", "boosters"}}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Scores per customer: ``customer_id`` + the scorer's output columns."""
        table = to_scorer_input(model_input)
        return self._scorer.score(table).rename_axis(schemas.CUSTOMER_ID).reset_index()


def signature_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float64: the signature's types, which accept missing values and JSON numbers."""
    numeric = table.select_dtypes(include=["number", "bool"]).columns
    return table.astype(dict.fromkeys(numeric, "float64"))


def to_scorer_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Index a customer table by ``customer_id`` (a column over REST, maybe the index locally)."""
    if schemas.CUSTOMER_ID in frame.columns:
        table = frame.set_index(schemas.CUSTOMER_ID)
    elif frame.index.name == schemas.CUSTOMER_ID:
        table = frame
    else:
        raise FeatureMismatchError(
            f"the customer table needs a {schemas.CUSTOMER_ID!r} column (one row per customer); "
            f"got columns {list(frame.columns)[:10]}"
        )
    table.index = table.index.astype(str)
    return table
