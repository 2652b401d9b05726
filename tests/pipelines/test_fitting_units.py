"""Time-design helpers and the CLV policy, without training."""

from __future__ import annotations

import datetime as dt

import pytest

from clvkit.config import load_config
from clvkit.exceptions import UserInputError
from clvkit.pipelines.evaluate import choose_clv_source
from clvkit.pipelines.fitting import inner_cutoff, value_window_days

D = dt.date


def test_value_window_is_holdout_capped_at_half_calibration() -> None:
    assert value_window_days(D(1997, 1, 1), D(1997, 9, 30), 273) == 136
    assert value_window_days(D(1997, 1, 1), D(1998, 9, 30), 90) == 90


def test_inner_cutoff_default_and_configured() -> None:
    config = load_config(None, ["data.calibration_end=1997-09-30", "data.observation_end=1998-06-30"])
    assert inner_cutoff(config, D(1997, 1, 1), D(1997, 9, 30), 136) == D(1997, 5, 17)
    pinned = load_config(None, ["data.calibration_end=1997-09-30", "data.observation_end=1998-06-30",
                                "churn.inner_cutoff=1997-06-01"])
    assert inner_cutoff(pinned, D(1997, 1, 1), D(1997, 9, 30), 90) == D(1997, 6, 1)


def test_history_too_short_for_inner_cutoff_says_what_to_change() -> None:
    config = load_config(None, ["churn.window_days=200"])
    with pytest.raises(UserInputError, match=(
            r"history too short for supervised training as of 1997-09-30: the inner cut-off 1997-03-14 needs "
            r"28\+ days of history after the first purchase \(1997-03-01\) and a 200-day label window before "
            r"1997-09-30\. Shorten churn\.window_days, set churn\.inner_cutoff, or move data\.calibration_end later\.")):
        inner_cutoff(config, D(1997, 3, 1), D(1997, 9, 30), 200)


def test_clv_policy_best_on_holdout_and_fixed() -> None:
    results = {"clv_btyd_gini_norm": 0.67, "clv_ml_gini_norm": 0.72, "clv_hybrid_gini_norm": 0.71}
    chosen, reason = choose_clv_source(results, "best_on_holdout", "clv_gini_norm")
    assert chosen == "ml"
    assert reason == "best holdout gini_norm among candidates (ml 0.7200, hybrid 0.7100, btyd 0.6700)"
    assert choose_clv_source(results, "btyd", "clv_gini_norm") == ("btyd", "fixed by models.value.clv_policy=btyd")
    tie = {"clv_btyd_gini_norm": 0.7, "clv_ml_gini_norm": 0.7}
    assert choose_clv_source(tie, "best_on_holdout", "clv_gini_norm")[0] == "btyd"


def test_clv_policy_lower_is_better_and_non_clv_primary_metric() -> None:
    results = {"clv_btyd_decile_mape": 21.0, "clv_ml_decile_mape": 41.0, "clv_btyd_gini_norm": 0.67,
               "clv_ml_gini_norm": 0.72}
    assert choose_clv_source(results, "best_on_holdout", "clv_decile_mape", higher_is_better=False)[0] == "btyd"
    chosen, reason = choose_clv_source(results, "best_on_holdout", "churn_pr_auc", higher_is_better=True)
    assert (chosen, reason) == ("ml", "best holdout gini_norm among candidates (ml 0.7200, btyd 0.6700)")


def test_unknown_primary_metric_is_a_config_error() -> None:
    from clvkit.pipelines.train import check_primary_metric

    with pytest.raises(UserInputError, match=r"evaluation\.primary_metric 'clv_gini' is not a metric of this run; "
                                             r"choose one of: clv_gini_norm, clv_spearman"):
        check_primary_metric("clv_gini", {"clv_gini_norm": 0.7, "clv_spearman": 0.4, "lift_clv_gini_norm": 0.1})
