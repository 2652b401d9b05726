"""The ``clvkit`` command line: thin commands that load a config and call a pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clvkit.cli._common import ConfigOption, SetOption, configure_logging, handle_errors

app = typer.Typer(
    name="clvkit",
    help="Customer lifetime value from raw transactions: features, BG/NBD + Gamma-Gamma, "
    "XGBoost churn, one MLflow scorer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Validate configs and print their JSON Schema.", no_args_is_help=True)
data_app = typer.Typer(help="Check transaction data and simulate test data.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """Customer lifetime value from raw transactions."""
    configure_logging(verbose, quiet)


@config_app.command("validate")
@handle_errors
def config_validate(
    path: Annotated[str, typer.Argument(help="YAML config file.")],
    overrides: SetOption = None,
    show: Annotated[bool, typer.Option("--show", help="Print the full config with defaults.")] = False,
) -> None:
    """Validate a config file (and overrides); print the resolved config with --show."""
    from clvkit.config.loading import config_hash, config_to_yaml, load_config

    config = load_config(path, overrides or [])
    typer.echo(f"{path}: valid (config hash {config_hash(config)})")
    if show:
        typer.echo(config_to_yaml(config))


@config_app.command("schema")
@handle_errors
def config_schema() -> None:
    """Print the JSON Schema of a config, for editor completion."""
    from clvkit.config.models import ClvkitConfig

    typer.echo(json.dumps(ClvkitConfig.model_json_schema(), indent=2))


@data_app.command("validate")
@handle_errors
def data_validate(config_path: ConfigOption = None, overrides: SetOption = None) -> None:
    """Read and validate the configured transactions; print the reconciliation and time frame."""
    from clvkit.config.loading import load_config
    from clvkit.pipelines.ingest import ingest

    config = load_config(config_path, overrides or [])
    result = ingest(config.data)
    typer.echo(_ingest_summary(result, config))


@data_app.command("simulate")
@handle_errors
def data_simulate(
    customers: Annotated[int, typer.Option("--customers", "-n", min=1, help="Number of customers.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Transactions file (.csv or .parquet).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, identical bytes.")] = 42,
) -> None:
    """Simulate transactions from BG/NBD + Gamma-Gamma; save the latent truth beside them."""
    from clvkit.pipelines.simulate import simulate_to_files

    paths = simulate_to_files(customers, seed, output)
    for what, path in paths.items():
        typer.echo(f"{what}: {path}")


def _ingest_summary(result, config) -> str:  # type: ignore[no-untyped-def]
    from clvkit.data.timeframe import resolve_time_frame
    from clvkit.exceptions import UserInputError

    report = result.validated.report
    lines = ["Reconciliation:", *("  " + line for line in report.summary_lines())]
    if result.quarantine_path is not None:
        lines.append(f"  quarantine file: {result.quarantine_path}")
    try:
        frame = resolve_time_frame(
            result.validated.transactions, config.data.calibration_end, config.data.observation_end,
            config.clv.horizon_months,
        )
        lines.append(f"Time frame: {frame.describe()}")
    except UserInputError as exc:
        lines.append(f"Time frame: not usable for training: {exc}")
    return "\n".join(lines)


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
