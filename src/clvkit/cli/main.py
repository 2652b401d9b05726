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
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Transactions file (.csv or .parquet).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, identical bytes.")] = 42,
) -> None:
    """Simulate transactions from BG/NBD + Gamma-Gamma; save the latent truth beside them."""
    from clvkit.pipelines.simulate import simulate_to_files

    paths = simulate_to_files(customers, seed, output)
    for what, path in paths.items():
        typer.echo(f"{what}: {path}")


@app.command("features")
@handle_errors
def features(
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Customer table (.parquet or .csv).")],
    config_path: ConfigOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Cut-off date (whole day included); default observation_end.")] = None,
    overrides: SetOption = None,
) -> None:
    """Build the customer feature table (BTYD summary, RFM, behavioral) as of a date."""
    from clvkit.config.loading import load_config
    from clvkit.io.files import write_json, write_table
    from clvkit.pipelines.features import features_from_config

    config = load_config(config_path, overrides or [])
    result = features_from_config(config, _parse_date(as_of, "--as-of"))
    write_table(result.table, output)
    meta = write_json(result.metadata, output.with_name(output.name + ".meta.json"))
    typer.echo(f"wrote {len(result.table):,} customers x {result.table.shape[1]} features as of "
               f"{result.metadata['as_of']} to {output} (metadata: {meta})")
    if result.metadata["skipped_features"]:
        typer.echo(f"skipped (source column absent): {', '.join(result.metadata['skipped_features'])}")


@app.command("train")
@handle_errors
def train(
    config_path: ConfigOption = None,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line: run, model, version, alias, metrics, parameters.")] = False,
) -> None:
    """Fit BG/NBD, Gamma-Gamma, churn and value models; evaluate; log to MLflow; register the scorer."""
    from clvkit.config.loading import load_config
    from clvkit.pipelines.train import train as run_training

    config = load_config(config_path, overrides or [])
    result = run_training(config, config_path)
    m = result.metrics
    typer.echo(f"run {result.run_id} in experiment {result.experiment!r}")
    typer.echo(f"time frame: calibration to {result.time_frame['calibration_end']}, "
               f"holdout to {result.time_frame['observation_end']}")
    typer.echo("BG/NBD (calibration): " + ", ".join(f"{k}={v:.4g}" for k, v in result.bgnbd.items()))
    typer.echo("Gamma-Gamma (calibration): " + ", ".join(f"{k}={v:.4g}" for k, v in result.gamma_gamma.items()))
    typer.echo(f"served CLV: {result.clv_source} ({result.clv_source_reason})")
    if result.refit:
        typer.echo(f"served scorer refit on all history up to {result.time_frame['observation_end']}")
    for key in ("clv_gini_norm", "baseline_hist_gini_norm", "churn_pr_auc", "baseline_palive_churn_pr_auc"):
        if key in m:
            typer.echo(f"  {key:32s} {m[key]:.4f}")
    if m.get("served_metrics_losing_to_baseline", 0) > 0:
        typer.echo(f"WARNING: the served models lose to the best baseline on "
                   f"{int(m['served_metrics_losing_to_baseline'])} metric(s); see the lift_* metrics")
    typer.echo(f"registered {result.registered_model} v{result.version} -> alias {result.alias!r}: {result.alias_reason}")
    typer.echo(f"model: models:/{result.registered_model}@{result.alias}")
    if as_json:
        typer.echo(result.to_json())


@app.command("predict")
@handle_errors
def predict(
    model: Annotated[str, typer.Option("--model", "-m", metavar="URI", help="Model URI, e.g. models:/clvkit-cdnow@champion.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Scores file (.parquet or .csv), written atomically.")],
    input_path: Annotated[str | None, typer.Option("--input", "-i", metavar="PATH", help="Transactions or a customer feature table; default: the config's data.source.")] = None,
    config_path: ConfigOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Score as of this date (default: last transaction date).")] = None,
    overrides: SetOption = None,
) -> None:
    """Batch-score customers with a registered scorer."""
    from clvkit.config.loading import load_config
    from clvkit.pipelines.predict import predict as run_predict

    config = load_config(config_path, overrides or []) if config_path or overrides else None
    summary = run_predict(model, output, input_path, config, _parse_date(as_of, "--as-of"))
    typer.echo(f"scored {summary.customers:,} customers" + (f" as of {summary.as_of}" if summary.as_of else "")
               + f" -> {summary.output}")
    typer.echo(f"total CLV {summary.total_clv:,.2f}; value at risk {summary.value_at_risk:,.2f}")
    if summary.quarantine is not None:
        typer.echo(f"input rows quarantined (not scored): see {summary.quarantine}")
    typer.echo("value at risk by RFM segment:")
    typer.echo(summary.by_segment.to_string(float_format=lambda v: f"{v:,.2f}"))


@app.command("serve")
@handle_errors
def serve(
    model: Annotated[str, typer.Option("--model", "-m", metavar="URI", help="Model URI, e.g. models:/clvkit-cdnow@champion.")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1.")] = 5001,
) -> None:
    """Serve a scorer over REST with `mlflow models serve` on 127.0.0.1 (POST /invocations)."""
    import subprocess

    from clvkit.pipelines.serve import serve_command, serve_environment

    command = serve_command(model, port)
    typer.echo(f"serving {model} on http://127.0.0.1:{port}/invocations (Ctrl-C stops)", err=True)
    raise typer.Exit(subprocess.call(command, env=serve_environment()))


@app.command("backtest")
@handle_errors
def backtest(
    config_path: ConfigOption = None,
    cutoffs: Annotated[int, typer.Option("--cutoffs", "-n", min=1, help="Number of evenly spaced cut-offs.")] = 3,
    dates: Annotated[str | None, typer.Option("--dates", metavar="YYYY-MM-DD,...", help="Comma-separated cut-off dates instead of --cutoffs.")] = None,
    overrides: SetOption = None,
) -> None:
    """Rolling-origin backtest: fit and evaluate at several cut-offs (nested MLflow runs)."""
    from clvkit.config.loading import load_config
    from clvkit.pipelines.backtest import backtest as run_backtest

    config = load_config(config_path, overrides or [])
    date_list = [_parse_date(d.strip(), "--dates") for d in dates.split(",")] if dates else None
    result = run_backtest(config, cutoffs, date_list)
    typer.echo(f"backtest run {result.parent_run_id}: {len(result.per_cutoff)} cut-offs")
    shown = [m for m in ("clv_gini_norm", "clv_spearman", "baseline_hist_gini_norm", "churn_pr_auc",
                         "baseline_palive_churn_pr_auc", "purchases_mae") if m in result.summary.index]
    typer.echo(result.summary.loc[shown].to_string(float_format=lambda v: f"{v:.4f}"))


@app.command("compare")
@handle_errors
def compare(
    experiment: Annotated[str, typer.Option("--experiment", "-e", metavar="NAME", help="MLflow experiment name.")],
    metric: Annotated[str, typer.Option("--metric", help="Sort by this metric (higher is better).")] = "clv_gini_norm",
) -> None:
    """Print the runs of an experiment with their key metrics side by side, best first."""
    from clvkit.pipelines.compare import compare_runs

    table = compare_runs(experiment, metric)
    if table.empty:
        typer.echo(f"experiment {experiment!r} has no runs")
        return
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@app.command("report")
@handle_errors
def report(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a training run.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write the run's evaluation report: metrics vs baselines, every plot, segment table (one HTML file)."""
    from clvkit.pipelines.report import render_run_report

    html = render_run_report(run_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(html) / 1024:,.0f} KiB); open it in a browser")


def _parse_date(value: str | None, option: str):  # type: ignore[no-untyped-def]
    import datetime as dt

    from clvkit.exceptions import UserInputError

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


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
