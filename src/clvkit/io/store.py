"""The MLflow tracking store a run writes to: which one, and making sure it is usable.

Importing this module does not import MLflow. :func:`prepare_store` checks (and, for a new
SQLite file, creates or migrates) the store in the calling thread; :func:`prepare_in_background`
makes the cheap checks at once, so a lost folder still fails before any work, and leaves the
slow part (importing MLflow, creating a fresh SQLite store's tables: seconds of alembic
migrations) to a thread while the caller reads its data. :meth:`PendingStore.wait` then raises
the same :class:`~clvkit.exceptions.UserInputError` the synchronous path would.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Seconds a process waits for another one to finish initialising the same SQLite store.
STORE_LOCK_TIMEOUT_S = 600.0
#: Pause between two attempts at the store lock.
STORE_LOCK_POLL_S = 0.2
#: Seconds to wait for a tracking server's health endpoint.
SERVER_CHECK_TIMEOUT_S = 10.0
_PREPARED_STORES: set[str] = set()
#: How a store error ends when it stops a command before any work ...
NOTHING_TRAINED = "(nothing was trained)"
#: ... and when it surfaces once a training has fitted its models.
FITTED_NOT_LOGGED = "(the models were fitted, but nothing was logged or registered: run the training again)"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or MLflow's default SQLite file ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def prepare_store(uri: str) -> None:
    """Make sure the tracking (and registry) store at ``uri`` is usable; raise UserInputError if not.

    SQLite: the schema is created or migrated once, under an exclusive lock on ``<db>.lock``, so two
    first runs on one fresh file both succeed. HTTP(S): the server's ``/health`` must answer.
    """
    if uri in _PREPARED_STORES:
        return
    if uri.startswith("sqlite:"):
        _check_sqlite_location(uri)
        _initialise_sqlite_store(uri)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    _PREPARED_STORES.add(uri)


class PendingStore:
    """A store being prepared in a background thread; :meth:`wait` returns once it is usable."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._error: BaseException | None = None
        # not a daemon: the interpreter waits for it at exit, so a failing run never leaves a
        # half-created SQLite schema behind
        self._thread = threading.Thread(target=self._prepare, name="clvkit-mlflow-store", daemon=False)
        self._thread.start()

    def _prepare(self) -> None:
        try:
            import mlflow  # noqa: F401  (the import itself is a second of work done here)

            prepare_store(self.uri)
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc

    def raise_if_failed(self) -> None:
        """Raise the preparation's error if it has already failed; return at once otherwise (never blocks)."""
        if not self._thread.is_alive() and self._error is not None:
            raise self._error

    def wait(self, *, after_fitting: bool = False) -> str:
        """Block until the store is prepared; raise its error (UserInputError naming the fix); the URI.

        ``after_fitting``: the caller has fitted its models meanwhile, and the error says so.
        """
        self._thread.join()
        if self._error is not None:
            if after_fitting and NOTHING_TRAINED in str(self._error):
                from clvkit.exceptions import UserInputError

                raise UserInputError(str(self._error).replace(NOTHING_TRAINED, FITTED_NOT_LOGGED)) from None
            raise self._error
        return self.uri


def prepare_in_background(uri: str | None = None) -> PendingStore:
    """Check the store's location now (a missing folder, an unreachable server fail at once); prepare
    the rest in a thread. Call :meth:`PendingStore.wait` before the first MLflow call."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:"):
        _check_sqlite_location(uri)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
        _PREPARED_STORES.add(uri)
    return PendingStore(uri)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for an in-memory database)."""
    location = uri.split("://", 1)[1] if "://" in uri else ""
    location = location.split("?", 1)[0]
    if not location.startswith("/") or location in {"/", "/:memory:"}:
        return None
    return Path(location[1:])  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db


def _check_sqlite_location(uri: str) -> None:
    """The cheap checks: the folder exists and the lock file beside the database can be created."""
    path = sqlite_path(uri)
    if path is None:
        return
    if not path.parent.is_dir():
        raise _store_error(uri, f"the folder {str(path.parent)!r} does not exist")
    try:
        os.close(os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o666))
    except OSError as exc:
        raise _store_error(uri, f"cannot create the lock file {path}.lock ({exc.strerror})") from None


def _initialise_sqlite_store(uri: str) -> None:
    import fcntl
    import time

    from mlflow.tracking import MlflowClient

    path = sqlite_path(uri)
    if path is None:
        return
    try:
        lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _store_error(uri, f"cannot create the lock file {path}.lock ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + STORE_LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _store_error(uri, f"another process holds {path}.lock") from None
                time.sleep(STORE_LOCK_POLL_S)
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # creates or migrates the tracking tables
            client.search_registered_models(max_results=1)  # and the registry's, when it shares the file
        except Exception as exc:  # sqlalchemy/alembic/MLflow errors: the store is not usable
            raise _store_error(uri, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
    finally:
        os.close(lock_fd)


def _check_server(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_CHECK_TIMEOUT_S):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise _store_error(uri, f"the server does not answer ({getattr(exc, 'reason', exc)})") from None


def _store_error(uri: str, problem: str) -> Exception:
    from clvkit.exceptions import UserInputError

    return UserInputError(
        f"the MLflow tracking store {uri!r} cannot be used: {problem}. Set MLFLOW_TRACKING_URI to a "
        "sqlite:///<path>/mlflow.db in an existing, writable folder or to a running tracking server "
        f"{NOTHING_TRAINED}"
    )
