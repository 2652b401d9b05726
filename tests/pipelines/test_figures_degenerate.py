"""Figures of degenerate evaluations are skipped with a logged reason, never a crash (issue 8)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from clvkit.evaluation import metrics, plots
from clvkit.pipelines.figures import _built, _value_figures_skipped


def test_value_figures_skipped_without_realised_value() -> None:
    assert _value_figures_skipped(np.array([1.0, 0.0]), clv_available=True) == ""
    assert "serves no CLV" in _value_figures_skipped(np.array([1.0]), clv_available=False)
    assert _value_figures_skipped(np.zeros(3), clv_available=True).startswith(
        "the realised holdout value of the 3 customer(s) totals 0, so there is no value to rank")
    assert "totals nan" in _value_figures_skipped(np.array([np.nan, 1.0]), clv_available=True)


def test_degenerate_figures_are_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    actual, score = np.arange(8.0), np.arange(8.0)
    with pytest.raises(ValueError, match="needs at least n_bins=10 customers, got 8"):
        metrics.decile_table(actual, score)  # what crashed `clvkit train` with 8 customers (exit 1)
    with caplog.at_level(logging.WARNING, logger="clvkit.pipelines.figures"):
        built = _built({"deciles": lambda: metrics.decile_table(actual, score),
                        "gain_curve": lambda: plots.plot_gain_curve(np.zeros(8), {"served": score}),
                        "ok": lambda: metrics.decile_table(np.arange(10.0), np.arange(10.0))}, "figure")
    assert list(built) == ["ok"]
    assert "figure 'deciles' skipped: a decile table needs at least n_bins=10 customers, got 8" in caplog.text
    assert "figure 'gain_curve' skipped: actual must have a positive total for a gain curve, got 0" in caplog.text
