"""Scores are checked before anything is written (issue 11, item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.data.score_checks import InvalidScoresError, check_scores


def _scores(**columns: list[float]) -> pd.DataFrame:
    base = {"customer_id": ["a", "b", "c"], "p_alive": [0.5, 1.0, 0.0], "clv": [1.0, 0.0, 3.0],
            "churn_probability": [0.1, 0.2, 0.3], "current_value": [-5.0, 0.0, 1.0]}
    return pd.DataFrame({**base, **columns})


def test_valid_scores_pass() -> None:
    check_scores(_scores())


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("clv", [9.4e299, np.inf, np.nan], r"column 'clv': 2 non-finite \(NaN or infinite\) value\(s\) \(customers 'b', 'c'\)"),
        ("clv", [1.0, -0.5, 2.0], r"column 'clv': 1 negative value\(s\) \(customers 'b'\)"),
        ("expected_order_value", [-1.0, -2.0, 3.0], r"column 'expected_order_value': 2 negative value\(s\)"),
        ("p_alive", [0.5, 1.2, -0.1], r"column 'p_alive': 2 outside \[0, 1\] value\(s\) \(customers 'b', 'c'\)"),
        ("current_value", [np.nan, 0.0, 1.0], r"column 'current_value': 1 non-finite"),
    ],
)
def test_impossible_scores_are_refused(column: str, values: list[float], message: str) -> None:
    with pytest.raises(InvalidScoresError, match=message) as info:
        check_scores(_scores(**{column: values}))
    assert "nothing was written" in str(info.value)
