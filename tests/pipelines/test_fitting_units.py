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
    fit_btyd_ranked,
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
    with pytest.raises(UserInputError, match=(
            r"'clv_gini_norm' is not a metric of this run \(the evaluation holdout's realised value totals 0, so "
            r"the value metrics are undefined: move data\.calibration_end earlier so the holdout holds spend\)")):
        check_primary_metric("clv_gini_norm", {"clv_holdout_total_actual": 0.0, "clv_spearman": float("nan")})


def _log(ids: list[str], days: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "timestamp": pd.to_datetime(days), "amount": 10.0})


def test_too_few_customers_at_the_inner_cutoff_names_count_and_settings() -> None:
    from clvkit.pipelines.fitting import MIN_RECIPE_CUSTOMERS, check_recipe_customers

    tx = _log(["a", "a", "a"], ["2021-01-01", "2021-02-01", "2021-03-01"])
    with pytest.raises(UserInputError, match=(
            rf"only 1 customer \('a'\) had bought by the inner cut-off 2021-02-15 of the recipe fitted as of "
            rf"2021-04-01: .* needs at least {MIN_RECIPE_CUSTOMERS} customers .* data\.source .* "
            r"data\.calibration_end later")):
        check_recipe_customers(tx, D(2021, 2, 15), D(2021, 4, 1))
    enough = _log(["a", "b", "c", "d", "e"], ["2021-01-01"] * 4 + ["2021-03-01"])
    check_recipe_customers(enough, D(2021, 2, 15), D(2021, 4, 1))  # e comes later; a-d are enough


def test_empty_holdout_names_the_dates_to_move() -> None:
    from clvkit.pipelines.evaluate import check_holdout_purchases

    tx = _log(["a", "b", "a", "c"], ["2021-01-01", "2021-01-05", "2021-02-01", "2021-05-10"])
    history = tx[tx["timestamp"] < "2021-03-02"]
    with pytest.raises(UserInputError, match=(
            r"the evaluation holdout 2021-03-02 \.\. 2021-06-29 has no purchases by the 2 customers known at "
            r"2021-03-01 \(1 purchase row\(s\), all by new customers\), so nothing can be evaluated; the last "
            r"purchase in the log is on 2021-05-10\. Move data\.calibration_end earlier \(to 2021-01-10 or before "
            r"for a 120-day holdout\) or set data\.observation_end to 2021-05-10")):
        check_holdout_purchases(tx, history, D(2021, 3, 1), D(2021, 6, 29))
    check_holdout_purchases(tx, history, D(2021, 1, 20), D(2021, 5, 20))  # a buys again on 2021-02-01


def test_one_class_churn_labels_fall_back_to_the_closed_form() -> None:
    """Nobody churns within the window: no classifier (the run serves closed-form churn) and why."""
    from clvkit.pipelines.fitting import InnerExamples, _fit_churn_or_none

    rng = np.random.default_rng(0)
    n = 12
    x = pd.DataFrame({"frequency": rng.integers(1, 20, n).astype(float), "recency": rng.random(n)})
    closed = np.linspace(0.01, 0.2, n)
    example = InnerExamples(cutoff=D(2021, 1, 1), table=x, btyd=x, components=x, value_inputs=x, churn_inputs=x,
                            spend_window=np.ones(n), purchase_days=np.ones(n), churned=np.zeros(n, dtype=int),
                            closed_form_churn=closed)
    config = load_config(None, ["churn.n_estimators=5"])
    validation = np.arange(n) % 3 == 0
    churn, why = _fit_churn_or_none([example], validation, 90, config)
    assert churn is None
    assert why == ("churn labels of the 8 training examples hold 8 active and 0 churned customers within the "
                   "90-day churn window (fewer than 2 of a class)")
    with_both = InnerExamples(**{**example.__dict__, "churned": (np.arange(n) % 2).astype(int)})
    fitted, why = _fit_churn_or_none([with_both], validation, 90, config)
    assert fitted is not None and why == ""


def test_auto_falls_back_to_the_next_ranked_purchase_model_when_the_chosen_one_fails(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from clvkit import schemas
    from clvkit.data.simulate import simulate_transactions
    from clvkit.exceptions import ConvergenceError
    from clvkit.features.btyd import summary
    from clvkit.models.pareto_nbd import ParetoNBDModel

    tx = simulate_transactions(600, seed=5).transactions
    table = summary(tx, tx[schemas.TIMESTAMP].max().date(), "W")
    config = load_config(None)

    def fails(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConvergenceError("Pareto/NBD did not converge on this history (test)")

    monkeypatch.setattr(ParetoNBDModel, "fit", fails)
    purchase, gamma_gamma, name, why = fit_btyd_ranked(table, config, ("pnbd", "bgnbd"))
    assert name == "bgnbd" and purchase.name == "bgnbd" and np.isfinite(list(purchase.params_.values())).all()
    assert why.startswith("pnbd failed on this history (Pareto/NBD did not converge on this history (test)); "
                          "the next model in the inner ranking, bgnbd, serves")
    assert fit_btyd_ranked(table, config, ("bgnbd", "pnbd"))[2:] == ("bgnbd", "")
    with pytest.raises(ConvergenceError, match="Pareto/NBD did not converge"):
        fit_btyd_ranked(table, config, ("pnbd",))
