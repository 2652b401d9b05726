"""Time-design helpers of the recipe, the CLV/churn choices and the blend, without training."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvkit.config import load_config
from clvkit.exceptions import UserInputError
from clvkit.models.blend import ValueBlend, horizon_ratio, simplex_grid
from clvkit.pipelines.evaluate import evaluation_origins
from clvkit.pipelines.fitting import (
    _choose_clv,
    churn_window_days,
    inner_cutoffs,
    value_window_days,
)

D = dt.date


def test_value_window_is_horizon_capped_at_half_the_history() -> None:
    assert value_window_days(D(1997, 1, 1), D(1997, 9, 30), 273) == 136
    assert value_window_days(D(1997, 1, 1), D(1998, 9, 30), 90) == 90


def test_inner_cutoffs_step_back_while_history_allows() -> None:
    config = load_config(None, ["models.recipe.max_inner_cutoffs=3"])
    assert inner_cutoffs(config, D(1997, 1, 1), D(1997, 9, 30), 90) == [D(1997, 7, 2), D(1997, 4, 3)]
    assert inner_cutoffs(config, D(1996, 1, 1), D(1997, 9, 30), 90) == [D(1997, 7, 2), D(1997, 4, 3),
                                                                        D(1997, 1, 3)]


def test_history_too_short_for_an_inner_cutoff_says_what_to_change() -> None:
    config = load_config(None)
    with pytest.raises(UserInputError, match=(
            r"history too short for supervised training as of 1997-09-30: an inner cut-off needs 28\+ days of "
            r"history after the first purchase \(1997-03-01\) and a 200-day label window before 1997-09-30\. "
            r"Shorten churn\.window_days or clv\.horizon_months, or move data\.calibration_end later\.")):
        inner_cutoffs(config, D(1997, 3, 1), D(1997, 9, 30), 200)


def test_evaluation_origins_step_back_by_the_holdout() -> None:
    assert evaluation_origins(D(1997, 9, 30), D(1998, 6, 30), 1) == [(D(1997, 9, 30), D(1998, 6, 30))]
    assert evaluation_origins(D(1998, 3, 1), D(1998, 6, 1), 2) == [(D(1997, 11, 29), D(1998, 3, 1)),
                                                                   (D(1998, 3, 1), D(1998, 6, 1))]


def test_churn_window_configured_or_derived_from_gaps() -> None:
    days = pd.to_datetime(["1997-01-01", "1997-01-11", "1997-01-31", "1997-01-05", "1997-03-06"])
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b"], "timestamp": days})
    configured = load_config(None)
    assert churn_window_days(configured, tx, D(1997, 1, 1), D(1997, 12, 31))[0] == 90
    derived = load_config(None, ["churn.window_days=null"])
    window, reason = churn_window_days(derived, tx, D(1997, 1, 1), D(1997, 12, 31))
    gaps = np.array([10, 20, 60])
    assert window == round(np.quantile(gaps, 0.9))
    assert reason.startswith("derived: 90% quantile of 3 inter-purchase gaps")


def _candidates(hist_best: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    actual = rng.gamma(1.0, 10.0, 500) * (rng.random(500) < 0.4)
    noisy = actual + rng.normal(0, 30, 500)
    good = actual + rng.normal(0, 3, 500)
    hist, model = (good, noisy) if hist_best else (noisy, good)
    return {"btyd": np.abs(noisy), "ml": np.abs(model), "historical": np.abs(hist)}, actual


def test_clv_choice_serves_the_best_model_or_the_baseline_formula() -> None:
    config = load_config(None)
    candidates, actual = _candidates(hist_best=False)
    source, reason, scores = _choose_clv(candidates, actual, config)
    assert source == "ml" and reason.startswith("best inner-validation gini_norm + spearman (ml ")
    assert scores["inner_clv_ml_gini_norm"] > scores["inner_clv_historical_gini_norm"]
    candidates, actual = _candidates(hist_best=True)
    source, reason, _ = _choose_clv(candidates, actual, config)
    assert source == "historical"
    assert reason.startswith("no model beats the historical-spend formula on the inner validation gini_norm + spearman")
    fixed = load_config(None, ["models.value.clv_policy=btyd"])
    assert _choose_clv(candidates, actual, fixed)[:2] == ("btyd", "fixed by models.value.clv_policy=btyd")


def test_blend_weights_are_non_negative_sum_to_one_and_calibrate_the_total() -> None:
    rng = np.random.default_rng(1)
    actual = rng.gamma(1.0, 10.0, 800) * (rng.random(800) < 0.5)
    components = pd.DataFrame({"btyd": actual * 0.5 + rng.gamma(1, 2, 800), "historical": rng.gamma(1, 5, 800),
                               "ml": actual * 2 + rng.gamma(1, 1, 800)})
    blend = ValueBlend(source="blend").fit(components, actual)
    assert all(w >= 0 for w in blend.weights_.values()) and sum(blend.weights_.values()) == pytest.approx(1.0)
    assert blend.weights_["historical"] <= 0.2  # the pure-noise component gets (almost) no weight
    assert blend.predict(components).sum() == pytest.approx(actual.sum())
    again = ValueBlend.from_dict(blend.to_dict())
    np.testing.assert_allclose(again.predict(components), blend.predict(components))
    single = ValueBlend(source="btyd").fit(components, actual)
    np.testing.assert_allclose(single.predict(components), components["btyd"] * actual.sum() / components["btyd"].sum())


def test_simplex_grid_and_horizon_ratio() -> None:
    grid = simplex_grid(3, 0.5)
    assert sorted(grid) == sorted([(0, 0, 1), (0, .5, .5), (0, 1, 0), (.5, 0, .5), (.5, .5, 0), (1, 0, 0)])
    np.testing.assert_allclose(horizon_ratio([2.0, 3.0, 1.0], [1.0, 0.0, 0.5]), [2.0, 0.0, 2.0])


def test_unknown_primary_metric_is_a_config_error() -> None:
    from clvkit.pipelines.train import check_primary_metric

    with pytest.raises(UserInputError, match=r"evaluation\.primary_metric 'clv_gini' is not a metric of this run; "
                                             r"choose one of: clv_gini_norm, clv_spearman"):
        check_primary_metric("clv_gini", {"clv_gini_norm": 0.7, "clv_spearman": 0.4, "lift_clv_gini_norm": 0.1})
