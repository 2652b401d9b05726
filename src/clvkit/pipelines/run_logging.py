"""The MLflow record of a training run: what a user sees in the MLflow UI and what ``compare`` reads.

* The run is opened before fitting (:func:`training_run`) so its duration is the training's.
* Its name says what was trained: ``<registered model>-h<horizon>m-<cut-off>``.
* Its description (the ``mlflow.note.content`` tag, markdown) gives the headline figures
  against the baselines and the choice made; the model version's description gives the
  champion decision.
* The training data is logged with ``mlflow.log_input``: name, fingerprint, rows, customers,
  time span.
* Metric names are grouped at logging time with a prefix the UI groups charts by
  (:data:`METRIC_GROUPS`, e.g. ``baseline/hist_gini_norm``); a few key metrics
  (:data:`KEY_METRICS` and the primary metric) keep their plain names so the UI shows them
  apart and first. :func:`internal_metrics` maps logged names back to the names used in code.
* Params hold no ``None`` values.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.tracking import MlflowClient

from clvkit import __version__, schemas
from clvkit.config.loading import config_hash, config_to_yaml, flatten_config
from clvkit.config.models import ClvkitConfig
from clvkit.evaluation.report import figure_to_png
from clvkit.io import tracking
from clvkit.io.metric_names import (  # noqa: F401  (re-exported)
    KEY_METRICS,
    METRIC_GROUPS,
    grouped_metrics,
    internal_metrics,
    internal_name,
    metric_key,
)
from clvkit.io.scorer_model import (
    installed_versions,
    save_scorer_state,
    scorer_signature,
    signature_frame,
)
from clvkit.pipelines.report import render_report

logger = logging.getLogger(__name__)

#: Artifact folders of a training run's plots, tables and per-customer holdout predictions.
PLOTS_FOLDER = "plots"
TABLES_FOLDER = "tables"
PREDICTIONS_FOLDER = "evaluation"
PREDICTIONS_FILE = "holdout_predictions.parquet"
#: Rows of the input example logged with the model.
INPUT_EXAMPLE_ROWS = 5
#: Headline rows of the run description: served metric -> its baselines.
HEADLINE = {
    "clv_gini_norm": ("baseline_hist_gini_norm", "baseline_rfm_gini_norm"),
    "clv_spearman": ("baseline_hist_spearman", "baseline_rfm_spearman"),
    "clv_top20_capture": ("baseline_hist_top20_capture", "baseline_rfm_top20_capture"),
    "churn_pr_auc": ("baseline_palive_churn_pr_auc", "baseline_closed_form_churn_pr_auc",
                     "baseline_recency_churn_pr_auc"),
    "churn_roc_auc": ("baseline_palive_churn_roc_auc", "baseline_closed_form_churn_roc_auc",
                      "baseline_recency_churn_roc_auc"),
}
DESCRIPTION_TAG = "mlflow.note.content"
RUN_NAME_TAG = "mlflow.runName"


def run_name(config: ClvkitConfig, cutoff: object | None = None) -> str:
    """``<registered model>-h<horizon>m[-<cut-off>]``."""
    name = f"{config.mlflow.registered_model}-h{config.clv.horizon_months}m"
    return f"{name}-{cutoff}" if cutoff is not None else name


@contextmanager
def training_run(config: ClvkitConfig, start_time_ms: int | None = None) -> Iterator[Any]:
    """The MLflow run of one training, opened before fitting so its duration is true.

    ``start_time_ms`` (epoch milliseconds): when the training began, for a run opened once the
    data has been read (``clvkit train`` reads it while the store is prepared); the run's
    duration is then still the whole training's.
    """
    experiment = mlflow.set_experiment(config.mlflow.experiment)
    tags = {"kind": "train", "clvkit.version": __version__, "config_hash": config_hash(config)}
    if start_time_ms is None:
        with mlflow.start_run(run_name=run_name(config)) as run:
            mlflow.set_tags(tags)
            yield run
        return
    from mlflow.tracking.context.registry import resolve_tags

    # resolve_tags: the tags mlflow.start_run adds (user, source) to a run it creates
    created = MlflowClient().create_run(experiment.experiment_id, start_time=start_time_ms,
                                        tags=resolve_tags(tags), run_name=run_name(config))
    with mlflow.start_run(run_id=created.info.run_id) as run:
        yield run


def log_training(config: ClvkitConfig, config_path: str | None, outcome: Any) -> Any:
    """Log a training outcome into the active run (or a new one) and register its scorer."""
    if mlflow.active_run() is not None:
        return _log_training(config, config_path, outcome, mlflow.active_run())
    with training_run(config) as run:
        return _log_training(config, config_path, outcome, run)


def _log_training(config: ClvkitConfig, config_path: str | None, outcome: Any, run: Any) -> Any:
    from clvkit.pipelines.train import TrainResult

    logger.info("stage: logging the run to MLflow")
    o = outcome
    frame, reconciliation, fp, served, scorer, evaluation = (
        o.frame, o.reconciliation, o.fingerprint, o.served, o.scorer, o.evaluation)
    primary = config.evaluation.primary_metric
    skipped = tuple(getattr(served.builder, "skipped_features_", ()))
    if skipped:  # once per run (the feature builder itself logs it at debug level, once per fit)
        logger.info("behavioural features skipped (source column absent): %s", ", ".join(skipped))
    tags = {
        RUN_NAME_TAG: run_name(config, served.as_of), "clvkit.version": __version__, "config_hash": config_hash(config),
        tracking.FINGERPRINT_TAG: fp.content_hash, "clv_source": evaluation.chosen_clv_source,
        "clv_source_reason": evaluation.choice_reason[:tracking.MAX_PARAM_LENGTH],
        "refit_on_full_history": str(o.refit), "time_frame": frame.describe(),
        tracking.PRIMARY_METRIC_TAG: primary,
    }
    mlflow.set_tags(tags)
    tracking.log_params(_params(config, fp, frame))
    log_dataset(config, fp, reconciliation)
    mlflow.log_text(config_to_yaml(config), "config/resolved.yaml")
    if config_path:
        mlflow.log_artifact(config_path, "config")
    mlflow.log_dict(reconciliation, "data/reconciliation.json")
    metrics = {**evaluation.metrics, "data_rows_read": reconciliation["rows_read"],
               "data_rows_quarantined": reconciliation["rows_quarantined"], **training_param_metrics(outcome)}
    mlflow.log_metrics(grouped_metrics(metrics, primary))
    images, tables = _log_artifacts(outcome)
    report = render_report(run.info.run_id, run.info.experiment_id, metrics, tags, images, tables)
    mlflow.log_text(report, "report.html")  # from memory: nothing read back from MLflow
    logger.info("stage: logging the scorer model and registering it")
    model_uri = _log_model(scorer, served, config, fp)
    registration = tracking.register_with_alias(
        model_uri, config.mlflow.registered_model, run.info.run_id, primary, evaluation.metrics[primary],
        fp.content_hash, config.evaluation.primary_metric_higher_is_better,
        split=getattr(o, "evaluation_split", None), reevaluate=o.champion_reevaluator(config)
        if hasattr(o, "champion_reevaluator") else None,
    )
    mlflow.set_tags({"registered_version": registration.version, "alias": registration.alias})
    description = run_description(config, outcome, registration)
    mlflow.set_tag(DESCRIPTION_TAG, description)
    _describe_version(registration, config, outcome, run.info.run_id)
    purchase = getattr(o, "cal_stage", served)
    return TrainResult(
        run_id=run.info.run_id, experiment=config.mlflow.experiment, model_uri=model_uri,
        registered_model=registration.name, version=registration.version, alias=registration.alias,
        alias_reason=registration.reason, clv_source=scorer.settings.clv_source,
        clv_source_reason=evaluation.choice_reason,
        time_frame={"first_date": str(frame.first_date), "calibration_end": str(frame.calibration_end),
                    "observation_end": str(frame.observation_end),
                    "calibration_end_derived": frame.calibration_end_derived},
        reconciliation=reconciliation, metrics=dict(evaluation.metrics),
        bgnbd=_params_of(getattr(purchase, "purchase", None) or getattr(purchase, "bgnbd", None)),
        gamma_gamma=_params_of(getattr(purchase, "gamma_gamma", None)), refit=o.refit,
    )


def _params(config: ClvkitConfig, fp: tracking.DataFingerprint, frame: Any) -> dict[str, str]:
    """Config, data fingerprint and time frame as params, without ``None`` values."""
    params = {**flatten_config(config), **fp.as_params(), **frame_params(frame)}
    return {k: v for k, v in params.items() if v is not None and str(v) not in ("None", "null", "")}


def frame_params(frame: Any) -> dict[str, str]:
    """``time.*`` params of the run's time frame."""
    return {"time.first_date": str(frame.first_date), "time.calibration_end": str(frame.calibration_end),
            "time.observation_end": str(frame.observation_end),
            "time.calibration_end_derived": str(frame.calibration_end_derived)}


class TransactionsDataset(MetaDataset):
    """The training transactions as MLflow sees them: name, fingerprint, rows, customers, time span."""

    def __init__(self, source: Any, name: str, digest: str, profile: dict[str, Any]) -> None:
        self._profile = profile
        super().__init__(source=source, name=name, digest=digest)

    @property
    def profile(self) -> dict[str, Any]:
        """Rows read, used and quarantined, customers, first and last date."""
        return self._profile

    def to_dict(self) -> dict[str, str]:
        """MetaDataset's description plus the profile (the UI shows it beside the dataset)."""
        return {**super().to_dict(), "profile": json.dumps(self._profile, default=str)}


def log_dataset(config: ClvkitConfig, fp: tracking.DataFingerprint, reconciliation: Mapping[str, Any]) -> None:
    """``mlflow.log_input`` of the training transactions (metadata only: no rows are copied)."""
    source_text = str(config.data.source)
    name = Path(source_text).name if ("/" in source_text or "." in source_text) else source_text
    profile = {
        "rows": fp.rows, "customers": fp.customers, "first_date": fp.first_date, "last_date": fp.last_date,
        "rows_read": reconciliation.get("rows_read"), "rows_quarantined": reconciliation.get("rows_quarantined"),
    }
    source = CodeDatasetSource(tags={"source": source_text[:tracking.MAX_PARAM_LENGTH]})
    mlflow.log_input(TransactionsDataset(source, name, fp.content_hash, profile), context="training")


def training_param_metrics(outcome: Any) -> dict[str, float]:
    """Fitted parameters (and standard errors) and fit diagnostics of the evaluated and served fits."""
    stages = {"cal": getattr(outcome, "cal_stage", None)}
    if outcome.refit:
        stages["served"] = outcome.served
    out: dict[str, float] = {}
    for label, stage in stages.items():
        if stage is not None:
            out.update(_stage_param_metrics(stage, label))
    return out


def _stage_param_metrics(stage: Any, label: str) -> dict[str, float]:
    gg = getattr(stage, "gamma_gamma", None)
    churn = getattr(stage, "churn", None)
    candidates = {
        f"gg_{label}_frequency_spend_correlation": getattr(gg, "frequency_spend_correlation_", None),
        f"gg_{label}_n_excluded_zero_spend": getattr(gg, "n_excluded_zero_spend_", None),
        f"churn_{label}_best_iteration": getattr(churn, "best_iteration_", None),
    }
    out = {k: float(v) for k, v in candidates.items() if _finite(v)}
    purchase = getattr(stage, "purchase", None) or getattr(stage, "bgnbd", None)
    purchase_name = getattr(stage, "purchase_model", None) or "bgnbd"
    for model_name, model in ((purchase_name, purchase), ("gg", gg)):
        for key, value in (getattr(model, "params_", None) or {}).items():
            if _finite(value):
                out[f"param_{label}_{model_name}_{key}"] = float(value)
        for key, value in (getattr(model, "standard_errors_", None) or {}).items():
            if _finite(value):
                out[f"param_{label}_{model_name}_{key}_se"] = float(value)
    return out


def _log_artifacts(outcome: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Plots (``plots/<name>.png``), tables (``tables/<name>.parquet``) and per-customer holdout
    predictions (``evaluation/holdout_predictions.parquet``), written once to a folder and logged in
    one call. Returns the PNG bytes and tables for the report."""
    evaluation = outcome.evaluation
    images = {name: figure_to_png(figure) for name, figure in outcome.figures.items()}
    tables = dict(evaluation.tables)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for folder in (PLOTS_FOLDER, TABLES_FOLDER, PREDICTIONS_FOLDER):
            (root / folder).mkdir()
        for name, png in images.items():
            (root / PLOTS_FOLDER / f"{name}.png").write_bytes(png)
        for name, table in tables.items():
            _parquet_safe(table).to_parquet(root / TABLES_FOLDER / f"{name}.parquet")
        if getattr(evaluation, "predictions", None) is not None:
            _parquet_safe(evaluation.predictions).to_parquet(root / PREDICTIONS_FOLDER / PREDICTIONS_FILE)
        mlflow.log_artifacts(tmp)
    return images, tables


def _parquet_safe(table: Any) -> Any:
    """``table`` with mixed-type object columns as strings (Parquet needs one type per column); a copy if changed."""
    mixed = [c for c in table.columns if table[c].dtype == object
             and table[c].map(type).nunique(dropna=True) > 1]
    return table.astype({c: str for c in mixed}) if mixed else table


def _log_model(scorer: Any, stage: Any, config: ClvkitConfig, fp: tracking.DataFingerprint) -> str:
    from clvkit.pipelines.artifact import scorer_artifact_state

    state = scorer_artifact_state(scorer, stage, config, fp.content_hash)  # the same state CLVModel.save writes
    head = stage.table.head(INPUT_EXAMPLE_ROWS)
    example = signature_frame(head).rename_axis(schemas.CUSTOMER_ID).reset_index()
    output = scorer.score(head).rename_axis(schemas.CUSTOMER_ID).reset_index()
    versions = installed_versions()
    requirements = [f"{name}=={version}" for name, version in versions.items() if version != "not installed"]
    with tempfile.TemporaryDirectory() as tmp:
        directory = save_scorer_state(Path(tmp) / "scorer", state, scorer.boosters())
        return tracking.log_scorer_model(
            directory, example, output, requirements,
            metadata={"clvkit_versions": versions, "config_hash": state["config_hash"], "cutoff": state["cutoff"],
                      "time_unit": config.data.time_unit, "clv_source": scorer.settings.clv_source},
            signature=scorer_signature(stage.table, output),
        )


def headline_rows(metrics: Mapping[str, float]) -> list[tuple[str, float, str, float | None]]:
    """(metric, served value, best baseline name, its value) for the headline metrics present."""
    rows = []
    for name, baselines in HEADLINE.items():
        if not _finite(metrics.get(name)):
            continue
        present = [(b, metrics[b]) for b in baselines if _finite(metrics.get(b))]
        best = max(present, key=lambda item: item[1]) if present else ("", None)
        rows.append((name, float(metrics[name]), best[0], best[1]))
    return rows


def run_description(config: ClvkitConfig, outcome: Any, registration: Any) -> str:
    """Markdown: headline figures against the baselines, the choice made, the data, the registration."""
    evaluation, fp = outcome.evaluation, outcome.fingerprint
    metrics = evaluation.metrics
    primary = config.evaluation.primary_metric
    lines = [
        f"**{config.mlflow.registered_model}**: CLV over {config.clv.horizon_months} months, "
        f"served scorer fitted on history to {outcome.served.as_of}.",
        "",
        f"**Choice**: served CLV from `{evaluation.chosen_clv_source}`: {evaluation.choice_reason}",
        "",
        "| metric | served | best baseline | baseline value | lift |",
        "|---|---|---|---|---|",
    ]
    for name, value, baseline, base_value in headline_rows(metrics):
        lift = "" if base_value is None else f"{value - base_value:+.4f}"
        shown = "" if base_value is None else f"{base_value:.4f}"
        marker = " (primary)" if name == primary else ""
        lines.append(f"| {name}{marker} | {value:.4f} | {baseline} | {shown} | {lift} |")
    losing = metrics.get("served_metrics_losing_to_baseline")
    if _finite(losing) and losing > 0:
        lines += ["", f"**Warning**: the served models lose to the best baseline on {int(losing)} metric(s)."]
    lines += [
        "",
        f"**Data**: `{config.data.source}`: {fp.rows:,} rows, {fp.customers:,} customers, "
        f"{fp.first_date} to {fp.last_date} (fingerprint `{fp.content_hash}`); "
        f"{outcome.reconciliation.get('rows_quarantined', 0):,} rows quarantined.",
        "",
        f"**Registered**: {registration.name} v{registration.version} as `{registration.alias}`: {registration.reason}.",
    ]
    return "\n".join(lines)


def version_description(registration: Any, config: ClvkitConfig, outcome: Any, run_id: str) -> str:
    """Markdown of the champion decision for the model version page."""
    primary = config.evaluation.primary_metric
    value = outcome.evaluation.metrics.get(primary)
    return (
        f"**{registration.alias}**: {registration.reason}.\n\n"
        f"{primary} = {value:.4f}; served CLV: `{outcome.evaluation.chosen_clv_source}`; "
        f"data fingerprint `{outcome.fingerprint.content_hash}`; cut-off {outcome.served.as_of}; "
        f"trained {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by clvkit {__version__} (run {run_id})."
    )


def _describe_version(registration: Any, config: ClvkitConfig, outcome: Any, run_id: str) -> None:
    MlflowClient().update_model_version(
        registration.name, registration.version,
        description=version_description(registration, config, outcome, run_id),
    )


def _params_of(model: Any) -> dict[str, float]:
    return {k: float(v) for k, v in (getattr(model, "params_", None) or {}).items() if _finite(v)}


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
