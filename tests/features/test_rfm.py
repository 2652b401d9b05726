"""RFM scores, segments and value tiers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from clvkit.features.rfm import (
    DEFAULT_SEGMENTS,
    RFMEdges,
    fm_scores,
    purchase_cycle_days,
    rfm_scores,
    rfm_segments,
    segment_table,
    value_tier_thresholds,
    value_tiers,
)


@pytest.fixture()
def table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 1_000
    return pd.DataFrame(
        {
            "recency": rng.integers(0, 365, n),
            "frequency": rng.geometric(0.4, n),  # many ties
            "monetary": np.round(rng.gamma(2.0, 20.0, n), 2),
        },
        index=pd.Index([f"c{i:04d}" for i in range(n)], name="customer_id"),
    )


def _scores(t: pd.DataFrame, edges: RFMEdges | None = None) -> pd.DataFrame:
    return rfm_scores(t["recency"], t["frequency"], t["monetary"], edges)


def test_f_and_m_on_repeat_customers_r_on_cycle_days(table: pd.DataFrame) -> None:
    s = _scores(table)
    assert list(s.columns) == ["r_score", "f_score", "m_score", "rfm_score"]
    repeat = table["frequency"] > 1
    assert (s.loc[~repeat, "f_score"] == 1).all() and (s.loc[repeat, "f_score"] >= 2).all()
    m_repeat = s.loc[repeat, "m_score"].value_counts()
    assert set(m_repeat.index) == {1, 2, 3, 4, 5}
    assert m_repeat.between(0.15 * repeat.sum(), 0.25 * repeat.sum()).all(), m_repeat  # quintiles of repeaters
    edges = RFMEdges.fit(table["recency"], table["frequency"], table["monetary"])
    assert edges.recency == (15.0, 30.0, 60.0, 120.0)  # default 30-day cycle x (0.5, 1, 2, 4)
    assert edges.frequency == (1.0, *np.quantile(table.loc[repeat, "frequency"], [0.25, 0.5, 0.75]))
    assert (s["rfm_score"] == s["r_score"].astype(str) + s["f_score"].astype(str)
            + s["m_score"].astype(str)).all()


def test_recency_edges_from_cycle_or_configured() -> None:
    edges = RFMEdges.fit([1.0], [1.0], [1.0], cycle_days=40.0)
    assert edges.recency == (20.0, 40.0, 80.0, 160.0)
    edges = RFMEdges.fit([1.0], [1.0], [1.0], cycle_days=40.0, cycle_multiples=(1, 2, 3, 4))
    assert edges.recency == (40.0, 80.0, 120.0, 160.0)
    edges = RFMEdges.fit([1.0], [1.0], [1.0], cycle_days=40.0, recency_days=(7, 30, 90, 365))
    assert edges.recency == (7.0, 30.0, 90.0, 365.0)
    with pytest.raises(ValueError, match=r"features.rfm_recency_days must be 4 non-negative, non-decreasing"):
        RFMEdges.fit([1.0], [1.0], [1.0], recency_days=(30, 7, 90, 365))
    assert purchase_cycle_days([np.nan, 10.0, 20.0, 90.0]) == 20.0
    assert purchase_cycle_days([np.nan]) == 30.0


def test_segment_of_hand_made_customers() -> None:
    """Pinned segments: cycle 30 days -> R edges 15/30/60/120 days; F edges 1/2/3/5; M edges below."""
    edges = RFMEdges(recency=(15, 30, 60, 120), frequency=(1, 2, 3, 5), monetary=(20, 40, 60, 80))
    customers = pd.DataFrame.from_records([
        # name, days since last purchase, purchase days, spend per purchase day, segment
        ("frequent big spender, bought last week", 7, 12, 150.0, "Champions"),
        ("frequent big spender, quiet 200 days", 200, 12, 150.0, "Can't lose"),
        ("frequent big spender, quiet 90 days", 90, 12, 150.0, "Can't lose"),
        ("frequent cheap buyer, quiet 200 days", 200, 12, 10.0, "At risk"),
        ("regular, mid spend, quiet 200 days", 200, 4, 50.0, "At risk"),
        ("regular, bought 3 weeks ago", 21, 6, 70.0, "Loyal"),
        ("regular, bought 45 days ago", 45, 6, 70.0, "Loyal"),
        ("one big purchase, yesterday", 1, 1, 500.0, "Potential loyalist"),
        ("one small purchase, yesterday", 1, 1, 5.0, "New"),
        ("one small purchase, 3 weeks ago", 21, 1, 5.0, "Promising"),
        ("one small purchase, 45 days ago", 45, 1, 5.0, "About to sleep"),
        ("one big purchase, a year ago", 365, 1, 500.0, "Hibernating"),
        ("one small purchase, a year ago", 365, 1, 5.0, "Lost"),
        ("two small purchases, 45 days ago", 45, 2, 30.0, "About to sleep"),
        ("three mid purchases, 45 days ago", 45, 3, 50.0, "Need attention"),
    ], columns=["name", "recency", "frequency", "monetary", "segment"]).set_index("name")
    s = _scores(customers, edges)
    segments = rfm_segments(s["r_score"], s["f_score"], m_score=s["m_score"])
    assert segments.to_dict() == customers["segment"].to_dict()
    # without amounts (count-only) the segment uses F alone
    assert rfm_segments(s["r_score"], s["f_score"]).loc["one big purchase, yesterday"] == "New"


def test_fm_score_lifts_f_by_at_most_one_step() -> None:
    assert list(fm_scores([1, 1, 2, 3, 5, 5], [5, 1, 5, 5, 1, 5])) == [2, 1, 3, 4, 3, 5]
    assert list(fm_scores([1, 4], None)) == [1, 4]


def test_more_recent_gets_higher_r_score(table: pd.DataFrame) -> None:
    s = _scores(table)
    order = table["recency"].sort_values(kind="stable").index
    assert s.loc[order, "r_score"].is_monotonic_decreasing
    order = table["monetary"].sort_values(kind="stable").index
    assert s.loc[order, "m_score"].is_monotonic_increasing


def test_equal_values_equal_scores_and_right_closed_bins() -> None:
    edges = RFMEdges(recency=(10, 20, 30, 40), frequency=(1, 1, 1, 2), monetary=(5, 6, 7, 8))
    scores = edges.score([10, 10.5, 40, 41], [1, 1, 2, 3], [5, 5, 8.0, 100])
    assert list(scores["r_score"]) == [5, 4, 2, 1]
    assert list(scores["f_score"]) == [1, 1, 4, 5]  # edge values fall in the lower bin
    assert list(scores["m_score"]) == [1, 1, 4, 5]


def test_shuffle_invariant(table: pd.DataFrame) -> None:
    shuffled = table.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(_scores(shuffled).loc[table.index], _scores(table))


def test_edges_learnt_on_one_table_applied_to_another(table: pd.DataFrame) -> None:
    fit, other = table.iloc[:600], table.iloc[600:]
    edges = RFMEdges.fit(fit["recency"], fit["frequency"], fit["monetary"], cycle_days=45.0)
    applied = _scores(other, edges)
    repeat = fit["frequency"] > 1
    np.testing.assert_allclose(edges.monetary, np.quantile(fit.loc[repeat, "monetary"], [0.2, 0.4, 0.6, 0.8]))
    pd.testing.assert_frame_equal(applied, _scores(table, edges).loc[other.index])
    assert RFMEdges.from_dict(edges.to_dict()) == edges


def test_edges_errors(table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="cannot learn RFM frequency edges from an empty table"):
        RFMEdges.fit([], [], [])
    with pytest.raises(ValueError, match="RFM monetary values must be finite numbers"):
        RFMEdges.fit([1.0], [1.0], [np.nan])
    with pytest.raises(ValueError, match="RFM purchase cycle must be a positive number of days"):
        RFMEdges.fit([1.0], [1.0], [1.0], cycle_days=0.0)
    with pytest.raises(ValueError, match=r"RFM edges \['frequency'\] must be 4 non-decreasing numbers"):
        RFMEdges.from_dict({"recency": [1, 2, 3, 4], "frequency": [3, 2, 1, 0], "monetary": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match="RFM edges need lists 'recency', 'frequency', 'monetary'"):
        RFMEdges.from_dict({"recency": [1, 2, 3, 4]})


# --- segments -------------------------------------------------------------------------


def test_default_segments_cover_all_cells_once() -> None:
    cells = segment_table()
    assert cells.shape == (5, 5)
    assert set(cells.ravel()) == {"Champions", "Loyal", "Potential loyalist", "New", "Promising",
                                  "Need attention", "About to sleep", "At risk", "Can't lose",
                                  "Hibernating", "Lost"}
    assert cells[4, 4] == "Champions" and cells[0, 0] == "Lost" and cells[4, 0] == "New"
    assert cells[0, 4] == "Can't lose"


def test_segments_from_scores(table: pd.DataFrame) -> None:
    s = _scores(table)
    seg = rfm_segments(s["r_score"], s["f_score"])
    assert seg.index.equals(table.index) and seg.name == "rfm_segment"
    row = s.iloc[0]
    assert seg.iloc[0] == segment_table()[row["r_score"] - 1, row["f_score"] - 1]


def test_range_patterns() -> None:
    mapping = {((4, 5), (1, 5)): "good", ((1, 3), (1, 4)): "meh", ((1, 3), 5): "loyal-ish"}
    cells = segment_table(mapping)
    assert cells[3, 0] == "good" and cells[2, 4] == "loyal-ish" and cells[0, 0] == "meh"
    r, f = pd.Series([5, 1]), pd.Series([1, 5])
    assert list(rfm_segments(r, f, mapping)) == ["good", "loyal-ish"]


def test_unnamed_and_doubly_named_cells_are_reported() -> None:
    mapping = dict(DEFAULT_SEGMENTS)
    del mapping["11"]
    mapping["[4-5]5"] = "Whales"
    with pytest.raises(ValueError, match=r"cells with no segment: 11; cells with more than one segment: "
                                         r"45 \(Loyal / Whales\), 55 \(Champions / Whales\)"):
        segment_table(mapping)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("[1-", "is not a valid regex"), (((0, 2), 1), r"scores must lie in 1\.\.5"),
     (((3, 2), 1), "low <= high"), (42, "must be a regex on 'RF'")],
)
def test_bad_patterns(pattern: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segment_table({pattern: "x"})  # type: ignore[dict-item]


# --- value tiers ------------------------------------------------------------------------


def test_tiers_by_cumulative_share() -> None:
    values = pd.Series([50.0, 30.0, 10.0, 6.0, 3.0, 1.0, 0.0], index=list("abcdefg"))
    tiers = value_tiers(values)
    # cumulative share before each: 0, .5, .8, .9, .96, .99, 1
    assert tiers.to_dict() == {"a": "A", "b": "A", "c": "B", "d": "B", "e": "C", "f": "C", "g": "C"}
    assert tiers.index.equals(values.index)


def test_tiers_ties_share_a_tier_and_ignore_order() -> None:
    values = pd.Series([40.0, 40.0, 10.0, 10.0], index=["w", "x", "y", "z"])
    tiers = value_tiers(values)  # x starts at 40 % < 80 %: both 40s in A; y at 80 % -> B, z too
    assert tiers.to_dict() == {"w": "A", "x": "A", "y": "B", "z": "B"}
    shuffled = values.sample(frac=1.0, random_state=0)
    assert value_tiers(shuffled).loc[values.index].equals(tiers)


def test_tiers_all_zero_and_negative(caplog: pytest.LogCaptureFixture) -> None:
    assert (value_tiers(pd.Series([0.0, 0.0])) == "C").all()
    with caplog.at_level(logging.INFO, logger="clvkit.features.rfm"):
        tiers = value_tiers(pd.Series([-5.0, 10.0, -1.0]))
    assert list(tiers) == ["C", "A", "C"]
    assert "2 negative value(s) clipped to 0" in caplog.text
    assert value_tier_thresholds([]) == (None, None)


@pytest.mark.parametrize(("a", "b"), [(0.0, 0.5), (0.9, 0.8), (0.5, 1.5), (0.8, 0.8), ("0.8", 0.95)])
def test_tier_shares_validated(a: float, b: float) -> None:
    with pytest.raises(ValueError, match=r"tier shares must satisfy 0 < a_share < b_share <= 1"):
        value_tiers(pd.Series([1.0]), a, b)


def test_tier_nan_rejected() -> None:
    with pytest.raises(ValueError, match=r"value tiers: 1 value\(s\) are NaN"):
        value_tiers(pd.Series([1.0, np.nan]))


def test_b_share_one_puts_every_positive_customer_in_a_or_b() -> None:
    values = pd.Series(np.arange(1.0, 101.0))
    tiers = value_tiers(values, 0.5, 1.0)
    assert set(tiers) == {"A", "B"}
