"""``clvkit serve``: start ``mlflow models serve`` for a scorer on loopback."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from clvkit.exceptions import UserInputError
from clvkit.io import tracking

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 5001


def serve_command(model_uri: str, port: int = DEFAULT_PORT, host: str = LOOPBACK, workers: int = 1) -> list[str]:
    """The ``mlflow models serve`` command line (the current environment, no new env built)."""
    local = Path(sys.executable).with_name("mlflow")
    mlflow_exe = str(local) if local.exists() else shutil.which("mlflow")
    if mlflow_exe is None:
        raise UserInputError("the 'mlflow' command is not installed in this environment; run make demo")
    return [mlflow_exe, "models", "serve", "-m", model_uri, "--env-manager", "local",
            "-h", host, "-p", str(port), "-w", str(workers)]


def serve_environment() -> dict[str, str]:
    """Environment with the tracking URI resolved as ``clvkit train`` does, and this
    environment's scripts first on PATH (MLflow starts ``uvicorn`` by name)."""
    scripts = str(Path(sys.executable).parent)
    path = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": tracking.configure_tracking()}
