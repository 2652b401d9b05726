"""The scorer artifact on disk, without MLflow: a directory of JSON files.

``state.json`` holds the fitted parameters as numbers, the feature builder's fitted state, the
data settings, the cut-off and the package versions; each XGBoost model is ``<name>.xgb.json``
in XGBoost's JSON format. No pickle, no training data. The MLflow pyfunc
(:mod:`clvkit.io.scorer_model`) and :meth:`clvkit.CLVModel.save` write the same directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from clvkit import schemas
from clvkit.exceptions import IncompatibleModelError, UserInputError

STATE_FILE = "state.json"
#: Distributions whose versions the artifact records, and how many version parts must match.
VERSIONED_PACKAGES: dict[str, int] = {"clvkit": 2, "xgboost-cpu": 2, "lifetimes": 2}
#: Version parts compared for every recorded library: major.minor.
MATCHING_VERSION_PARTS = 2


def installed_versions() -> dict[str, str]:
    """Installed versions of the packages the artifact depends on."""
    return {name: _installed(name) for name in VERSIONED_PACKAGES}


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def check_versions(recorded: dict[str, str] | None, installed: dict[str, str] | None = None) -> None:
    """Refuse to load unless every recorded library's major.minor equals the installed one.

    A state that records no versions cannot be checked and is refused too.
    """
    if not recorded:
        raise IncompatibleModelError(
            "this clvkit model records no library versions (saved by an older clvkit, or its state.json "
            "was edited), so it cannot be checked against the installed ones and is not loaded. "
            "Retrain it with clvkit train under the installed versions."
        )
    installed = installed or installed_versions()
    problems = []
    for name, saved in sorted(recorded.items()):
        have = installed.get(name) or _installed(name)
        if str(saved).split(".")[:MATCHING_VERSION_PARTS] != have.split(".")[:MATCHING_VERSION_PARTS]:
            problems.append(f"{name} {saved} (installed: {have})")
    if problems:
        raise IncompatibleModelError(
            "this clvkit model was saved under " + ", ".join(problems) + "; major.minor versions "
            "must match. Install the versions it was trained with "
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
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise UserInputError(
            f"{str(directory)!r} is not a saved clvkit model: it has no {STATE_FILE}; "
            "give the directory CLVModel.save() or clvkit train wrote"
        )
    state = json.loads(path.read_text(encoding="utf-8"))
    check_versions(state.get("versions"))
    boosters = {
        name: (Path(directory) / f"{name}.xgb.json").read_text(encoding="utf-8") for name in state["boosters"]
    }
    return state, boosters


@dataclass(frozen=True)
class DataFingerprint:
    """What identifies the data a run saw."""

    rows: int
    customers: int
    first_date: str
    last_date: str
    content_hash: str

    def as_params(self) -> dict[str, str]:
        """``data_fp.*`` params."""
        return {f"data_fp.{k}": str(v) for k, v in self.__dict__.items()}


def fingerprint(transactions: pd.DataFrame) -> DataFingerprint:
    """Rows, customers, date range and a content hash of the canonical transactions."""
    core = transactions[[c for c in (schemas.CUSTOMER_ID, schemas.TIMESTAMP, schemas.AMOUNT) if c in transactions]]
    hashed = pd.util.hash_pandas_object(core, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
    stamps = transactions[schemas.TIMESTAMP]
    return DataFingerprint(
        rows=len(transactions),
        customers=int(transactions[schemas.CUSTOMER_ID].nunique()),
        first_date=str(stamps.min().date()),
        last_date=str(stamps.max().date()),
        content_hash=digest,
    )
