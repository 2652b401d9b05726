"""The combined scorer's pure logic."""

from __future__ import annotations

import numpy as np
import pytest

from clvkit.exceptions import FeatureMismatchError
from clvkit.models.scorer import assign_tiers, ml_clv_factor, tier_thresholds


def test_tier_thresholds_follow_cumulative_share() -> None:
    clv = np.array([50.0, 30.0, 10.0, 5.0, 3.0, 2.0])  # total 100
    high, mid = tier_thresholds(clv, 0.80, 0.95)
    # A: customers making the first 80 % (50 + 30), B: the next 15 % (10 + 5), C: the rest
    assert (high, mid) == (30.0, 5.0)
    assert assign_tiers(clv, (high, mid)).tolist() == ["A", "A", "B", "B", "C", "C"]


def test_tiers_do_not_depend_on_the_batch() -> None:
    thresholds = (30.0, 5.0)
    alone = assign_tiers(np.array([12.0]), thresholds)
    in_batch = assign_tiers(np.array([100.0, 12.0, 0.0]), thresholds)
    assert alone[0] == in_batch[1] == "B"


def test_no_value_means_all_c() -> None:
    thresholds = tier_thresholds(np.zeros(4), 0.8, 0.95)
    assert assign_tiers(np.zeros(4), thresholds).tolist() == ["C"] * 4


def test_ml_clv_factor_is_discounted_months_over_window() -> None:
    monthly = 1.10 ** (1 / 12) - 1
    expected = sum((365.2425 / 12 / 30.4375) / (1 + monthly) ** k for k in range(1, 13))
    assert ml_clv_factor(12, 0.10, 30.4375) == pytest.approx(expected, rel=1e-12)
    assert ml_clv_factor(12, 0.0, 365.2425 / 12) == pytest.approx(12.0, rel=1e-12)


def test_scorer_rejects_tables_missing_training_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from clvkit.models.scorer import ClvScorer, ScorerSettings

    settings = ScorerSettings("W", 12, 0.1, 0.3, 90, 136, "1998-06-30", "btyd", (1.0, 0.5))
    scorer = ClvScorer(None, None, None, settings, None, ("frequency", "recency", "T", "spend_90d"))  # type: ignore[arg-type]
    import pandas as pd

    with pytest.raises(FeatureMismatchError, match=r"the customer table lacks 1 column\(s\) the scorer was trained with: \['spend_90d'\]"):
        scorer.score(pd.DataFrame({"frequency": [1.0], "recency": [1.0], "T": [2.0]}))


# --- value outputs: clv_source, intervals, churn-loss value, current value, quadrant ------------

import json  # noqa: E402

import pandas as pd  # noqa: E402

from clvkit import schemas  # noqa: E402
from clvkit.constants import DAYS_PER_MONTH  # noqa: E402
from clvkit.features.builder import FeatureBuilder  # noqa: E402
from clvkit.io.datasets import load_builtin_transactions  # noqa: E402
from clvkit.models.bgnbd import BetaGeoModel  # noqa: E402
from clvkit.models.customer_value import (  # noqa: E402
    assign_quadrants,
    churn_loss_value,
    quadrant_threshold,
)
from clvkit.models.gamma_gamma import GammaGammaModel  # noqa: E402
from clvkit.models.scorer import ClvScorer, ScorerSettings  # noqa: E402

CUTOFF = "1997-12-31"


@pytest.fixture(scope="module")
def btyd_scorer() -> tuple[ClvScorer, pd.DataFrame]:
    """A BTYD scorer (closed-form churn, no XGBoost) on the CDNOW sample as of 1997-12-31, margin 0.3."""
    tx = load_builtin_transactions("cdnow_sample")
    table = FeatureBuilder(time_unit="W", margin=0.3).fit_transform(tx, CUTOFF)
    bg, gg = BetaGeoModel().fit(table), GammaGammaModel().fit(table)
    settings = ScorerSettings("W", 12, 0.1, 0.3, 90, 181, CUTOFF, "btyd", (30.0, 5.0), churn_source="closed_form",
                              quadrant_thresholds=(20.0, 5.0), interval_draws=100)
    return ClvScorer(bg, gg, None, settings, None, tuple(table.columns)), table  # type: ignore[arg-type]


def test_scores_have_the_contract_columns_and_sane_values(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    scorer, table = btyd_scorer
    scores = scorer.score(table)
    assert tuple(scores.columns) == schemas.SCORER_OUTPUT_COLUMNS
    numbers = scores.select_dtypes("number")
    assert np.isfinite(numbers.to_numpy()).all() and (numbers.to_numpy() >= 0).all()
    assert (scores["clv_p10"] <= scores["clv_p90"]).all()
    assert scores["churn_probability"].between(0, 1).all() and scores["p_alive"].between(0, 1).all()
    assert (scores["clv_source"] == "btyd").all()
    assert set(scores["value_quadrant"]) == {"Stars", "Fading", "Rising", "Low value"}
    np.testing.assert_array_equal(scores["current_value"], table["current_value"])
    np.testing.assert_array_equal(scores["current_value_trailing"], table["current_value_trailing"])
    no_interval = scorer.score(table, intervals=False)
    assert "clv_p10" not in no_interval.columns
    pd.testing.assert_frame_equal(no_interval, scores.drop(columns=["clv_p10", "clv_p90"]))


def test_btyd_clv_is_margin_times_discounted_purchases_times_order_value(
    btyd_scorer: tuple[ClvScorer, pd.DataFrame],
) -> None:
    scorer, table = btyd_scorer
    scores = scorer.score(table, intervals=False)
    f, r, t = (table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    month = DAYS_PER_MONTH / 7.0
    cumulative = [np.zeros(len(table))] + [scorer.bgnbd.expected_purchases(k * month, f, r, t) for k in range(1, 13)]
    monthly = 1.1 ** (1 / 12) - 1
    discounted = sum((cumulative[k] - cumulative[k - 1]) / (1 + monthly) ** k for k in range(1, 13))
    expected = 0.3 * discounted * scores["expected_order_value"].to_numpy()
    np.testing.assert_allclose(scores["clv"].to_numpy(), expected, rtol=1e-9, atol=1e-12)


def test_churn_loss_value_is_p_loss_times_value_if_retained(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    scorer, table = btyd_scorer
    s = scorer.score(table, intervals=False)
    expected = s["churn_probability"] * s["clv"] / s["p_alive"].clip(lower=0.05)
    np.testing.assert_allclose(s["churn_loss_value"], expected, rtol=1e-12)
    rho_new = s["churn_loss_value"].rank().corr(s["clv"].rank())
    rho_old = (s["churn_probability"] * s["clv"]).rank().corr(s["clv"].rank())
    assert rho_old > 0.9 and rho_new < 0.8, (rho_old, rho_new)
    # P(alive) floored at 0.05: the value if retained is at most 20 x clv
    out = churn_loss_value(np.array([10.0, 10.0, 10.0]), np.array([0.5, 0.99, 0.2]), np.array([0.2, 0.001, 1.0]))
    np.testing.assert_allclose(out, [0.5 * 10 / 0.2, 0.99 * 10 / 0.05, 0.2 * 10])


def test_settings_round_trip_and_old_states(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    scorer, table = btyd_scorer
    settings = json.loads(json.dumps(scorer.settings.to_dict()))
    for key in ("tier_thresholds", "quadrant_thresholds", "quadrant_names", "interval_levels"):
        settings[key] = tuple(settings[key])
    assert ScorerSettings(**settings) == scorer.settings
    for key in ("quadrant_thresholds", "quadrant_names", "interval_levels", "interval_draws", "interval_seed",
                "current_value_window_days"):
        settings.pop(key)
    old = ScorerSettings(**settings)  # a state saved before these fields existed
    assert old.interval_levels == (0.1, 0.9) and old.quadrant_thresholds == (float("inf"), float("inf"))
    scores = ClvScorer(scorer.bgnbd, scorer.gamma_gamma, None, old, None, scorer.input_columns).score(table.head(50))  # type: ignore[arg-type]
    assert (scores["value_quadrant"] == "Low value").all()  # no learnt thresholds: nobody is high


def test_count_only_scores_omit_the_clv_family(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    scorer, _ = btyd_scorer
    tx = load_builtin_transactions("cdnow_sample").drop(columns=["amount"])
    table = FeatureBuilder(time_unit="W").fit_transform(tx, CUTOFF)
    settings = ScorerSettings("W", 12, 0.1, 0.3, 90, 181, CUTOFF, "btyd", (30.0, 5.0), churn_source="closed_form",
                              clv_available=False)
    scores = ClvScorer(scorer.bgnbd, scorer.gamma_gamma, None, settings, None, tuple(table.columns)).score(table)  # type: ignore[arg-type]
    assert list(scores.columns) == ["p_alive", "expected_purchases", "churn_probability", "rfm_segment"]


def test_quadrant_thresholds_and_cells() -> None:
    values = np.array([0.0, 0.0, 1.0, 2.0, 3.0, 10.0, 84.0])
    assert quadrant_threshold(values, "median") == pytest.approx(2.0, abs=1e-12)
    assert quadrant_threshold(np.array([0.0, 0.0, 0.0, 5.0]), "median") == 5.0  # 0 is never high
    assert quadrant_threshold(values, "share", share=0.8) == 84.0  # 84 of 100 holds 80 %
    assert quadrant_threshold(values, "share", share=0.9) == 10.0
    assert quadrant_threshold(values, "absolute", absolute=7.0) == 7.0
    assert quadrant_threshold(np.zeros(3), "median") == float("inf")
    with pytest.raises(ValueError, match="unknown quadrant method 'mean'"):
        quadrant_threshold(values, "mean")
    cells = assign_quadrants(np.array([5.0, 5.0, 1.0, 1.0, 0.0]), np.array([9.0, 1.0, 9.0, 1.0, 9.0]), (5.0, 9.0))
    assert cells.tolist() == ["Stars", "Fading", "Rising", "Low value", "Rising"]


def test_scorer_without_a_churn_classifier_round_trips(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """One-class churn labels leave no classifier: the state stores none and scores stay the closed form."""
    scorer, table = btyd_scorer
    state, boosters = scorer.to_dict(), scorer.boosters()
    assert state["churn"] is None and "churn" not in boosters
    restored = ClvScorer.from_dict(json.loads(json.dumps(state)), boosters)
    assert restored.churn is None
    pd.testing.assert_frame_equal(restored.score(table.head(40)), scorer.score(table.head(40)))


@pytest.mark.parametrize("model_name", ["bgnbd", "mbgnbd", "pnbd"])
def test_expected_purchases_at_several_horizons_equals_the_models_own(
        model_name: str, btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """One evaluation per distinct (x, T) for all horizons gives each horizon's expected_purchases."""
    from clvkit.models.purchase import make_purchase_model
    from clvkit.models.scorer import expected_purchases_at

    _, table = btyd_scorer
    model = make_purchase_model(model_name).fit(table)
    f, r, t = (table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    units = (90 / 7, 52.0, 181 / 7)
    for got, u in zip(expected_purchases_at(model, units, f, r, t), units, strict=True):
        np.testing.assert_allclose(got, model.expected_purchases(u, f, r, t), rtol=1e-14, atol=0)


def test_scores_alone_in_a_batch_and_repeated_are_identical(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """The served scorer keeps its interval draws between calls: a customer scores the same alone, in a
    batch, before or after other calls, and the frame is assembled once with the contract's dtypes."""
    scorer, table = btyd_scorer
    fresh = ClvScorer.from_dict(json.loads(json.dumps(scorer.to_dict())), scorer.boosters())
    pick = table.iloc[[7, 3, 120]]
    first = fresh.score(pick)  # before any other call built and grew the random streams
    full = fresh.score(table)
    pd.testing.assert_frame_equal(fresh.score(pick), first)
    pd.testing.assert_frame_equal(full.iloc[[7, 3, 120]], first)
    pd.testing.assert_frame_equal(scorer.score(table.iloc[[3]]), first.iloc[[1]])
    assert full["clv_source"].dtype == pd.Series(["btyd"]).dtype and full["p_alive"].dtype == np.float64


def test_interval_cache_follows_settings_and_survives_pickling(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """Changing the interval settings after a call rebuilds the draws; a pickled scorer scores the same."""
    import pickle
    from dataclasses import replace

    scorer, table = btyd_scorer
    part = table.iloc[:30]
    fresh = ClvScorer.from_dict(json.loads(json.dumps(scorer.to_dict())), scorer.boosters())
    fresh.score(part)
    fresh.settings = replace(fresh.settings, interval_seed=fresh.settings.interval_seed + 1)
    reseeded = ClvScorer.from_dict(json.loads(json.dumps(fresh.to_dict())), fresh.boosters())
    pd.testing.assert_frame_equal(fresh.score(part), reseeded.score(part))
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(fresh)).score(part), reseeded.score(part))


# --- one float matrix per call, one purchase-model pass, the blend path (issue 15) ---------------------------


@pytest.fixture(scope="module")
def blend_scorer(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> tuple[ClvScorer, pd.DataFrame]:
    """The CDNOW scorer with a served geometric blend of btyd, btyd_all and an XGBoost value model."""
    from dataclasses import replace

    from clvkit.models.blend import ValueBlend, tenure_normalised_features, window_components
    from clvkit.models.scorer import ORDER_VALUE_FEATURE, btyd_model_features
    from clvkit.models.value_regressor import ValueRegressor

    scorer, table = btyd_scorer
    btyd = btyd_model_features(table, scorer.bgnbd, scorer.gamma_gamma, 90, "W")
    comps = window_components(table, scorer.bgnbd, scorer.gamma_gamma, btyd[ORDER_VALUE_FEATURE].to_numpy(), 181, "W")
    named = pd.DataFrame({"btyd_window_value": comps["btyd"], "historical_window_value": comps["historical"]})
    inputs = tenure_normalised_features(table, named.join(btyd), "W")
    model = ValueRegressor(n_estimators=20, max_depth=3, early_stopping_rounds=None, n_jobs=1)
    model.fit(inputs, table["spend_90d"].to_numpy(dtype=float))
    blend = ValueBlend.from_dict({"source": "blend", "weights": {"btyd": 0.2, "historical": 0.0, "ml": 0.5,
                                                                  "btyd_all": 0.3},
                                  "offsets": {"btyd": 0.1, "historical": 0.1, "ml": 0.2, "btyd_all": 0.1},
                                  "calibration": 0.9})
    settings = replace(scorer.settings, clv_source="blend")
    served = ClvScorer(scorer.bgnbd, scorer.gamma_gamma, None, settings, model, tuple(table.columns), value_blend=blend)
    return served, table.assign(margin_share=np.linspace(0.1, 0.5, len(table)))


def test_blend_clv_matches_the_frame_by_frame_formula(blend_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """clv = margin x blend(window components, ML on tenure-normalised features) x discounted / window purchases,
    written here with the public frame functions: the array path gives the same numbers."""
    from clvkit.models.blend import horizon_ratio, tenure_normalised_features, window_components
    from clvkit.models.clv import discounted_clv
    from clvkit.models.scorer import ORDER_VALUE_FEATURE, btyd_model_features, expected_purchases_at

    scorer, table = blend_scorer
    bg, gg = scorer.bgnbd, scorer.gamma_gamma
    f, r, t = (table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    btyd = btyd_model_features(table, bg, gg, 90, "W")
    comps = window_components(table, bg, gg, btyd[ORDER_VALUE_FEATURE].to_numpy(), 181, "W")
    named = pd.DataFrame({"btyd_window_value": comps["btyd"], "historical_window_value": comps["historical"]})
    inputs = tenure_normalised_features(table, named.join(btyd), "W")
    comps["ml"] = scorer.value_model.predict(inputs[list(scorer.value_model.feature_names_in_)])
    window_value = scorer.value_blend.predict(comps)
    discounted = discounted_clv(bg, 1.0, f, r, t, time_unit="W", horizon_months=12, discount_rate_annual=0.1,
                                margin=1.0)
    (window,) = expected_purchases_at(bg, (181 / 7,), f, r, t)
    margin = table["margin_share"].to_numpy()
    expected = margin * window_value * horizon_ratio(discounted, window)
    scores = scorer.score(table)
    np.testing.assert_allclose(scores["clv"].to_numpy(), expected, rtol=1e-12, atol=0)
    assert (scores["clv_source"] == "blend").all() and scores["clv_source"].dtype == pd.Series(["x"]).dtype
    # the revenue forecast over 182 days: the same window value carried by E[X(182 d)] / E[X(w)]
    (purchases,) = expected_purchases_at(bg, (182 / 7,), f, r, t)
    revenue = scorer.expected_revenue(table, 182)
    np.testing.assert_allclose(revenue, window_value * horizon_ratio(purchases, window), rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(scorer.value_components(table), comps[["btyd", "historical", "btyd_all", "ml"]],
                                  check_exact=True)


def test_score_with_revenue_is_score_and_expected_revenue(blend_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    scorer, table = blend_scorer
    scores, revenue = scorer.score_with_revenue(table, 182)
    pd.testing.assert_frame_equal(scores, scorer.score(table, intervals=False), check_exact=True)
    np.testing.assert_array_equal(revenue, scorer.expected_revenue(table, 182))
    with_interval, _ = scorer.score_with_revenue(table.iloc[:40], 182, intervals=True)
    pd.testing.assert_frame_equal(with_interval, scorer.score(table.iloc[:40]), check_exact=True)


def test_a_blend_without_ml_weight_never_needs_the_value_model(blend_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """With the ML weight at 0 the value model is not evaluated: scores are those of a scorer without one."""
    from clvkit.models.blend import ValueBlend

    scorer, table = blend_scorer
    state = scorer.value_blend.to_dict()
    no_ml = ValueBlend.from_dict({**state, "weights": {**state["weights"], "ml": 0.0, "btyd_all": 0.8}})
    with_model = ClvScorer(scorer.bgnbd, scorer.gamma_gamma, None, scorer.settings, scorer.value_model,
                           scorer.input_columns, value_blend=no_ml)
    without = ClvScorer(scorer.bgnbd, scorer.gamma_gamma, None, scorer.settings, None, scorer.input_columns,
                        value_blend=no_ml)
    pd.testing.assert_frame_equal(with_model.score(table), without.score(table), check_exact=True)
    np.testing.assert_array_equal(with_model.expected_revenue(table, 182), without.expected_revenue(table, 182))


def test_float_columns_are_the_numeric_features_in_either_conversion(
    btyd_scorer: tuple[ClvScorer, pd.DataFrame], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One matrix (small tables) or column by column (large ones): the numeric columns as float64, NaN kept."""
    import clvkit.models.scorer as scorer_module
    from clvkit.models.scorer import float_columns, numeric_features

    _, table = btyd_scorer
    table = table.assign(flag=table["frequency"] > 2, margin_share=np.nan)
    reference = numeric_features(table)
    for limit in (len(table), 0):
        monkeypatch.setattr(scorer_module, "FLOAT_MATRIX_MAX_ROWS", limit)
        cols = float_columns(table)
        assert list(cols) == list(table.select_dtypes(include=["number", "bool"]).columns)
        for name in reference.columns:
            assert cols[name].dtype == np.float64
            np.testing.assert_array_equal(cols[name], reference[name].to_numpy())
        assert np.isnan(cols["margin_share"]).all()


def test_the_purchase_pass_equals_the_separate_calls(btyd_scorer: tuple[ClvScorer, pd.DataFrame]) -> None:
    """P(alive) and E[X(u)] at several horizons plus the discounted month sums from one pass: exactly the numbers
    of expected_purchases_at and discounted_clv (value 1, margin 1)."""
    from clvkit.models.clv import discounted_clv, month_grid_units
    from clvkit.models.scorer import _PurchasePass, expected_purchases_at

    scorer, table = btyd_scorer
    bg = scorer.bgnbd
    f, r, t = (table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    units = (90 / 7, 181 / 7, 12 * DAYS_PER_MONTH / 7)
    passes = _PurchasePass(bg, f, r, t, units, month_grid_units("W", 12))
    for u, separate in zip(units, expected_purchases_at(bg, units, f, r, t), strict=True):
        np.testing.assert_array_equal(passes.purchases(u), separate)
    np.testing.assert_array_equal(passes.alive, bg.p_alive(f, r, t))
    np.testing.assert_array_equal(passes.discounted_purchases(0.1), discounted_clv(
        bg, 1.0, f, r, t, time_unit="W", horizon_months=12, discount_rate_annual=0.1, margin=1.0))
    with pytest.raises(ValueError, match="finite, non-negative"):
        _PurchasePass(bg, -f - 1, r, t, units, month_grid_units("W", 12))
