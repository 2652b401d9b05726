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
