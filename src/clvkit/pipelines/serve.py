"""``clvkit serve``: start ``mlflow models serve`` for a scorer on loopback.

The server runs in its own process group; SIGINT and SIGTERM sent to ``clvkit serve`` are
forwarded to the whole group (mlflow and its uvicorn workers), so nothing is left on the port.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from clvkit.exceptions import UserInputError
from clvkit.io import tracking

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 5001
#: Seconds the server group gets to stop after SIGINT/SIGTERM before it is killed.
SHUTDOWN_TIMEOUT_S = 20.0
#: Seconds between checks of the server process.
POLL_INTERVAL_S = 0.2
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


def check_port_free(host: str, port: int) -> None:
    """Exit-2 error when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise UserInputError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
            raise UserInputError(
                f"port {port} on {host} is already in use (another clvkit serve or mlflow server?); "
                f"stop that process or choose another --port"
            ) from None


def run_server(model_uri: str, port: int = DEFAULT_PORT, host: str = LOOPBACK,
               on_start: Callable[[str], None] | None = None) -> int:
    """Run ``mlflow models serve`` in its own process group until it exits or we are signalled.

    SIGINT/SIGTERM are forwarded to the group; after :data:`SHUTDOWN_TIMEOUT_S` the group is
    killed. Returns 0 after a requested stop, else the server's exit code.
    """
    check_port_free(host, port)
    command = serve_command(model_uri, port, host)
    process = subprocess.Popen(command, env=serve_environment(), start_new_session=True)
    if on_start is not None:
        on_start(f"http://{host}:{port}/invocations")
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        _signal_group(process.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        return _wait(process, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _wait(process: subprocess.Popen, received: list[int]) -> int:  # type: ignore[type-arg]
    deadline: float | None = None
    while True:
        code = process.poll()
        if code is not None:
            if received:
                _signal_group(process.pid, signal.SIGTERM)  # stragglers of the group, if any
                logger.info("server stopped (%s)", signal.Signals(received[0]).name)
                return 0
            return code
        if received and deadline is None:
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        if deadline is not None and time.monotonic() > deadline:
            logger.warning("server did not stop within %.0f s; killing it", SHUTDOWN_TIMEOUT_S)
            _signal_group(process.pid, signal.SIGKILL)
        time.sleep(POLL_INTERVAL_S)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
