"""Plots return titled Figures with the expected panels and lines and render to PNG."""

from __future__ import annotations

import subprocess
import sys
from io import BytesIO

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clvkit import schemas
from clvkit.evaluation import metrics, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def render(fig: Figure) -> bytes:
    buffer = BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def check_figure(fig: Figure, n_axes: int) -> None:
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_axes
    main = fig.axes[0]
    assert main.get_title()
    assert main.get_xlabel() and main.get_ylabel()
    png = render(fig)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


@pytest.fixture(scope="module")
def value_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 20.0, 300)
    return actual, actual * rng.lognormal(0, 1, 300)


def test_no_pyplot_import():
    code = (
        "import sys, clvkit.evaluation.plots, clvkit.evaluation.report;"
        "sys.exit('matplotlib.pyplot' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_calibration_purchases():
    table = metrics.purchases_calibration_table([0, 1, 2, 9, 3], [0, 1, 2, 5, 2], [0.2, 1.1, 1.5, 4.0, 2.5])
    fig = plots.plot_calibration_purchases(table)
    check_figure(fig, 1)
    assert len(fig.axes[0].get_lines()) == 2
    assert fig.axes[0].get_legend() is not None
    with pytest.raises(ValueError, match=r"calibration_table lacks column\(s\) \['label'\]"):
        plots.plot_calibration_purchases(table.drop(columns=metrics.BIN_LABEL))


def test_frequency_histogram_and_period_transactions():
    hist = plots.frequency_histogram([0, 0, 1, 3, 9, 12], max_frequency=7)
    assert hist.tolist() == [2, 1, 0, 1, 0, 0, 0, 2]
    fig = plots.plot_period_transactions(hist, hist * 0.9)
    check_figure(fig, 1)
    assert len(fig.axes[0].patches) == 2 * hist.size
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == "7+"
    with pytest.raises(ValueError, match="got lengths actual_counts=8, model_counts=3"):
        plots.plot_period_transactions(hist, [1, 2, 3])


def test_cumulative_tracking():
    dates = pd.date_range("2020-01-01", periods=20, freq="W")
    actual = np.cumsum(np.arange(20.0))
    fig = plots.plot_cumulative_tracking(dates, actual, actual * 1.1, pd.Timestamp("2020-03-01"))
    check_figure(fig, 1)
    assert len(fig.axes[0].get_lines()) == 3  # actual, model, calibration end
    with pytest.raises(ValueError, match="got lengths dates=20, actual_cum=20, predicted_cum=3"):
        plots.plot_cumulative_tracking(dates, actual, [1, 2, 3], dates[5])


def test_deciles(value_data):
    actual, predicted = value_data
    fig = plots.plot_deciles(actual, predicted)
    check_figure(fig, 1)
    assert len(fig.axes[0].patches) == 20


def test_gain_curve(value_data):
    actual, predicted = value_data
    fig = plots.plot_gain_curve(actual, {"model": predicted, "baseline": np.ones_like(actual)})
    check_figure(fig, 1)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # two scores, perfect, random
    assert "Gini" in lines[0].get_label()
    with pytest.raises(ValueError, match="scores must be a non-empty mapping"):
        plots.plot_gain_curve(actual, {})
    with pytest.raises(ValueError, match=r"every score array must have 300 values"):
        plots.plot_gain_curve(actual, {"short": [1.0, 2.0]})


def test_reliability_and_roc_pr():
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, 400), 0, 1)
    fig = plots.plot_reliability(metrics.reliability_table(y, p))
    check_figure(fig, 1)
    assert len(fig.axes[0].get_lines()) == 2
    staged = pd.concat(
        [metrics.reliability_table(y, p).assign(stage="raw"), metrics.reliability_table(y, p ** 2).assign(stage="cal")]
    )
    assert len(plots.plot_reliability(staged, group_col="stage").axes[0].get_lines()) == 3

    fig = plots.plot_roc_pr(y, {"xgb": p, "1 - p_alive": rng.random(400)})
    check_figure(fig, 2)
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]
    assert fig.axes[1].get_title()


def test_feature_importance():
    importances = {f"f{i}": float(i) for i in range(30)}
    fig = plots.plot_feature_importance(importances, top_n=5)
    check_figure(fig, 1)
    bars = fig.axes[0].patches
    assert len(bars) == 5
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "f29"  # largest on top
    with pytest.raises(ValueError, match="importances must be a non-empty mapping"):
        plots.plot_feature_importance({})


def test_p_alive_grid_and_matrix():
    grid = plots.p_alive_matrix_grid(max_frequency=5, max_T=20.0, n=11)
    assert list(grid.columns) == [schemas.FREQUENCY, schemas.RECENCY, schemas.T]
    assert len(grid) == 6 * 11
    assert (grid[schemas.T] == 20.0).all()
    assert grid[schemas.RECENCY].max() == 20.0
    p_alive = 1.0 / (1.0 + grid[schemas.FREQUENCY] * (20.0 - grid[schemas.RECENCY]) / 20.0)
    matrix = plots.p_alive_matrix_from_grid(grid, p_alive)
    assert matrix.shape == (6, 11)
    fig = plots.plot_p_alive_matrix(matrix)
    check_figure(fig, 2)  # heat map + colour bar
    with pytest.raises(ValueError, match="max_T must be a positive"):
        plots.p_alive_matrix_grid(5, 0.0)


def test_segment_summary():
    df = pd.DataFrame(
        {
            schemas.RFM_SEGMENT: ["champions", "at risk", "champions", None],
            schemas.VALUE_TIER: ["A", "B", "A", "C"],
            "spend": [100.0, 50.0, 80.0, 5.0],
            schemas.CLV: [300.0, 40.0, 200.0, 10.0],
            schemas.CHURN_LOSS_VALUE: [30.0, 20.0, 10.0, 9.0],
        }
    )
    before = df.copy()
    out = plots.segment_summary(df, schemas.RFM_SEGMENT, schemas.VALUE_TIER, current_value_col="spend")
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == [
        plots.GROUPING, plots.GROUP, plots.CUSTOMERS, plots.CURRENT_VALUE, plots.CLV, plots.CHURN_LOSS,
        plots.CLV_SHARE, plots.CHURN_LOSS_SHARE,
    ]
    assert set(out[plots.GROUPING]) == {schemas.RFM_SEGMENT, schemas.VALUE_TIER}  # no quadrant column: no block
    segments = out[out[plots.GROUPING] == schemas.RFM_SEGMENT]
    assert segments[plots.GROUP].tolist() == ["champions", "at risk", "(missing)"]
    assert segments[plots.CUSTOMERS].tolist() == [2, 1, 1]
    assert segments[plots.CLV].tolist() == [500.0, 40.0, 10.0]
    assert segments[plots.CURRENT_VALUE].tolist() == [180.0, 50.0, 5.0]
    tiers = out[out[plots.GROUPING] == schemas.VALUE_TIER]
    assert tiers[plots.GROUP].tolist() == ["A", "B", "C"]
    assert tiers[plots.CHURN_LOSS].tolist() == [40.0, 20.0, 9.0]
    assert tiers[plots.CLV_SHARE].sum() == pytest.approx(1.0)
    assert tiers[plots.CHURN_LOSS_SHARE].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"df lacks column\(s\) \['margin'\]"):
        plots.segment_summary(df, schemas.RFM_SEGMENT, schemas.VALUE_TIER, current_value_col="margin")


def test_value_at_risk_summary_leads_with_the_top_customers():
    loss = np.array([50.0, 20.0, 10.0, 5.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])  # total 100
    df = pd.DataFrame({
        schemas.RFM_SEGMENT: ["Can't lose"] * 2 + ["Lost"] * 8, schemas.VALUE_TIER: ["A"] * 5 + ["C"] * 5,
        schemas.VALUE_QUADRANT: ["Stars", "Fading"] * 5, schemas.CURRENT_VALUE: np.arange(10.0),
        schemas.CLV: loss / 2, schemas.CHURN_LOSS_VALUE: loss,
    })
    out = plots.value_at_risk_summary(df)
    top = out.iloc[0]
    assert top[plots.GROUPING] == "top customers" and top[plots.CUSTOMERS] == 1
    assert top[plots.CHURN_LOSS_SHARE] == pytest.approx(0.5)
    assert plots.churn_loss_concentration(loss, 0.2) == pytest.approx(0.7)
    assert list(out[plots.GROUPING].unique()) == ["top customers", schemas.VALUE_QUADRANT, schemas.RFM_SEGMENT,
                                                  schemas.VALUE_TIER]
    quadrants = out[out[plots.GROUPING] == schemas.VALUE_QUADRANT]
    assert quadrants[plots.GROUP].tolist() == ["Stars", "Fading"]  # by churn-loss value: 69 vs 31
    assert quadrants[plots.CHURN_LOSS].tolist() == [69.0, 31.0]


def _segment_block_by_text_labels(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """The former block: every row's label as text, grouped by that text."""
    labels = df[col].astype(object).where(df[col].notna(), plots.MISSING_GROUP).astype(str)
    grouped = df[[schemas.CURRENT_VALUE, schemas.CLV, schemas.CHURN_LOSS_VALUE]].groupby(labels.to_numpy(), sort=True)
    return pd.DataFrame({plots.GROUP: grouped.size().index.astype(str), plots.CUSTOMERS: grouped.size().to_numpy(),
                         plots.CLV: grouped[schemas.CLV].sum().to_numpy()})


@pytest.mark.parametrize("as_category", [False, True])
def test_segment_summary_groups_by_label_text_as_before(as_category: bool) -> None:
    """Labels are made per distinct value: 1 and "1" still form one group, missing is "(missing)"."""
    rng = np.random.default_rng(5)
    n = 500
    segment = pd.Series(rng.choice(np.array(["champions", "lost", 1, "1", None], dtype=object), n), dtype=object)
    df = pd.DataFrame({
        schemas.RFM_SEGMENT: segment.astype("category") if as_category else segment,
        schemas.VALUE_TIER: rng.choice(["A", "B", "C"], n), schemas.CURRENT_VALUE: rng.random(n),
        schemas.CLV: rng.gamma(0.5, 10.0, n), schemas.CHURN_LOSS_VALUE: rng.gamma(0.5, 3.0, n),
    })
    out = plots.segment_summary(df)
    for col in (schemas.RFM_SEGMENT, schemas.VALUE_TIER):
        got = out[out[plots.GROUPING] == col].set_index(plots.GROUP)
        want = _segment_block_by_text_labels(df, col).set_index(plots.GROUP)
        assert sorted(got.index) == sorted(want.index)
        assert got.loc[want.index, plots.CUSTOMERS].tolist() == want[plots.CUSTOMERS].tolist()
        assert got.loc[want.index, plots.CLV].tolist() == want[plots.CLV].tolist()  # same sums, bit for bit
    assert "1" in set(out[plots.GROUP]) and plots.MISSING_GROUP in set(out[plots.GROUP])
    pd.testing.assert_frame_equal(plots.value_at_risk_summary(df, summary=out), plots.value_at_risk_summary(df))
