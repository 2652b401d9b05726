"""Cohort-weighted model expectations over time equal the per-customer sum."""

from __future__ import annotations

import numpy as np
import pytest

from clvkit.evaluation import plots, tracking
from clvkit.features import btyd
from clvkit.io.datasets import load_builtin_transactions
from clvkit.models.bgnbd import BetaGeoModel


@pytest.fixture(scope="module")
def fitted() -> BetaGeoModel:
    """BG/NBD fitted on the CDNOW sample's calibration period, in weeks."""
    summary = btyd.summary(load_builtin_transactions("cdnow_sample"), "1997-09-30", time_unit="W")
    return BetaGeoModel().fit(summary[["frequency", "recency", "T"]])


def test_cohort_weighted_curve_equals_per_customer_sum(fitted):
    rng = np.random.default_rng(3)
    births = rng.integers(0, 400, 5_000)  # days since the start of the data, many shared
    grid = np.arange(0, 600, 7)
    unit_days = 7.0
    per_customer = np.array(
        [fitted.expected_purchases_unconditional((g - births[births <= g]) / unit_days).sum() for g in grid]
    )
    born, counts = tracking.birth_cohorts(births)
    assert born.size < births.size and counts.sum() == births.size
    cohort = tracking.expected_cumulative_by_cohort(fitted, born, counts, grid, unit_days=unit_days)
    np.testing.assert_allclose(cohort, per_customer, rtol=1e-9, atol=1e-9)
    assert cohort[0] == per_customer[0]  # only customers born on day 0, E[X(0)] = 0
    assert np.all(np.diff(cohort) >= 0)


def test_blocks_give_the_same_curve(fitted, monkeypatch):
    births, counts = np.array([0.0, 3.0, 10.0, 50.0]), np.array([5, 1, 2, 7])
    grid = np.arange(0, 80, 3)
    whole = tracking.expected_cumulative_by_cohort(fitted, births, counts, grid)
    monkeypatch.setattr(tracking, "_MAX_PAIRS_PER_BLOCK", 5)  # one grid point per block
    np.testing.assert_allclose(tracking.expected_cumulative_by_cohort(fitted, births, counts, grid), whole,
                               rtol=1e-12)
    assert whole[grid < 3].sum() == 0.0 and whole[-1] > 0


def test_cohort_errors(fitted):
    with pytest.raises(ValueError, match="must be aligned"):
        tracking.expected_cumulative_by_cohort(fitted, [0.0, 1.0], [1], [5.0])
    with pytest.raises(ValueError, match="unit_days must be a positive"):
        tracking.expected_cumulative_by_cohort(fitted, [0.0], [1], [5.0], unit_days=0.0)
    with pytest.raises(ValueError, match="birth_offsets must be finite"):
        tracking.birth_cohorts([0.0, np.nan])
    assert tracking.expected_cumulative_by_cohort(fitted, [], [], [1.0, 2.0]).tolist() == [0.0, 0.0]


def test_thin_curve_is_bounded_deterministic_and_keeps_ends():
    x = np.linspace(0.0, 1.0, 200_001)
    y = x**2
    tx, ty = plots.thin_curve(x, y, max_points=1_000)
    assert tx.size <= 1_000 and tx[0] == 0.0 and tx[-1] == 1.0
    np.testing.assert_array_equal(ty, tx**2)
    again = plots.thin_curve(x, y, max_points=1_000)
    np.testing.assert_array_equal(again[0], tx)
    small = plots.thin_curve(x[:10], y[:10])
    assert small[0].size == 10


def test_large_gain_and_roc_curves_draw_at_most_max_points():
    rng = np.random.default_rng(0)
    n = 3 * plots.MAX_CURVE_POINTS
    actual = rng.gamma(0.5, 20.0, n)
    score = actual * rng.lognormal(0, 1, n)
    fig = plots.plot_gain_curve(actual, {"model": score})
    sizes = [len(line.get_xdata()) for line in fig.axes[0].get_lines()]
    assert max(sizes) <= plots.MAX_CURVE_POINTS
    assert fig.axes[0].get_legend()._get_loc() != 0  # a fixed corner, not "best" (code 0)
    y = (rng.random(n) < 0.3).astype(int)
    fig = plots.plot_roc_pr(y, {"p": np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1)})
    for ax in fig.axes:
        assert max(len(line.get_xdata()) for line in ax.get_lines()) <= plots.MAX_CURVE_POINTS
