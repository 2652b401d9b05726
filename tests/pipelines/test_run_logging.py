"""Metric names grouped for the MLflow UI (and mapped back), backtest spread without NaN (no MLflow needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clvkit.evaluation.backtest_plots import backtest_figures, spread_summary
from clvkit.pipelines.backtest import BACKTEST_PLOTS, backtest_metrics
from clvkit.pipelines.run_logging import (
    KEY_METRICS,
    grouped_metrics,
    headline_rows,
    internal_metrics,
    internal_name,
    metric_key,
)

#: Metric names a training run computes (a sample of every family).
NAMES = [
    "clv_gini_norm", "clv_spearman", "clv_decile_mape", "clv_top10_capture", "clv_aggregate_error_pct",
    "clv_btyd_gini_norm", "clv_ml_spearman", "clv_hybrid_top20_capture", "clv_blend_decile_mape",
    "baseline_hist_gini_norm", "baseline_rfm_spearman", "baseline_palive_churn_pr_auc",
    "baseline_recency_churn_roc_auc", "churn_pr_auc", "churn_brier", "churn_ece", "churn_cal_best_iteration",
    "lift_clv_gini_norm", "lift_churn_brier", "param_cal_bgnbd_r", "param_served_gg_q_se",
    "gg_cal_frequency_spend_correlation", "data_rows_read", "purchases_mae", "spend_mae",
    "inner_clv_ml_gini_norm", "served_metrics_losing_to_baseline", "clv_metrics_losing",
]


def test_every_name_maps_back_and_groups_are_one_level() -> None:
    logged = {metric_key(name): name for name in NAMES}
    assert len(logged) == len(NAMES)  # no two metrics share a logged name
    for key, name in logged.items():
        assert internal_name(key) == name
        assert key.count("/") <= 1
    assert internal_metrics({metric_key(n): 1.0 for n in NAMES}) == dict.fromkeys(NAMES, 1.0)


@pytest.mark.parametrize(("name", "logged"), [
    ("clv_gini_norm", "Key/clv_gini_norm"),  # key metrics: the first section of the UI
    ("churn_pr_auc", "Key/churn_pr_auc"),
    ("baseline_rfm_spearman", "baseline/rfm_spearman"),
    ("lift_clv_gini_norm", "lift/clv_gini_norm"),
    ("param_cal_bgnbd_r", "fit/cal_bgnbd_r"),
    ("churn_cal_best_iteration", "diagnostics/churn_cal_best_iteration"),
    ("churn_brier", "churn/brier"),
    ("clv_btyd_gini_norm", "candidates/clv_btyd_gini_norm"),
    ("data_rows_read", "data/rows_read"),
    ("inner_clv_ml_gini_norm", "inner/clv_ml_gini_norm"),
    ("clv_decile_mape", "holdout/clv_decile_mape"),
])
def test_logged_names(name: str, logged: str) -> None:
    assert metric_key(name) == logged


def test_primary_metric_is_a_key_metric_and_non_finite_values_are_not_logged() -> None:
    out = grouped_metrics({"clv_decile_mape": 3.0, "churn_ece": float("nan"), "spend_mae": float("inf")},
                          primary_metric="clv_decile_mape")
    assert out == {"Key/clv_decile_mape": 3.0}
    assert all(metric_key(k).startswith("Key/") for k in KEY_METRICS)
    assert internal_name("clv_gini_norm") == "clv_gini_norm"  # runs logged before grouping


def test_key_section_sorts_before_every_other_group() -> None:
    """The MLflow UI orders chart sections by name (code-point order): Key must come first."""
    groups = sorted({metric_key(n).split("/")[0] for n in NAMES})
    assert groups[0] == "Key"


def test_headline_compares_with_the_best_baseline() -> None:
    rows = headline_rows({"clv_gini_norm": 0.7, "baseline_hist_gini_norm": 0.6, "baseline_rfm_gini_norm": 0.65,
                          "churn_pr_auc": 0.8})
    assert rows[0] == ("clv_gini_norm", 0.7, "baseline_rfm_gini_norm", 0.65)
    assert rows[1] == ("churn_pr_auc", 0.8, "", None)


def test_backtest_spread_has_no_nan_even_with_one_origin_or_missing_values() -> None:
    per_origin = pd.DataFrame({"clv_gini_norm": [0.5, 0.7, np.nan], "churn_ece": [np.nan] * 3,
                               "purchases_mae": [1.0, 1.0, 1.0]}, index=["1997-06-30", "1997-09-30", "1997-12-31"])
    summary = spread_summary(per_origin)
    assert "churn_ece" not in summary.index
    assert summary.loc["clv_gini_norm", "mean"] == pytest.approx(0.6)
    assert summary.loc["clv_gini_norm", "std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary.loc["clv_gini_norm", "n_origins"] == 2
    one = spread_summary(per_origin.iloc[[0]])
    assert one.loc["clv_gini_norm", "std"] == 0.0
    logged = backtest_metrics(summary, "clv_gini_norm")
    assert all(math.isfinite(v) for v in logged.values())
    assert {"Key/clv_gini_norm_mean", "Key/clv_gini_norm_std", "Key/purchases_mae_mean"} <= set(logged)
    assert "holdout/clv_decile_mape_mean" not in logged  # not measured here


def test_backtest_plots_one_per_key_metric_present() -> None:
    per_origin = pd.DataFrame({"clv_gini_norm": [0.5, 0.7], "baseline_hist_gini_norm": [0.4, 0.6],
                               "churn_pr_auc": [0.8, 0.82]}, index=["1997-06-30", "1997-09-30"])
    figures = backtest_figures(per_origin, BACKTEST_PLOTS)
    assert set(figures) == {"backtest_clv_gini_norm", "backtest_churn_pr_auc"}
    axes = figures["backtest_clv_gini_norm"].axes[0]
    assert [line.get_label() for line in axes.get_lines()][:2] == ["clv_gini_norm", "baseline_hist_gini_norm"]
