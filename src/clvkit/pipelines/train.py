"""``clvkit train``: fit, evaluate on the holdout, refit, log to MLflow, register the scorer."""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from clvkit import __version__, schemas
from clvkit.config.loading import config_hash, config_to_yaml, flatten_config
from clvkit.config.models import ClvkitConfig
from clvkit.data.timeframe import TimeFrame, resolve_time_frame
from clvkit.exceptions import UserInputError
from clvkit.features.btyd import calibration_holdout
from clvkit.io import tracking
from clvkit.io.scorer_model import installed_versions, save_scorer_state, signature_frame
from clvkit.models.scorer import ClvScorer, ScorerSettings, tier_thresholds
from clvkit.pipelines.evaluate import HoldoutEvaluation, evaluate_holdout
from clvkit.pipelines.figures import evaluation_figures
from clvkit.pipelines.fitting import StageModels, fit_stage, value_window_days
from clvkit.pipelines.ingest import effective_columns, ingest
from clvkit.pipelines.progress import stages
from clvkit.pipelines.report import render_run_report

logger = logging.getLogger(__name__)

#: Rows of the input example logged with the model.
INPUT_EXAMPLE_ROWS = 5
#: Stages reported by the progress bar of fit_and_evaluate.
TRAINING_STAGES = 5


@dataclass
class TrainResult:
    """What a training run produced (``clvkit train --json`` prints it)."""

    run_id: str
    experiment: str
    model_uri: str
    registered_model: str
    version: str
    alias: str
    alias_reason: str
    clv_source: str
    clv_source_reason: str
    time_frame: dict[str, Any]
    reconciliation: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    bgnbd: dict[str, float] = field(default_factory=dict)
    gamma_gamma: dict[str, float] = field(default_factory=dict)
    refit: bool = True

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self), sort_keys=True, default=str)


@dataclass
class TrainingOutcome:
    """Everything a training job fitted and measured, before anything is logged."""

    frame: TimeFrame
    reconciliation: dict[str, Any]
    fingerprint: tracking.DataFingerprint
    cal_stage: StageModels
    served: StageModels
    scorer: ClvScorer
    evaluation: HoldoutEvaluation
    figures: dict[str, Any]
    refit: bool


def fit_and_evaluate(config: ClvkitConfig) -> TrainingOutcome:
    """Ingest, fit on calibration, evaluate on the holdout, refit for serving (no MLflow)."""
    with stages(TRAINING_STAGES, "training") as step:
        return _fit_and_evaluate(config, step)


def _fit_and_evaluate(config: ClvkitConfig, step: Callable[[str], None]) -> TrainingOutcome:
    step("reading and validating transactions")
    ingested = ingest(config.data)
    transactions = ingested.validated.transactions
    frame = resolve_time_frame(transactions, config.data.calibration_end, config.data.observation_end,
                               config.clv.horizon_months)
    logger.info(frame.describe())
    cal = calibration_holdout(transactions, frame.calibration_end, frame.observation_end, config.data.time_unit)
    if cal.n_customers_first_seen_in_holdout:
        logger.info("%s customers first seen in the holdout are not evaluated",
                    f"{cal.n_customers_first_seen_in_holdout:,}")
    window = value_window_days(frame.first_date, frame.calibration_end, frame.holdout_days)
    step("fitting on the calibration period")
    cal_stage = fit_stage(transactions, frame.calibration_end, frame.first_date, window, config)
    step("evaluating on the holdout")
    evaluation = evaluate_holdout(
        cal_stage, cal, transactions, config.models.value.clv_policy,
        config.evaluation.primary_metric, config.evaluation.primary_metric_higher_is_better,
    )
    logger.info("served CLV: %s (%s)", evaluation.chosen_clv_source, evaluation.choice_reason)
    check_primary_metric(config.evaluation.primary_metric, evaluation.metrics)
    refit = config.models.refit_on_full_history
    if refit:
        step("refitting on all history")
        logger.info("refitting every model on the history up to %s for the served scorer", frame.observation_end)
    served = fit_stage(transactions, frame.observation_end, frame.first_date, window, config) if refit else cal_stage
    scorer = build_scorer(served, config, evaluation.chosen_clv_source)
    step("drawing the evaluation plots")
    figures = evaluation_figures(cal_stage, cal, evaluation, transactions, frame, scorer, served.table)
    return TrainingOutcome(frame, ingested.validated.report.to_dict(), tracking.fingerprint(transactions),
                           cal_stage, served, scorer, evaluation, figures, refit)


def check_primary_metric(name: str, metrics: dict[str, float]) -> None:
    """The configured primary metric must be one the run computes."""
    if name not in metrics:
        known = ", ".join(sorted(m for m in metrics if not m.startswith(("lift_", "param_"))))
        raise UserInputError(f"evaluation.primary_metric {name!r} is not a metric of this run; choose one of: {known}")


def train(config: ClvkitConfig, config_path: str | None = None) -> TrainResult:
    """Run the whole training job described by ``config`` and log it to MLflow."""
    tracking.configure_tracking()
    return log_training(config, config_path, fit_and_evaluate(config))


def build_scorer(stage: StageModels, config: ClvkitConfig, clv_source: str) -> ClvScorer:
    """The served scorer from one stage's models; tier thresholds learned on its customers."""
    value_model = {"ml": stage.value_ml, "hybrid": stage.value_hybrid}.get(clv_source)
    settings = ScorerSettings(
        time_unit=config.data.time_unit, horizon_months=config.clv.horizon_months,
        discount_rate_annual=config.clv.discount_rate_annual, margin=config.clv.margin,
        churn_window_days=config.churn.window_days, value_window_days=stage.value_window_days,
        cutoff=str(stage.as_of), clv_source=clv_source if value_model is not None else "btyd",
        tier_thresholds=(float("inf"), float("inf")),
    )
    columns = tuple(stage.table.columns)
    scorer = ClvScorer(stage.bgnbd, stage.gamma_gamma, stage.churn, settings, value_model, columns)
    clv = scorer.score(stage.table)[schemas.CLV].to_numpy()
    a_share, b_share = config.features.tier_shares
    scorer.settings = replace(settings, tier_thresholds=tier_thresholds(clv, a_share, b_share))
    return scorer


def log_training(config: ClvkitConfig, config_path: str | None, outcome: TrainingOutcome) -> TrainResult:
    """Log a training outcome as one MLflow run and register its scorer."""
    o = outcome
    frame, reconciliation, fp, cal_stage, served = o.frame, o.reconciliation, o.fingerprint, o.cal_stage, o.served
    scorer, evaluation, refit = o.scorer, o.evaluation, o.refit
    mlflow.set_experiment(config.mlflow.experiment)
    run_name = f"{config.mlflow.registered_model}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags({
            "clvkit.version": __version__, "config_hash": config_hash(config),
            tracking.FINGERPRINT_TAG: fp.content_hash, "clv_source": evaluation.chosen_clv_source,
            "kind": "train",
            "clv_source_reason": evaluation.choice_reason[:tracking.MAX_PARAM_LENGTH],
            "refit_on_full_history": str(refit), "time_frame": frame.describe(),
        })
        tracking.log_params({**flatten_config(config), **fp.as_params(), **_frame_params(frame)})
        mlflow.log_text(config_to_yaml(config), "config/resolved.yaml")
        if config_path:
            mlflow.log_artifact(config_path, "config")
        mlflow.log_dict(reconciliation, "data/reconciliation.json")
        mlflow.log_metrics({"data_rows_read": reconciliation["rows_read"],
                            "data_rows_quarantined": reconciliation["rows_quarantined"]})
        _log_evaluation(outcome)
        mlflow.log_text(render_run_report(run.info.run_id), "report.html")
        model_uri = _log_model(scorer, served, config, fp)
        registration = tracking.register_with_alias(
            model_uri, config.mlflow.registered_model, run.info.run_id, config.evaluation.primary_metric,
            evaluation.metrics[config.evaluation.primary_metric], fp.content_hash,
            config.evaluation.primary_metric_higher_is_better,
        )
        mlflow.set_tags({"registered_version": registration.version, "alias": registration.alias})
    return TrainResult(
        run_id=run.info.run_id, experiment=config.mlflow.experiment, model_uri=model_uri,
        registered_model=registration.name, version=registration.version, alias=registration.alias,
        alias_reason=registration.reason, clv_source=scorer.settings.clv_source,
        clv_source_reason=evaluation.choice_reason,
        time_frame={"first_date": str(frame.first_date), "calibration_end": str(frame.calibration_end),
                    "observation_end": str(frame.observation_end),
                    "calibration_end_derived": frame.calibration_end_derived},
        reconciliation=reconciliation, metrics=dict(evaluation.metrics),
        bgnbd=dict(cal_stage.bgnbd.params_), gamma_gamma=dict(cal_stage.gamma_gamma.params_), refit=refit,
    )


def _log_evaluation(outcome: TrainingOutcome) -> None:
    """Holdout metrics, fitted parameters, plots, tables and per-customer holdout predictions."""
    evaluation = outcome.evaluation
    mlflow.log_metrics(evaluation.metrics)
    mlflow.log_metrics(_model_param_metrics(outcome.cal_stage, "cal"))
    if outcome.refit:
        mlflow.log_metrics(_model_param_metrics(outcome.served, "served"))
    tracking.log_figures(outcome.figures)
    for name, table in evaluation.tables.items():
        tracking.log_table(table, f"tables/{name}.csv")
    if evaluation.predictions is not None:
        tracking.log_table(evaluation.predictions, "evaluation/holdout_predictions.csv")


def _log_model(scorer: ClvScorer, stage: StageModels, config: ClvkitConfig, fp: tracking.DataFingerprint) -> str:
    columns, date_format = effective_columns(config.data)
    state = {
        "scorer": scorer.to_dict(),
        "feature_builder": stage.builder.to_dict(),
        "data": {"columns": columns.model_dump(), "date_format": date_format, "timezone": config.data.timezone,
                 "time_unit": config.data.time_unit, "validation": config.data.validation.model_dump()},
        "cutoff": str(stage.as_of),
        "config_hash": config_hash(config),
        "data_fingerprint": fp.content_hash,
    }
    example = signature_frame(stage.table.head(INPUT_EXAMPLE_ROWS)).rename_axis(schemas.CUSTOMER_ID).reset_index()
    output = scorer.score(stage.table.head(INPUT_EXAMPLE_ROWS)).rename_axis(schemas.CUSTOMER_ID).reset_index()
    versions = installed_versions()
    requirements = [f"{name}=={version}" for name, version in versions.items() if version != "not installed"]
    with tempfile.TemporaryDirectory() as tmp:
        directory = save_scorer_state(Path(tmp) / "scorer", state, scorer.boosters())
        return tracking.log_scorer_model(
            directory, example, output, requirements,
            metadata={"clvkit_versions": versions, "config_hash": state["config_hash"], "cutoff": state["cutoff"],
                      "time_unit": config.data.time_unit, "clv_source": scorer.settings.clv_source},
        )


def _frame_params(frame: TimeFrame) -> dict[str, str]:
    return {"time.first_date": str(frame.first_date), "time.calibration_end": str(frame.calibration_end),
            "time.observation_end": str(frame.observation_end),
            "time.calibration_end_derived": str(frame.calibration_end_derived)}


def _model_param_metrics(stage: StageModels, label: str) -> dict[str, float]:
    gg = stage.gamma_gamma
    out: dict[str, float] = {
        f"gg_{label}_frequency_spend_correlation": float(gg.frequency_spend_correlation_),
        f"gg_{label}_n_excluded_zero_spend": float(gg.n_excluded_zero_spend_),
        f"churn_{label}_best_iteration": float(stage.churn.best_iteration_),
    }
    for model_name, model in (("bgnbd", stage.bgnbd), ("gg", stage.gamma_gamma)):
        for key, value in model.params_.items():
            out[f"param_{label}_{model_name}_{key}"] = float(value)
        for key, value in (getattr(model, "standard_errors_", None) or {}).items():
            if value is not None and pd.notna(value):
                out[f"param_{label}_{model_name}_{key}_se"] = float(value)
    return out
