"""Pieces that must tolerate empty or degenerate inputs without crashing (issue 8, item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.features.builder import FeatureBuilder
from clvkit.models.scorer import tier_thresholds


@pytest.mark.parametrize(
    ("clv", "expected"),
    [
        ([], (np.inf, np.inf)),  # nobody to tier
        ([0.0, 0.0, -3.0], (np.inf, np.inf)),  # no positive value: everyone C
        ([np.nan], (np.inf, np.inf)),
        ([np.nan, 1.0], (1.0, 1.0)),  # was: "zero-size array to reduction operation minimum"
        ([np.inf, 2.0, 1.0], (1.0, 1.0)),  # non-finite values carry no share (2 then 1: shares before 0, .67)
        ([5.0, 4.0, 3.0, 2.0, 1.0], (3.0, 1.0)),  # shares before: 0, .33, .6, .8, .93
    ],
)
def test_tier_thresholds_tolerate_empty_and_non_finite(clv: list[float], expected: tuple[float, float]) -> None:
    assert tier_thresholds(np.array(clv, dtype=float), 0.8, 0.95) == expected


def test_tier_thresholds_do_not_overflow() -> None:
    with np.errstate(over="raise", invalid="raise"):
        assert tier_thresholds(np.array([1e308, 1e308, 1.0]), 0.4, 0.95) == (1e308, 1e308)


def test_count_only_builder_fits_without_as_of() -> None:
    """A count-only log (no amount) and no as_of: the cut-off is the last date, as with amounts."""
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "timestamp": pd.to_datetime(["2021-01-01", "2021-02-01", "2021-03-05"]).astype("datetime64[us]")})
    builder = FeatureBuilder(time_unit="W").fit(tx)
    assert str(builder.as_of_) == "2021-03-05"
    assert builder.has_amount_ is False
    assert list(tx.columns) == ["customer_id", "timestamp"]  # the caller's frame is untouched
