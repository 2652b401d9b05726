"""Metrics against independent computations (scikit-learn, scipy, naive loops) and hand examples."""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata, spearmanr
from sklearn import metrics as skm

from clvkit.evaluation import metrics as m
from clvkit.evaluation import registry

# --- naive reference implementations (written independently of the module) ------------


def naive_gini_one_order(actual: list[float], order: list[int]) -> float:
    """Kaggle's Gini with explicit loops: customers visited in ``order``."""
    total = sum(actual)
    n = len(actual)
    running, acc = 0.0, 0.0
    for rank, i in enumerate(order, start=1):
        running += actual[i]
        acc += running / total - rank / n
    return acc / n


def naive_gini(actual: list[float], predicted: list[float]) -> float:
    """Average of the loop Gini over every order sorted by descending prediction (all tie orders)."""
    n = len(actual)
    values = []
    for order in itertools.permutations(range(n)):
        if all(predicted[order[k]] >= predicted[order[k + 1]] for k in range(n - 1)):
            values.append(naive_gini_one_order(actual, list(order)))
    return sum(values) / len(values)


def naive_normalized_gini(actual: list[float], predicted: list[float]) -> float:
    return naive_gini(actual, predicted) / naive_gini(actual, actual)


# --- validation ---------------------------------------------------------------------


def test_lengths_must_match_and_message_names_arguments():
    with pytest.raises(ValueError, match=r"aligned .* got lengths actual=3, predicted=2"):
        m.mae([1, 2, 3], [1, 2])


def test_non_finite_input_is_named():
    with pytest.raises(ValueError, match=r"predicted has 1 non-finite value\(s\).*positions \[1\]"):
        m.normalized_gini([1.0, 2.0, 3.0], [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="actual has 1 non-finite"):
        m.rmse([1.0, np.inf], [1.0, 2.0])


def test_two_dimensional_and_empty_and_text_inputs_are_refused():
    with pytest.raises(ValueError, match="actual must be one-dimensional"):
        m.mae([[1, 2]], [[1, 2]])
    with pytest.raises(ValueError, match="actual is empty"):
        m.mae([], [])
    with pytest.raises(ValueError, match="predicted must be numeric"):
        m.mae([1.0], ["a"])


def test_inputs_are_not_mutated():
    actual = np.array([3.0, 1.0, 2.0, 0.0])
    predicted = np.array([1.0, 1.0, 3.0, 0.5])
    a0, p0 = actual.copy(), predicted.copy()
    m.value_metrics(actual, predicted, "clv")
    m.gain_curve(actual, predicted)
    np.testing.assert_array_equal(actual, a0)
    np.testing.assert_array_equal(predicted, p0)


# --- purchases ----------------------------------------------------------------------


def test_mae_rmse_match_sklearn():
    rng = np.random.default_rng(1)
    a, p = rng.poisson(2, 200).astype(float), rng.gamma(2, 1, 200)
    assert m.mae(a, p) == pytest.approx(skm.mean_absolute_error(a, p))
    assert m.rmse(a, p) == pytest.approx(skm.root_mean_squared_error(a, p))


def test_cumulative_error_pct_hand_example():
    assert m.purchase_metrics([1, 2, 3], [2, 3, 4], [0, 0, 0])["purchases_cum_error_pct"] == pytest.approx(50.0)
    assert m.purchase_metrics([1, 2, 3], [1, 1, 1], [0, 0, 0])["purchases_cum_error_pct"] == pytest.approx(-50.0)


def test_cumulative_error_pct_nan_without_purchases(caplog):
    with caplog.at_level(logging.WARNING):
        assert math.isnan(m.purchase_metrics([0, 0], [1, 1], [0, 0])["purchases_cum_error_pct"])
    assert "undefined" in caplog.text


def test_calibration_table_hand_example():
    table = m.purchases_calibration_table([0, 0, 1, 8, 10], [0, 1, 2, 3, 4], [0.5, 0.5, 1, 2, 2])
    assert list(table.columns) == [m.FREQUENCY_BIN, m.BIN_LABEL, m.N_CUSTOMERS, m.ACTUAL_MEAN, m.PREDICTED_MEAN]
    assert table[m.FREQUENCY_BIN].tolist() == list(range(8))
    assert table[m.BIN_LABEL].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table[m.N_CUSTOMERS].tolist() == [2, 1, 0, 0, 0, 0, 0, 2]
    assert table.loc[0, m.ACTUAL_MEAN] == pytest.approx(0.5)
    assert table.loc[7, m.ACTUAL_MEAN] == pytest.approx(3.5)
    assert table.loc[7, m.PREDICTED_MEAN] == pytest.approx(2.0)
    assert table.loc[3, [m.ACTUAL_MEAN, m.PREDICTED_MEAN]].isna().all()


def test_calibration_table_matches_pandas_groupby():
    rng = np.random.default_rng(2)
    f = rng.poisson(3, 500)
    a, p = rng.poisson(1.5, 500), rng.gamma(1.5, 1, 500)
    table = m.purchases_calibration_table(f, a, p, max_frequency=5)
    frame = pd.DataFrame({"bin": np.minimum(f, 5), "a": a, "p": p}).groupby("bin").mean()
    np.testing.assert_allclose(table[m.ACTUAL_MEAN].to_numpy(), frame["a"].reindex(range(6)).to_numpy())
    np.testing.assert_allclose(table[m.PREDICTED_MEAN].to_numpy(), frame["p"].reindex(range(6)).to_numpy())


def test_calibration_table_refuses_negative_frequency_and_bad_max():
    with pytest.raises(ValueError, match="frequency_cal must be non-negative"):
        m.purchases_calibration_table([-1, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="max_frequency must be an integer >= 1"):
        m.purchases_calibration_table([1, 0], [0, 0], [0, 0], max_frequency=0)


def test_purchase_metrics_names_and_values():
    out = m.purchase_metrics([0, 2, 4], [1, 2, 3], [0, 1, 1])
    assert list(out) == ["purchases_mae", "purchases_rmse", "purchases_cum_error_pct", "purchases_calibration_mae"]
    assert out["purchases_mae"] == pytest.approx(2 / 3)
    assert out["purchases_rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert out["purchases_cum_error_pct"] == pytest.approx(0.0)
    # bins: f=0 -> actual 0 vs 1 (gap 1, n=1); f=1 -> actual 3 vs 2.5 (gap 0.5, n=2)
    assert out["purchases_calibration_mae"] == pytest.approx((1 * 1 + 2 * 0.5) / 3)


def test_purchase_metrics_length_message():
    with pytest.raises(ValueError, match="actual_cal_frequency=2"):
        m.purchase_metrics([0, 1, 2], [0, 1, 2], [0, 1])


# --- spend --------------------------------------------------------------------------


def test_spend_mae_only_repeaters_with_holdout_purchases():
    actual = [np.nan, 10.0, 20.0, 30.0, np.nan]
    predicted = [5.0, 12.0, 15.0, 100.0, np.nan]
    f_cal = [2, 1, 3, 0, 0]
    f_hold = [0, 1, 2, 1, 0]
    # eligible: rows 1 and 2 -> |12-10|, |15-20|
    assert m.spend_mae(actual, predicted, f_cal, f_hold) == pytest.approx(3.5)
    assert m.spend_metrics(actual, predicted, f_cal, f_hold) == {"spend_mae": pytest.approx(3.5)}


def test_spend_mae_nan_when_nobody_qualifies_and_refuses_nan_among_eligible():
    assert math.isnan(m.spend_mae([np.nan], [3.0], [0], [1]))
    with pytest.raises(ValueError, match=r"actual_order_value \(customers with repeat and holdout purchases\) has 1 non-finite"):
        m.spend_mae([np.nan, 1.0], [3.0, 1.0], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="got lengths actual_order_value=2, predicted_order_value=1"):
        m.spend_mae([1.0, 1.0], [3.0], [1, 1], [1, 1])


# --- value ranking ------------------------------------------------------------------


def test_normalized_gini_hand_examples_match_naive_loops():
    actual = [5.0, 0.0, 3.0, 1.0, 0.0]
    for predicted in ([5, 0, 3, 1, 0], [0, 5, 3, 1, 0], [1, 1, 2, 2, 0], [1, 1, 1, 1, 1], [0.2, 0.9, 0.1, 0.4, 0.3]):
        assert m.normalized_gini(actual, predicted) == pytest.approx(
            naive_normalized_gini(actual, [float(v) for v in predicted])
        )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3)), min_size=2, max_size=6).filter(
        lambda rows: len({a for a, _ in rows}) > 1
    )
)
def test_normalized_gini_equals_naive_average_over_tie_orders(rows):
    actual = [float(a) for a, _ in rows]
    predicted = [float(p) for _, p in rows]
    assert m.normalized_gini(actual, predicted) == pytest.approx(naive_normalized_gini(actual, predicted))


def test_normalized_gini_perfect_random_reversed_constant():
    rng = np.random.default_rng(3)
    actual = rng.gamma(0.5, 20.0, 20_000)
    assert m.normalized_gini(actual, actual) == pytest.approx(1.0)
    assert m.normalized_gini(actual, 2 * actual + 1) == pytest.approx(1.0)
    assert m.normalized_gini(actual, -actual) == pytest.approx(-1.0)
    assert abs(m.normalized_gini(actual, rng.random(actual.size))) < 0.03
    assert m.normalized_gini(actual, np.ones(actual.size)) == pytest.approx(0.0, abs=1e-9)


def test_normalized_gini_does_not_depend_on_row_order_with_ties():
    rng = np.random.default_rng(4)
    actual = rng.gamma(1.0, 1.0, 300)
    predicted = rng.integers(0, 5, 300).astype(float)
    perm = rng.permutation(300)
    assert m.normalized_gini(actual[perm], predicted[perm]) == pytest.approx(m.normalized_gini(actual, predicted))


def test_normalized_gini_undefined_cases_are_nan():
    assert math.isnan(m.normalized_gini([0.0, 0.0], [1.0, 2.0]))
    assert math.isnan(m.normalized_gini([2.0, 2.0], [1.0, 2.0]))


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 6, 400).astype(float)
    p = a + rng.integers(0, 4, 400)
    assert m.spearman(a, p) == pytest.approx(spearmanr(a, p).statistic)
    assert math.isnan(m.spearman(a, np.zeros(400)))


def test_gain_curve_endpoints_and_hand_values():
    x, y = m.gain_curve([1.0, 3.0, 0.0, 4.0], [0.1, 0.5, 0.0, 0.9])
    np.testing.assert_allclose(x, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(y, [0, 0.5, 0.875, 1.0, 1.0])
    with pytest.raises(ValueError, match="actual must have a positive total"):
        m.gain_curve([0.0, 0.0], [1.0, 2.0])


def test_decile_table_and_mape_hand_example():
    actual = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 0], dtype=float)
    predicted = np.array([11, 9, 8, 7, 6, 5, 4, 3, 1, 1], dtype=float)
    table = m.decile_table(actual, predicted)
    assert table[m.DECILE].tolist() == list(range(1, 11))
    assert table[m.N_CUSTOMERS].tolist() == [1] * 10
    # decile 1: |11-10|/10 = 10 %; decile 9: |1-2|/2 = 50 %; decile 10 has zero actual: left out
    assert math.isnan(table[m.ABS_PCT_ERROR].iloc[9])
    assert m.decile_mape(actual, predicted) == pytest.approx((10.0 + 50.0) / 9)


def test_decile_table_sums_match_pandas_qcut_on_ranks():
    rng = np.random.default_rng(6)
    a, p = rng.gamma(1, 1, 1000), rng.random(1000)
    table = m.decile_table(a, p)
    ranks = pd.Series(-p).rank(method="first")
    decile = pd.qcut(ranks, 10, labels=False) + 1
    expected = pd.Series(a).groupby(decile.to_numpy()).sum()
    np.testing.assert_allclose(table[m.ACTUAL_SUM].to_numpy(), expected.to_numpy())
    assert table[m.N_CUSTOMERS].sum() == 1000


def test_decile_needs_ten_customers_and_all_zero_is_nan():
    with pytest.raises(ValueError, match="at least n_bins=10 customers, got 3"):
        m.decile_table([1, 2, 3], [1, 2, 3])
    assert math.isnan(m.decile_mape([1, 2, 3], [1, 2, 3]))
    assert math.isnan(m.decile_mape(np.zeros(10), np.arange(10.0)))


def test_top_share_captured_hand_and_ties():
    actual = [10.0, 0.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    predicted = [9.0, 8.0, 1.0, 1.0, 0, 0, 0, 0, 0, 0]
    assert m.top_share_captured(actual, predicted, 0.1) == pytest.approx(0.5)
    assert m.top_share_captured(actual, predicted, 0.2) == pytest.approx(0.5)
    # top 3: third place shared by the tie of rows 2 and 3 (mean 5) -> 15 / 20
    assert m.top_share_captured(actual, predicted, 0.3) == pytest.approx(0.75)
    assert m.top_share_captured(actual, predicted, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"top_fraction must be a number in \(0, 1\]"):
        m.top_share_captured(actual, predicted, 0.0)


def test_aggregate_error_pct():
    assert m.aggregate_error_pct([10.0, 10.0], [15.0, 10.0]) == pytest.approx(25.0)


def test_value_metrics_names():
    rng = np.random.default_rng(7)
    a, p = rng.gamma(1, 1, 100), rng.random(100)
    out = m.value_metrics(a, p, "clv")
    assert list(out) == [
        "clv_gini_norm", "clv_spearman", "clv_decile_mape",
        "clv_top10_capture", "clv_top20_capture", "clv_aggregate_error_pct",
    ]
    assert out["clv_top10_capture"] == pytest.approx(m.top_share_captured(a, p, 0.1))
    with pytest.raises(ValueError, match="prefix must be a non-empty string"):
        m.value_metrics(a, p, "")


# --- churn --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def churn_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    y = (rng.random(600) < 0.35).astype(int)
    p = np.clip(np.round(0.3 + 0.3 * y + rng.normal(0, 0.2, 600), 2), 0, 1)  # rounded: ties
    return y, p


def test_roc_auc_pr_auc_brier_match_sklearn(churn_data):
    y, p = churn_data
    assert m.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert m.average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p))
    assert m.brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p))


def test_curves_match_sklearn(churn_data):
    y, p = churn_data
    fpr, tpr, _ = m.roc_curve(y, p)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    precision, recall, _ = m.precision_recall_curve(y, p)
    sk_precision, sk_recall, _ = skm.precision_recall_curve(y, p)
    np.testing.assert_allclose(precision[::-1], sk_precision)
    np.testing.assert_allclose(recall[::-1], sk_recall)


def test_roc_auc_hand_example_with_tie():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4 half, 0.4>0.1) -> 3.5/4
    assert m.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(0.875)


def test_single_class_gives_nan_and_curves_refuse():
    assert math.isnan(m.roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(m.average_precision([0, 0, 0], [0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="y_true must hold both classes"):
        m.roc_curve([1, 1], [0.1, 0.2])


def test_labels_and_probabilities_are_checked():
    with pytest.raises(ValueError, match="y_true must hold 0/1 outcomes only"):
        m.churn_metrics([0, 2], [0.1, 0.2], "churn")
    with pytest.raises(ValueError, match=r"p must be probabilities in \[0, 1\]"):
        m.churn_metrics([0, 1], [0.1, 1.2], "churn")


def naive_ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        members = [i for i in range(len(p)) if lo <= p[i] < hi or (k == n_bins - 1 and p[i] == 1.0)]
        if members:
            total += len(members) / len(p) * abs(np.mean(y[members]) - np.mean(p[members]))
    return total


def test_ece_matches_loop_and_hand_example(churn_data):
    y, p = churn_data
    assert m.expected_calibration_error(y, p) == pytest.approx(naive_ece(y, p))
    # bin [0.2, 0.3): p 0.25, 0.25, y 0, 1 -> gap 0.25; bin [0.9, 1]: p 1.0, y 1 -> gap 0
    assert m.expected_calibration_error([0, 1, 1], [0.25, 0.25, 1.0]) == pytest.approx(2 / 3 * 0.25)


def test_reliability_table_bins():
    table = m.reliability_table([0, 1, 1, 0], [0.05, 0.95, 1.0, 0.5], n_bins=10)
    assert list(table.columns) == [m.BIN_LOWER, m.BIN_UPPER, m.N_CUSTOMERS, m.MEAN_PREDICTED, m.OBSERVED_RATE]
    assert len(table) == 10
    assert table[m.N_CUSTOMERS].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert table.loc[9, m.MEAN_PREDICTED] == pytest.approx(0.975)
    assert table.loc[9, m.OBSERVED_RATE] == pytest.approx(1.0)
    assert np.isnan(table.loc[1, m.OBSERVED_RATE])


def test_top_decile_lift_hand_example():
    y = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    p = np.linspace(1.0, 0.0, 20)
    # top 2 of 20 both churn: rate 1 over base rate 0.1
    assert m.top_decile_lift(y, p) == pytest.approx(10.0)
    assert math.isnan(m.top_decile_lift([0, 0], [0.2, 0.1]))


def test_churn_metrics_names(churn_data):
    y, p = churn_data
    out = m.churn_metrics(y, p, "churn")
    assert list(out) == ["churn_roc_auc", "churn_pr_auc", "churn_brier", "churn_ece", "churn_top_decile_lift"]
    assert out["churn_roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))


# --- registry and lift --------------------------------------------------------------


def test_every_assembled_metric_is_in_the_registry(churn_data):
    y, p = churn_data
    rng = np.random.default_rng(9)
    names = [
        *m.purchase_metrics([0, 1, 2], [0, 1, 2], [0, 1, 2]),
        *m.spend_metrics([1.0], [1.0], [1], [1]),
        *m.value_metrics(rng.gamma(1, 1, 50), rng.random(50), "clv"),
        *m.value_metrics(rng.gamma(1, 1, 50), rng.random(50), "baseline_rfm"),
        *m.churn_metrics(y, p, "churn"),
    ]
    for name in names:
        spec = registry.metric_spec(name)
        assert spec.definition and spec.label and spec.group in {"purchases", "spend", "value", "churn"}
        assert m.metric_direction(name) == spec.direction in m.DIRECTIONS
    assert m.metric_direction("clv_gini_norm") == m.HIGHER
    assert m.metric_direction("baseline_rfm_decile_mape") == m.LOWER
    assert m.metric_direction("clv_aggregate_error_pct") == m.CLOSER_TO_ZERO
    assert m.metric_direction("_brier") == m.LOWER  # a bare suffix, as the lift code asks
    assert registry.group_keys("churn") == ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift")
    assert [k for k in registry.group_keys("value")] == [n.removeprefix("clv_") for n in names if n.startswith("clv_")]


def test_unknown_metric_names_are_refused_with_the_known_ones():
    for name in ("foo", "gini_norm", "_gini_norm_x", "clv_gini", "lift_clv"):
        assert registry.find_metric(name) is None
    with pytest.raises(ValueError, match=r"unknown metric 'clv_gini'; known metrics: purchases_mae, .*clv_gini_norm"):
        m.metric_direction("clv_gini")
    with pytest.raises(ValueError, match="unknown metric group 'sales'"):
        registry.group_keys("sales")


def test_longest_suffix_wins():
    # "clv_top10_capture" must not resolve through a shorter suffix
    assert registry.metric_spec("clv_ml_top10_capture").key == "top10_capture"
    assert registry.metric_spec("purchases_mae").group == "purchases"
    assert registry.find_metric("x_purchases_mae") is None  # fixed names are not prefixed


def test_relative_lift_and_loses():
    assert m.relative_lift(0.6, 0.5, m.HIGHER) == pytest.approx(0.2)
    assert m.relative_lift(8.0, 10.0, m.LOWER) == pytest.approx(0.2)
    assert m.relative_lift(-5.0, 10.0, m.CLOSER_TO_ZERO) == pytest.approx(0.5)
    assert math.isnan(m.relative_lift(1.0, 0.0, m.HIGHER))
    assert m.loses_to_baseline(0.4, 0.5, m.HIGHER)
    assert not m.loses_to_baseline(0.5, 0.5, m.HIGHER)
    assert m.loses_to_baseline(11.0, 10.0, m.LOWER)
    assert m.loses_to_baseline(-12.0, 10.0, m.CLOSER_TO_ZERO)
    assert not m.loses_to_baseline(math.nan, 10.0, m.LOWER)
    with pytest.raises(ValueError, match="direction must be one of"):
        m.relative_lift(1.0, 1.0, "up")


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.2, 0.37, 1.0])
def test_top_share_captured_by_partition_equals_the_sorted_tie_averaged_definition(fraction):
    """The linear-time top-k sum equals sorting by descending prediction with tie groups averaged,
    including a tie group straddling the k-th place (predictions rounded to few distinct values)."""
    rng = np.random.default_rng(11)
    actual = np.where(rng.random(2_000) < 0.5, 0.0, rng.gamma(2.0, 30.0, 2_000))
    predicted = np.round(rng.gamma(2.0, 1.0, 2_000), 0)
    order = np.argsort(-predicted, kind="stable")
    means = pd.Series(actual).groupby(predicted).transform("mean").to_numpy()
    k = max(1, math.floor(fraction * actual.size + 0.5))
    expected = means[order][:k].sum() / actual.sum()
    assert m.top_share_captured(actual, predicted, fraction) == pytest.approx(expected, rel=1e-12)


def test_spearman_matches_scipy_on_a_large_tie_heavy_sample():
    rng = np.random.default_rng(12)
    actual = np.where(rng.random(50_000) < 0.6, 0.0, np.round(rng.gamma(2.0, 30.0, 50_000)))
    predicted = np.round(actual * rng.random(50_000) + rng.gamma(1.0, 5.0, 50_000), 1)
    assert m.spearman(actual, predicted) == pytest.approx(spearmanr(actual, predicted).statistic, rel=1e-12)


# --- one sort for several metrics (speed) must not change a value -------------------------


def _tied_binary_sample(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    y[:2] = (0.0, 1.0)  # both classes
    return y, np.round(rng.random(n), seed % 4)  # 0..3 decimals: from heavy ties to none


@pytest.mark.parametrize("seed", range(8))
def test_binary_curves_equal_the_separate_metrics_bit_for_bit(seed: int) -> None:
    y, s = _tied_binary_sample(seed, 50 + 97 * seed)
    curves = m.binary_curves(y, s)
    assert curves.roc_auc == m.roc_auc(y, s) == skm.roc_auc_score(y, s)
    assert curves.average_precision == m.average_precision(y, s) == skm.average_precision_score(y, s)
    for got, want in zip((curves.fpr, curves.tpr, curves.roc_thresholds), m.roc_curve(y, s), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip((curves.precision, curves.recall, curves.pr_thresholds), m.precision_recall_curve(y, s),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    assert m.ranking_areas(y, s) == (curves.roc_auc, curves.average_precision)


def test_ranking_areas_one_class_is_nan_and_curves_refuse_it() -> None:
    y, s = np.zeros(5), np.linspace(0.1, 0.5, 5)
    auc, ap = m.ranking_areas(y, s)
    assert math.isnan(auc) and math.isnan(ap)
    with pytest.raises(ValueError, match="y_true must hold both classes"):
        m.binary_curves(y, s)


def test_value_metrics_by_prefix_equal_value_metrics_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    actual = np.round(rng.gamma(0.4, 30.0, 3_000), 1) * (rng.random(3_000) < 0.6)
    predictions = {"served": actual * rng.lognormal(0, 1, 3_000), "ties": np.round(rng.random(3_000), 1),
                   "constant": np.full(3_000, 2.0)}
    together = m.value_metrics_by_prefix(actual, predictions)
    one_by_one = {k: v for prefix, p in predictions.items() for k, v in m.value_metrics(actual, p, prefix).items()}
    assert list(together) == list(one_by_one)
    for key, value in one_by_one.items():
        assert together[key] == value or (math.isnan(value) and math.isnan(together[key])), key
    curves = m.gain_curves(actual, predictions)
    for prefix, p in predictions.items():
        x, y = m.gain_curve(actual, p)
        np.testing.assert_array_equal(curves[prefix][0], x)
        np.testing.assert_array_equal(curves[prefix][1], y)
        assert curves[prefix][2] == m.normalized_gini(actual, p)


def test_average_ranks_from_a_descending_order_are_the_same() -> None:
    rng = np.random.default_rng(2)
    x = np.round(rng.random(5_000), 2)
    np.testing.assert_array_equal(m._average_ranks(x, np.argsort(-x, kind="stable")), rankdata(x))
    np.testing.assert_array_equal(m._average_ranks(x), rankdata(x))
