"""``clvkit train``: fit, evaluate on the holdout, refit, log to MLflow, register the scorer."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from clvkit.config.loading import config_from_dict
from clvkit.config.models import ClvkitConfig
from clvkit.constants import DAYS_PER_MONTH
from clvkit.data.timeframe import TimeFrame, resolve_time_frame
from clvkit.exceptions import UserInputError
from clvkit.io.artifact import DataFingerprint, fingerprint
from clvkit.models.blend import describe_weights
from clvkit.models.scorer import ClvScorer
from clvkit.pipelines.evaluate import HoldoutEvaluation, evaluate_recipe, evaluation_origins
from clvkit.pipelines.figures import evaluation_figures
from clvkit.pipelines.fitting import StageModels, fit_stage, scorer_and_scores, scorer_for
from clvkit.pipelines.ingest import ingest
from clvkit.pipelines.progress import stages

__all__ = ["TrainResult", "TrainingOutcome", "fit_and_evaluate", "log_training", "train"]

logger = logging.getLogger(__name__)

#: Artifact of a training run holding its resolved config (what the champion gate re-runs).
RESOLVED_CONFIG_ARTIFACT = "config/resolved.yaml"
#: Primary metric of a count-only run without a value per purchase.
COUNT_ONLY_PRIMARY_METRIC = "purchases_mae"
#: Nanoseconds per millisecond (MLflow run times are epoch milliseconds).
NS_PER_MS = 1_000_000
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
    fingerprint: DataFingerprint
    cal_stage: StageModels
    served: StageModels
    scorer: ClvScorer
    evaluation: HoldoutEvaluation
    figures: dict[str, Any]
    refit: bool
    transactions: pd.DataFrame | None = None

    @property
    def evaluation_split(self) -> str:
        """What the reported figures were measured on: data fingerprint, origins and holdouts."""
        return f"data={self.fingerprint.content_hash}; origins={self.evaluation.describe_origins()}"

    def champion_reevaluator(self, config: ClvkitConfig) -> Callable[[str], float | None]:
        """A function re-running a champion's recipe (its logged config) on this run's data and origins.

        Returns the champion's primary metric there, or None when its config cannot be read or
        applied here (the gate then refuses the comparison).
        """
        def reevaluate(champion_run_id: str) -> float | None:
            if self.transactions is None:
                return None
            try:
                from clvkit.io import tracking

                raw = tracking.load_run_yaml(champion_run_id, RESOLVED_CONFIG_ARTIFACT)
                champion = config_from_dict(raw, source=f"champion run {champion_run_id}")
                champion = champion.model_copy(update={"data": config.data, "evaluation": config.evaluation})
                origins = [(o.origin, o.holdout_end) for o in self.evaluation.origins]
                again = evaluate_recipe(self.transactions, origins, self.frame.first_date, champion)
            except (UserInputError, OSError, ValueError, KeyError) as err:
                logger.warning("the champion's recipe (run %s) could not be re-evaluated: %s", champion_run_id, err)
                return None
            value = again.metrics.get(config.evaluation.primary_metric)
            logger.info("champion recipe (run %s) re-evaluated on this run's split: %s = %s", champion_run_id,
                        config.evaluation.primary_metric, value)
            return value

        return reevaluate


def effective_config(config: ClvkitConfig) -> ClvkitConfig:
    """The config a run uses: a count-only log without clv.value_per_purchase has no CLV metric to rank
    versions by, so a ``clv_*`` primary metric becomes ``purchases_mae`` (lower is better), logged."""
    columns = config.data.columns
    count_only = columns.amount is None and not (columns.quantity and columns.unit_price)
    primary = config.evaluation.primary_metric
    if count_only and config.clv.value_per_purchase is None and primary.startswith("clv_"):
        logger.warning("count-only log without clv.value_per_purchase: no CLV, so evaluation.primary_metric "
                       "%s is replaced by purchases_mae (lower is better)", primary)
        evaluation = config.evaluation.model_copy(
            update={"primary_metric": COUNT_ONLY_PRIMARY_METRIC, "primary_metric_higher_is_better": False})
        return config.model_copy(update={"evaluation": evaluation})
    return config


def fit_and_evaluate(config: ClvkitConfig, after_ingest: Callable[[], None] | None = None) -> TrainingOutcome:
    """Ingest, evaluate the recipe at origins inside the history, fit the served recipe (no MLflow).

    ``after_ingest`` is called once the data is read and its time frame resolved, before any fitting
    (``train`` checks there that its MLflow store has not failed).
    """
    config = effective_config(config)
    with stages(TRAINING_STAGES, "training") as step:
        return _fit_and_evaluate(config, _logged(step), after_ingest)


def _logged(step: Callable[[str], None]) -> Callable[[str], None]:
    """``step`` that also logs the stage it opens (the log's timestamps then time the stages)."""
    def logged_step(description: str) -> None:
        logger.info("stage: %s", description)
        step(description)

    return logged_step


def _fit_and_evaluate(config: ClvkitConfig, step: Callable[[str], None],
                      after_ingest: Callable[[], None] | None = None) -> TrainingOutcome:
    step("reading and validating transactions")
    ingested = ingest(config.data)
    transactions = ingested.validated.transactions
    frame = resolve_time_frame(transactions, config.data.calibration_end, config.data.observation_end,
                               config.clv.horizon_months)
    logger.info(frame.describe())
    if after_ingest is not None:
        after_ingest()
    step("evaluating the whole recipe at origins inside the history")
    origins = evaluation_origins(frame.calibration_end, frame.observation_end, config.evaluation.n_origins)
    evaluation = evaluate_recipe(transactions, origins, frame.first_date, config)
    check_primary_metric(config.evaluation.primary_metric, evaluation.metrics)
    refit = config.models.refit_on_full_history
    if refit:
        step("fitting the served recipe on all history")
        logger.info("fitting the recipe on the history up to %s for the served scorer", frame.observation_end)
        horizon_days = int(round(config.clv.horizon_months * DAYS_PER_MONTH))
        served = fit_stage(transactions, frame.observation_end, frame.first_date, horizon_days, config)
    else:
        served = evaluation.latest.stage
    scorer, served_scores, _ = scorer_and_scores(served, config)  # scores: the figures' segment tables
    evaluation.chosen_clv_source = scorer.settings.clv_source
    evaluation.choice_reason = f"{served.clv_reason}; churn: {served.churn_source} ({served.churn_reason})"
    evaluation.tables["recipe_choices"] = recipe_choices_table(evaluation, served)
    logger.info("served CLV: %s (%s)", evaluation.chosen_clv_source, served.clv_reason)
    step("drawing the evaluation plots")
    figures = evaluation_figures(evaluation, transactions, frame, scorer, served.table, served_scores=served_scores)
    return TrainingOutcome(frame, ingested.validated.report.to_dict(), fingerprint(transactions),
                           evaluation.latest.stage, served, scorer, evaluation, figures, refit, transactions)


def recipe_choices_table(evaluation: HoldoutEvaluation, served: StageModels) -> pd.DataFrame:
    """What the recipe chose at each evaluation origin and for the served fit, and why."""
    rows = [(f"origin {o.origin}..{o.holdout_end}", o.stage) for o in evaluation.origins]
    rows.append((f"served (history to {served.as_of})", served))
    return pd.DataFrame([{
        "fit": name, "inner_cutoffs": ", ".join(map(str, stage.inner_cutoffs)),
        "purchase_model": stage.purchase_model, "purchase_reason": stage.purchase_reason,
        "clv_source": stage.clv_source, "clv_reason": stage.clv_reason,
        "blend_weights": describe_weights(stage.value_blend.weights_),
        "total_calibration": stage.value_blend.calibration_,
        "churn_source": stage.churn_source, "churn_reason": stage.churn_reason,
        "churn_window_days": stage.churn_window_days, "churn_window": stage.churn_window_reason,
        "value_window_days": stage.value_window_days,
        "clv_available": stage.clv_available, "clv_absent_reason": stage.clv_absent_reason,
    } for name, stage in rows]).set_index("fit")


def check_primary_metric(name: str, metrics: dict[str, float]) -> None:
    """The configured primary metric must be one the run computes."""
    if name not in metrics:
        known = ", ".join(sorted(m for m in metrics if not m.startswith(("lift_", "param_"))))
        actual = metrics.get("clv_holdout_total_actual")
        why = (f" (the evaluation holdout's realised value totals {actual:g}, so the value metrics are undefined: "
               "move data.calibration_end earlier so the holdout holds spend)"
               if name.startswith("clv_") and actual is not None and not actual > 0 else "")
        raise UserInputError(f"evaluation.primary_metric {name!r} is not a metric of this run{why}; "
                             f"choose one of: {known}")


def train(config: ClvkitConfig, config_path: str | None = None) -> TrainResult:
    """Run the whole training job described by ``config`` as one MLflow run and register the scorer.

    The store is prepared in a thread while the data is read and the models are fitted; the run is
    created afterwards with the training's start time, so its duration is the whole training's. A
    store that has already failed stops the run after ingestion; a failed training leaves a FAILED run.
    """
    if config.engine == "spark":  # the Spark engine: same recipe, heavy parts on Spark
        from clvkit.pipelines.spark_train import train_spark

        return train_spark(config, config_path)
    from clvkit.io.store import prepare_in_background

    started_ms = time.time_ns() // NS_PER_MS
    pending = prepare_in_background()  # a lost store fails now; MLflow's import and a fresh store's tables
    config = effective_config(config)  # are done in a thread while the data is read
    with contextlib.ExitStack() as run_scope:

        def open_run() -> None:
            from clvkit.io import tracking
            from clvkit.pipelines.run_logging import training_run

            pending.wait(after_fitting=True)
            tracking.configure_tracking()
            run_scope.enter_context(training_run(config, start_time_ms=started_ms))

        try:  # the store is waited for only once the models are fitted; a store already failed stops the run
            outcome = fit_and_evaluate(config, after_ingest=pending.raise_if_failed)
        except Exception:
            with contextlib.suppress(Exception):  # a failed training still leaves a FAILED run where it can
                open_run()
            raise
        open_run()
        return log_training(config, config_path, outcome)


def log_training(config: ClvkitConfig, config_path: str | None, outcome: TrainingOutcome) -> TrainResult:
    """Log a training outcome as one MLflow run and register its scorer (MLflow imported here, not
    at module import: ``fit_and_evaluate`` and the Python API's ``fit`` run without it)."""
    from clvkit.pipelines.run_logging import log_training as log_outcome

    return log_outcome(config, config_path, outcome)


def build_scorer(stage: StageModels, config: ClvkitConfig, clv_source: str | None = None) -> ClvScorer:
    """The served scorer from one recipe fit (see :func:`clvkit.pipelines.fitting.scorer_for`)."""
    return scorer_for(stage, config, clv_source)
