"""End-to-end fixtures: real MLflow (SQLite) in a temporary home, real CLI subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CLVKIT = str(Path(sys.executable).with_name("clvkit"))
COMMAND_TIMEOUT_S = 300


@dataclass
class MlflowHome:
    """A working directory with its own MLflow store."""

    path: Path
    env: dict[str, str]

    def clvkit(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the installed ``clvkit`` command here."""
        result = subprocess.run([CLVKIT, "-q", *args], cwd=self.path, env=self.env, capture_output=True,
                                text=True, timeout=COMMAND_TIMEOUT_S, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"clvkit {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def train_json(self, config: str, *overrides: str) -> dict:
        """``clvkit train --json``: the parsed last stdout line."""
        args = ["train", "--config", str(ROOT / config), "--json"]
        for override in overrides:
            args += ["--set", override]
        result = self.clvkit(*args)
        return json.loads(result.stdout.strip().splitlines()[-1])


def make_home(path: Path) -> MlflowHome:
    """A fresh MLflow home (tracking URI in the environment, as users set it)."""
    path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_URI"}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}", "PYTHONHASHSEED": "0"}
    return MlflowHome(path, env)


@pytest.fixture(scope="session")
def fhl_home(tmp_path_factory: pytest.TempPathFactory) -> MlflowHome:
    """A home in which configs/cdnow_fhl2005.yaml has been trained once (version 1)."""
    home = make_home(tmp_path_factory.mktemp("fhl"))
    home.first_run = home.train_json("configs/cdnow_fhl2005.yaml")  # type: ignore[attr-defined]
    return home


@pytest.fixture()
def in_home(fhl_home: MlflowHome, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowHome]:
    """Run in-process code against the fhl home's MLflow store."""
    monkeypatch.chdir(fhl_home.path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fhl_home.env["MLFLOW_TRACKING_URI"])
    yield fhl_home
