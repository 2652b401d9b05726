"""The ``clvkit`` command line: thin commands that load a config and call a pipeline."""

from __future__ import annotations

import contextlib
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

EngineOption = Annotated[str | None, typer.Option(
    "--engine", metavar="ENGINE", help="pandas or spark (default: the config's 'engine', pandas).")]


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
def data_validate(config_path: ConfigOption = None, overrides: SetOption = None, engine: EngineOption = None) -> None:
    """Read and validate the configured transactions; print the reconciliation and time frame."""
    from clvkit.config.loading import load_config
    from clvkit.pipelines.ingest import ingest

    config = _with_engine(load_config(config_path, overrides or []), engine)
    if config.engine == "spark":
        from clvkit.io.spark import session_from_config
        from clvkit.pipelines.spark_ingest import ingest_spark

        spark_result = ingest_spark(config.data, session_from_config(config.spark))
        lines = ["Reconciliation (Spark):", *("  " + line for line in spark_result.validated.report.summary_lines())]
        if spark_result.quarantine_path is not None:
            lines.append(f"  quarantine (Parquet): {spark_result.quarantine_path}")
        typer.echo("\n".join(lines))
        return
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
    engine: EngineOption = None,
) -> None:
    """Build the customer feature table (BTYD summary, RFM, behavioral) as of a date."""
    from clvkit.config.loading import load_config
    from clvkit.io.files import check_output_path, write_json, write_table

    config = _with_engine(load_config(config_path, overrides or []), engine)
    if config.engine == "spark":
        from clvkit.pipelines.spark_features import features_spark

        written = features_spark(config, _parse_date(as_of, "--as-of"), output)
        typer.echo(f"wrote {written.customers:,} customers x {written.columns} features as of {written.as_of} "
                   f"to {written.output} (Parquet directory, Spark)")
        return
    check_output_path(output, "--output", inputs=[config.data.source])  # before the work, not after
    cutoff = _parse_date(as_of, "--as-of")
    with _prefetched(config):
        from clvkit.pipelines.features import features_from_config

        result = features_from_config(config, cutoff)
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
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON object on stdout (run, model, version, alias, metrics, parameters); the human summary goes to stderr.")] = False,
    engine: EngineOption = None,
) -> None:
    """Fit BG/NBD, Gamma-Gamma, churn and value models; evaluate; log to MLflow; register the scorer."""
    from clvkit.config.loading import load_config

    config = _with_engine(load_config(config_path, overrides or []), engine)
    with _prefetched(config):
        from clvkit.pipelines.train import train as run_training

        with _stdout_for_json(as_json):
            result = run_training(config, config_path)
    for line in _train_summary(result):
        typer.echo(line, err=as_json)
    if as_json:
        typer.echo(result.to_json())


@contextlib.contextmanager
def _prefetched(config):  # type: ignore[no-untyped-def]
    """Read and validate the data in a background thread while the modelling code is imported (pandas
    engine); a read the command did not take (it failed before ingesting) is dropped at the end."""
    from clvkit.pipelines.ingest import discard_prefetched, prefetch

    if config.engine == "spark":
        yield
        return
    prefetch(config.data)
    try:
        yield
    finally:
        discard_prefetched()


def _stdout_for_json(as_json: bool):  # type: ignore[no-untyped-def]
    """With --json, anything a library prints goes to stderr: stdout holds only the JSON."""
    import contextlib
    import sys

    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def _train_summary(result) -> list[str]:  # type: ignore[no-untyped-def]
    m = result.metrics
    lines = [
        f"run {result.run_id} in experiment {result.experiment!r}",
        f"time frame: calibration to {result.time_frame['calibration_end']}, "
        f"holdout to {result.time_frame['observation_end']}",
        "BG/NBD (calibration): " + ", ".join(f"{k}={v:.4g}" for k, v in result.bgnbd.items()),
        "Gamma-Gamma (calibration): " + ", ".join(f"{k}={v:.4g}" for k, v in result.gamma_gamma.items()),
        f"served CLV: {result.clv_source} ({result.clv_source_reason})",
    ]
    if result.refit:
        lines.append(f"served scorer refit on all history up to {result.time_frame['observation_end']}")
    for key in ("clv_gini_norm", "baseline_hist_gini_norm", "churn_pr_auc", "baseline_palive_churn_pr_auc"):
        if key in m:
            lines.append(f"  {key:32s} {m[key]:.4f}")
    if m.get("served_metrics_losing_to_baseline", 0) > 0:
        lines.append(f"WARNING: the served models lose to the best baseline on "
                     f"{int(m['served_metrics_losing_to_baseline'])} metric(s); see the lift_* metrics")
    lines.append(f"registered {result.registered_model} v{result.version} -> alias {result.alias!r}: {result.alias_reason}")
    lines.append(f"model: models:/{result.registered_model}@{result.alias}")
    return lines


@app.command("predict")
@handle_errors
def predict(
    model: Annotated[str, typer.Option("--model", "-m", metavar="URI", help="Model URI, e.g. models:/clvkit-cdnow@champion.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Scores file (.parquet or .csv), written atomically.")],
    input_path: Annotated[str | None, typer.Option("--input", "-i", metavar="PATH", help="Transactions or a customer feature table; default: the config's data.source.")] = None,
    config_path: ConfigOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Score as of this date (default: the input's last transaction date on or before today; later rows are quarantined).")] = None,
    overrides: SetOption = None,
    retention_list: Annotated[Path | None, typer.Option("--retention-list", metavar="PATH", help="Also write the customers ranked by churn-loss value (.csv or .parquet), with current and future value, quadrant and action, tier, segment, P(alive) and churn.")] = None,
    top: Annotated[int, typer.Option("--top", metavar="N", min=1, help="Customers in the retention list.")] = 1_000,
    engine: EngineOption = None,
) -> None:
    """Batch-score customers with a registered scorer."""
    from clvkit.config.loading import load_config
    from clvkit.pipelines.predict import predict as run_predict

    config = load_config(config_path, overrides or []) if config_path or overrides else None
    if _engine_of(config, engine) == "spark":
        from clvkit.pipelines.spark_predict import predict_spark

        scored = predict_spark(model, output, input_path, config, _parse_date(as_of, "--as-of"))
        typer.echo(f"scored {scored.customers:,} customers as of {scored.as_of} on Spark -> {scored.output} "
                   f"(Parquet directory); total CLV {scored.total_clv:,.2f}")
        if scored.quarantine is not None:
            typer.echo(f"input rows quarantined (not scored): see {scored.quarantine}")
        return
    summary = run_predict(model, output, input_path, config, _parse_date(as_of, "--as-of"),
                          retention_list_path=retention_list, top=top)
    typer.echo(f"scored {summary.customers:,} customers" + (f" as of {summary.as_of}" if summary.as_of else "")
               + f" -> {summary.output}")
    typer.echo(f"total CLV {summary.total_clv:,.2f}; churn-loss value {summary.value_at_risk:,.2f}")
    if summary.retention_list is not None:
        typer.echo(f"retention list: top {summary.retention_customers:,} customers by churn-loss value -> "
                   f"{summary.retention_list}")
    if summary.as_of_reason:
        typer.echo(f"as of {summary.as_of}: {summary.as_of_reason}")
    if summary.quarantine is not None:
        typer.echo(f"input rows quarantined (not scored): see {summary.quarantine} (written by this run)")
    if summary.stale_quarantine_removed is not None:
        typer.echo(f"no rows quarantined: removed {summary.stale_quarantine_removed} left by an earlier run")
    typer.echo("by RFM segment:")
    typer.echo(summary.by_segment.to_string(float_format=lambda v: f"{v:,.2f}"))


@app.command("serve")
@handle_errors
def serve(
    model: Annotated[str, typer.Option("--model", "-m", metavar="URI", help="Model URI, e.g. models:/clvkit-cdnow@champion.")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1.")] = 5001,
) -> None:
    """Serve a scorer over REST with `mlflow models serve` on 127.0.0.1 (POST /invocations)."""
    from clvkit.pipelines.serve import run_server

    def started(url: str) -> None:
        typer.echo(f"serving {model} on {url} (Ctrl-C or SIGTERM stops)", err=True)

    raise typer.Exit(run_server(model, port, on_start=started))


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
    metric: Annotated[str, typer.Option("--metric", help="Sort by this metric (its direction from the metric registry).")] = "clv_gini_norm",
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (fits --width columns), csv or json (every column).")] = "table",
    metrics: Annotated[str | None, typer.Option("--metrics", metavar="NAME,...", help="Metrics to show (default: the key metrics).")] = None,
    params: Annotated[str | None, typer.Option("--params", metavar="KEY,...", help="Params to show, e.g. clv.horizon_months,models.churn.max_depth.")] = None,
    width: Annotated[int, typer.Option("--width", min=40, help="Widest table line (table format).")] = 100,
) -> None:
    """Print the runs of an experiment with their key metrics side by side, best first."""
    from clvkit.pipelines.compare import compare_runs, format_runs

    table = compare_runs(experiment, metric, metrics=_names(metrics), params=_names(params))
    if table.empty:
        typer.echo(f"experiment {experiment!r} has no runs", err=True)
        if fmt == "json":
            typer.echo("[]")
        return
    text, dropped = format_runs(table, fmt, width)
    typer.echo(text.rstrip("\n"))
    if dropped:
        typer.echo(f"({len(dropped)} column(s) left out to fit {width} characters: {', '.join(dropped)}; "
                   "use --format csv or json, --metrics, or --width)", err=True)


def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


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


def _engine_of(config, engine: str | None) -> str:  # type: ignore[no-untyped-def]
    """--engine, else the config's engine, else pandas; an unknown name is a usage error."""
    from clvkit.exceptions import UserInputError

    if engine is not None and engine not in ("pandas", "spark"):
        raise UserInputError(f"--engine {engine!r}: choose pandas or spark")
    return engine or (config.engine if config is not None else "pandas")


def _with_engine(config, engine: str | None):  # type: ignore[no-untyped-def]
    """The config with --engine applied."""
    chosen = _engine_of(config, engine)
    return config if chosen == config.engine else config.model_copy(update={"engine": chosen})


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
        lines.append(f"  quarantine file: {result.quarantine_path} (written by this run)")
    if result.stale_quarantine_removed is not None:
        lines.append(f"  no rows quarantined: removed {result.stale_quarantine_removed} left by an earlier run")
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
