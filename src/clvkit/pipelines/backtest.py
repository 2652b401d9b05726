"""``clvkit backtest``: the recipe evaluation of ``clvkit train`` at several origins, as nested MLflow runs."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from clvkit.config.loading import config_hash, flatten_config
from clvkit.config.models import ClvkitConfig
from clvkit.data.timeframe import resolve_time_frame
from clvkit.evaluation.backtest_plots import backtest_figures, spread_summary
from clvkit.exceptions import UserInputError
from clvkit.io import tracking
from clvkit.pipelines.evaluate import evaluate_origin
from clvkit.pipelines.fitting import MIN_INNER_HISTORY_DAYS
from clvkit.pipelines.ingest import ingest
from clvkit.pipelines.progress import stages
from clvkit.pipelines.run_logging import DESCRIPTION_TAG, KEY_METRICS, grouped_metrics, metric_key

logger = logging.getLogger(__name__)

#: Key metrics plotted across origins, with the baselines drawn beside them.
BACKTEST_PLOTS: dict[str, tuple[str, ...]] = {
    "clv_gini_norm": ("baseline_hist_gini_norm", "baseline_rfm_gini_norm"),
    "clv_spearman": ("baseline_hist_spearman",),
    "clv_top20_capture": ("baseline_hist_top20_capture",),
    "churn_pr_auc": ("baseline_palive_churn_pr_auc", "baseline_recency_churn_pr_auc"),
    "purchases_mae": (),
}


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
    """The recipe evaluation of ``clvkit train`` at more origins; nested MLflow runs, mean and spread."""
    tracking.configure_tracking()
    transactions = ingest(config.data).validated.transactions
    frame = resolve_time_frame(transactions, config.data.calibration_end, config.data.observation_end,
                               config.clv.horizon_months)
    window = config.churn.window_days or MIN_INNER_HISTORY_DAYS
    cutoffs = dates or default_cutoffs(frame.first_date, frame.calibration_end, n_cutoffs, window)
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
        summary = spread_summary(per_cutoff)
        mlflow.log_metrics(backtest_metrics(summary, config.evaluation.primary_metric))
        tracking.log_figures(backtest_figures(per_cutoff, BACKTEST_PLOTS))
        tracking.log_table(per_cutoff, "backtest/per_cutoff.csv")
        tracking.log_table(summary, "backtest/summary.csv")
        mlflow.set_tag(DESCRIPTION_TAG, backtest_description(summary, cutoffs, config.evaluation.primary_metric))
    return BacktestResult(parent.info.run_id, per_cutoff, summary)


def backtest_metrics(summary: pd.DataFrame, primary_metric: str) -> dict[str, float]:
    """``<metric>_mean`` and ``<metric>_std`` of every metric (finite by construction), grouped like a
    training run's metrics; the key metrics keep their plain names."""
    keys = tuple(f"{k}_{stat}" for k in (*KEY_METRICS, primary_metric) for stat in ("mean", "std"))
    out = {}
    for name, row in summary.iterrows():
        for stat in ("mean", "std"):
            out[metric_key(f"{name}_{stat}", keys)] = float(row[stat])
    return out


def backtest_description(summary: pd.DataFrame, cutoffs: list[dt.date], primary_metric: str) -> str:
    """Markdown for the parent run: the key metrics' mean ± spread over the origins."""
    lines = [f"Backtest at {len(cutoffs)} origin(s): {', '.join(map(str, cutoffs))}.", "",
             "| metric | mean | std | min | max |", "|---|---|---|---|---|"]
    for name in dict.fromkeys((primary_metric, *BACKTEST_PLOTS, *KEY_METRICS)):
        if name in summary.index:
            row = summary.loc[name]
            lines.append(f"| {name} | {row['mean']:.4f} | {row['std']:.4f} | {row['min']:.4f} | {row['max']:.4f} |")
    return "\n".join(lines)


def _evaluate_cutoff(transactions: pd.DataFrame, cutoff: dt.date, first_date: dt.date, holdout_days: int,
                     observation_end: dt.date, config: ClvkitConfig) -> dict[str, object]:
    end = min(cutoff + dt.timedelta(days=holdout_days), observation_end)
    if end <= cutoff:
        raise UserInputError(f"cut-off {cutoff} leaves no holdout before {observation_end}")
    logger.info("backtest cut-off %s, holdout to %s", cutoff, end)
    evaluation = evaluate_origin(transactions, cutoff, end, first_date, config)
    with mlflow.start_run(run_name=f"cutoff-{cutoff}", nested=True):
        mlflow.set_tags({"kind": "backtest-cutoff", "cutoff": str(cutoff), "clv_source": evaluation.stage.clv_source,
                         "churn_source": evaluation.stage.churn_source})
        mlflow.log_params({"cutoff": str(cutoff), "holdout_end": str(end)})
        mlflow.log_metrics(grouped_metrics(evaluation.metrics, config.evaluation.primary_metric))
    return {"cutoff": str(cutoff), **evaluation.metrics}
