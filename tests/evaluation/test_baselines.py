"""Naive baselines: hand examples and input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.evaluation import baselines as b


def test_historical_spend_scales_rate_to_holdout_length():
    spend = [100.0, 30.0, 0.0]
    age = [50.0, 10.0, 20.0]
    out = b.historical_spend_baseline(spend, age, 25.0)
    np.testing.assert_allclose(out, [50.0, 75.0, 0.0])


def test_historical_spend_floors_short_exposure_and_accepts_a_column():
    table = pd.DataFrame({"spend": [10.0, 10.0], schemas.T_CAL: [0.0, 0.5], schemas.DURATION_HOLDOUT: [4.0, 4.0]})
    out = b.historical_spend_baseline(table["spend"], table[schemas.T_CAL], table[schemas.DURATION_HOLDOUT])
    np.testing.assert_allclose(out, [40.0, 40.0])  # exposure floored at 1 time unit
    out = b.historical_spend_baseline(table["spend"], table[schemas.T_CAL], 4.0, min_exposure=0.5)
    np.testing.assert_allclose(out, [80.0, 80.0])


def test_historical_spend_input_checks():
    with pytest.raises(ValueError, match="got lengths spend_cal=2, T_cal=1"):
        b.historical_spend_baseline([1.0, 2.0], [1.0], 3.0)
    with pytest.raises(ValueError, match="T_cal must be non-negative"):
        b.historical_spend_baseline([1.0], [-1.0], 3.0)
    with pytest.raises(ValueError, match="duration_holdout must be non-negative"):
        b.historical_spend_baseline([1.0], [1.0], -3.0)
    with pytest.raises(ValueError, match="spend_cal has 1 non-finite"):
        b.historical_spend_baseline([np.nan], [1.0], 3.0)
    with pytest.raises(ValueError, match="duration_holdout must be numeric"):
        b.historical_spend_baseline([1.0], [1.0], "soon")
    with pytest.raises(ValueError, match="min_exposure must be a positive"):
        b.historical_spend_baseline([1.0], [1.0], 3.0, min_exposure=0.0)


def test_historical_spend_does_not_mutate_inputs():
    spend, age = np.array([1.0, 2.0]), np.array([0.0, 3.0])
    b.historical_spend_baseline(spend, age, 2.0)
    np.testing.assert_array_equal(age, [0.0, 3.0])
    np.testing.assert_array_equal(spend, [1.0, 2.0])


def test_calibration_repeat_spend():
    np.testing.assert_allclose(b.calibration_repeat_spend([0, 2, 3], [0.0, 10.0, 5.0]), [0.0, 20.0, 15.0])
    with pytest.raises(ValueError, match="frequency_cal must be non-negative"):
        b.calibration_repeat_spend([-1], [1.0])


def test_rfm_score_orders_by_sum_then_monetary_frequency_recency():
    r = [5, 1, 3, 3, 2, 2]
    f = [1, 1, 3, 3, 2, 3]
    m = [1, 5, 3, 3, 3, 2]
    score = b.rfm_score_baseline(r, f, m)
    # sums: 7, 7, 9, 9, 7, 7 -> the two 9s are identical and tied at the top;
    # among the 7s: M decides (5 > 3 > 2 > 1)
    assert score[2] == score[3] == score.max()
    order_of_sevens = np.argsort(-score[[0, 1, 4, 5]])
    assert [[0, 1, 4, 5][i] for i in order_of_sevens] == [1, 4, 5, 0]
    assert score.min() == 1.0


def test_rfm_score_input_checks():
    with pytest.raises(ValueError, match="got lengths recency_score=2, frequency_score=1, monetary_score=2"):
        b.rfm_score_baseline([1, 2], [1], [1, 2])


def test_churn_baseline_from_p_alive():
    np.testing.assert_allclose(b.churn_baseline_from_p_alive([1.0, 0.25, 0.0]), [0.0, 0.75, 1.0])
    with pytest.raises(ValueError, match=r"p_alive must be probabilities in \[0, 1\]"):
        b.churn_baseline_from_p_alive([1.5])


@pytest.mark.parametrize("seed", range(4))
def test_rfm_score_is_the_dense_rank_of_the_lexicographic_keys(seed: int) -> None:
    """The one-sort dense rank equals np.unique(axis=0)'s (the former implementation)."""
    rng = np.random.default_rng(seed)
    n = 2_000
    r, f = rng.integers(1, 6, n).astype(float), rng.integers(1, 6, n).astype(float)
    m = rng.integers(1, 6, n).astype(float) if seed % 2 else np.round(rng.random(n) * 5, 1)
    _, dense = np.unique(np.column_stack([r + f + m, m, f, r]), axis=0, return_inverse=True)
    np.testing.assert_array_equal(b.rfm_score_baseline(r, f, m), dense.reshape(-1) + 1.0)
    assert b.rfm_score_baseline([], [], []).size == 0
