"""Shared CLI plumbing: logging setup, error handling with exit codes, option types."""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from clvkit.constants import EXIT_BAD_INPUT, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED
from clvkit.exceptions import UserInputError

F = TypeVar("F", bound=Callable[..., Any])

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config value: section.key=value (repeatable), e.g. --set clv.horizon_months=24.",
        metavar="KEY=VALUE",
    ),
]
ConfigOption = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (see configs/).", metavar="PATH")
]


def configure_logging(verbose: int, quiet: bool) -> None:
    """Configure the root logger once, for the CLI only."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "py4j", "git"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if quiet:
        quiet_mlflow()


def quiet_mlflow() -> None:
    """Only MLflow's warnings and errors, through our handler: MLflow configures its own logger
    at INFO when imported and prints registry events with ``eprint`` to its own stream."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # for subprocesses (clvkit serve)
    from mlflow.utils import logging_utils

    logging_utils.disable_logging()  # eprint's stream ("Created version ...")
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.handlers.clear()
    mlflow_logger.propagate = True  # warnings reach the root handler configured above
    mlflow_logger.setLevel(logging.WARNING)


def handle_errors(func: F) -> F:
    """Turn clvkit errors into a message and exit code 2; anything else into exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except UserInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            typer.echo("interrupted (temporary files of unfinished writes were removed)", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OSError as exc:
            if exc.filename is None:  # not about a file the user named: an internal error below
                return _internal_error(exc)
            typer.echo(f"error: cannot access {str(exc.filename)!r}: {exc.strerror or exc}; check the path "
                       "and its permissions", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as exc:  # the CLI's last line of defence: exit code 1
            return _internal_error(exc)

    return wrapper  # type: ignore[return-value]


def _internal_error(exc: BaseException) -> None:
    logging.getLogger("clvkit.cli").debug("internal error", exc_info=True)
    typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
    typer.echo("".join(traceback.format_exception(exc)[-3:]), err=True)
    raise typer.Exit(EXIT_INTERNAL_ERROR) from None
