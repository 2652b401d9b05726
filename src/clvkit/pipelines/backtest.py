"""``clvkit backtest``: rolling-origin evaluation at several cut-offs, as nested MLflow runs."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from clvkit.config.loading import config_hash, flatten_config
from clvkit.config.models import ClvkitConfig
from clvkit.data.timeframe import resolve_time_frame
from clvkit.exceptions import UserInputError
from clvkit.features.btyd import calibration_holdout
from clvkit.io import tracking
from clvkit.pipelines.evaluate import evaluate_holdout
from clvkit.pipelines.fitting import MIN_INNER_HISTORY_DAYS, fit_stage, value_window_days
from clvkit.pipelines.ingest import ingest
from clvkit.pipelines.progress import stages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestResult:
    """Per-cut-off metrics and their mean and spread."""

    parent_run_id: str
    per_cutoff: pd.DataFrame
    summary: pd.DataFrame


def default_cutoffs(first_date: dt.date, calibration_end: dt.date, n: int, churn_window_days: int) -> list[dt.date]:
    """``n`` evenly spaced cut-offs from the earliest trainable one to ``calibration_end``."""
    earliest = first_date + dt.timedelta(days=2 * churn_window_days + MIN_INNER_HISTORY_DAYS)
    if n < 1:
        raise UserInputError(f"--cutoffs must be at least 1, got {n}")
    if earliest > calibration_end:
        raise UserInputError(
            f"history before data.calibration_end ({calibration_end}) is too short for a backtest: the earliest "
            f"cut-off would be {earliest}; shorten churn.window_days or give --dates"
        )
    if n == 1:
        return [calibration_end]
    span = (calibration_end - earliest).days
    return sorted({earliest + dt.timedelta(days=round(span * i / (n - 1))) for i in range(n)})


def backtest(config: ClvkitConfig, n_cutoffs: int = 3, dates: list[dt.date] | None = None) -> BacktestResult:
    """Fit and evaluate at each cut-off with the holdout length of the config; log nested runs."""
    tracking.configure_tracking()
    transactions = ingest(config.data).validated.transactions
    frame = resolve_time_frame(transactions, config.data.calibration_end, config.data.observation_end,
                               config.clv.horizon_months)
    cutoffs = dates or default_cutoffs(frame.first_date, frame.calibration_end, n_cutoffs, config.churn.window_days)
    rows = []
    mlflow.set_experiment(config.mlflow.experiment)
    with mlflow.start_run(run_name=f"backtest-{len(cutoffs)}-cutoffs") as parent:
        mlflow.set_tags({"kind": "backtest", "config_hash": config_hash(config)})
        tracking.log_params({**flatten_config(config), "backtest.cutoffs": ",".join(map(str, cutoffs))})
        with stages(len(cutoffs), "backtest") as step:
            for cutoff in cutoffs:
                step(f"cut-off {cutoff}")
                rows.append(_evaluate_cutoff(transactions, cutoff, frame.first_date, frame.holdout_days,
                                             frame.observation_end, config))
        per_cutoff = pd.DataFrame(rows).set_index("cutoff")
        summary = per_cutoff.agg(["mean", "std"]).T
        mlflow.log_metrics({f"{name}_mean": float(row["mean"]) for name, row in summary.iterrows()
                            if np.isfinite(row["mean"])})
        mlflow.log_metrics({f"{name}_std": float(row["std"]) for name, row in summary.iterrows()
                            if np.isfinite(row["std"])})
        tracking.log_table(per_cutoff, "backtest/per_cutoff.csv")
    return BacktestResult(parent.info.run_id, per_cutoff, summary)


def _evaluate_cutoff(transactions: pd.DataFrame, cutoff: dt.date, first_date: dt.date, holdout_days: int,
                     observation_end: dt.date, config: ClvkitConfig) -> dict[str, object]:
    end = min(cutoff + dt.timedelta(days=holdout_days), observation_end)
    if end <= cutoff:
        raise UserInputError(f"cut-off {cutoff} leaves no holdout before {observation_end}")
    logger.info("backtest cut-off %s, holdout to %s", cutoff, end)
    unit = config.data.time_unit
    cal = calibration_holdout(transactions, cutoff, end, unit)
    stage = fit_stage(transactions, cutoff, first_date, value_window_days(first_date, cutoff, (end - cutoff).days), config)
    evaluation = evaluate_holdout(stage, cal, transactions, config.models.value.clv_policy,
                                  config.evaluation.primary_metric, config.evaluation.primary_metric_higher_is_better)
    with mlflow.start_run(run_name=f"cutoff-{cutoff}", nested=True):
        mlflow.set_tags({"kind": "backtest-cutoff", "cutoff": str(cutoff), "clv_source": evaluation.chosen_clv_source})
        mlflow.log_params({"cutoff": str(cutoff), "holdout_end": str(end)})
        mlflow.log_metrics(evaluation.metrics)
    return {"cutoff": str(cutoff), **evaluation.metrics}
