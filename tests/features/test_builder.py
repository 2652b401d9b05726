"""FeatureBuilder: transformer contract, columns, persistence, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from clvkit import schemas
from clvkit.exceptions import FeatureMismatchError, NotFittedError, UserInputError
from clvkit.features import FeatureBuilder, build_customer_table
from clvkit.features.behavioral import behavioral_features
from clvkit.features.btyd import summary
from clvkit.features.rfm import value_tiers

CUTOFF = "2020-09-15"


@pytest.fixture(scope="module")
def fitted(rich: pd.DataFrame) -> tuple[FeatureBuilder, pd.DataFrame]:
    builder = FeatureBuilder(time_unit="W", trailing_windows_days=(30, 90))
    return builder, builder.fit_transform(rich, CUTOFF)


def test_init_stores_params_verbatim_without_validation() -> None:
    segments = {"bad": 1}
    builder = FeatureBuilder(time_unit="fortnight", trailing_windows_days=[-1], rfm_segments=segments,
                             tier_shares=(2, 1))  # type: ignore[arg-type]
    params = builder.get_params()
    assert params == {"time_unit": "fortnight", "trailing_windows_days": [-1], "rfm_segments": segments,
                      "tier_shares": (2, 1), "margin": 1.0, "current_value_window_days": 365,
                      "rfm_recency_days": None, "rfm_cycle_multiples": (0.5, 1.0, 2.0, 4.0)}
    assert params["rfm_segments"] is segments


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"time_unit": "fortnight"}, "time_unit must be one of"),
        ({"trailing_windows_days": (-1,)}, "trailing_windows_days must be distinct positive integers"),
        ({"rfm_segments": {"[1-5][1-4]": "x"}}, "cells with no segment: 15, 25, 35, 45, 55"),
        ({"tier_shares": (0.9, 0.5)}, "tier shares must satisfy 0 < a_share < b_share <= 1"),
        ({"tier_shares": 0.8}, r"tier_shares must be a pair \(a_share, b_share\)"),
    ],
)
def test_fit_validates_params(rich: pd.DataFrame, params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureBuilder(**params).fit(rich, CUTOFF)  # type: ignore[arg-type]


def test_columns_and_values(rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    builder, table = fitted
    btyd = summary(rich, CUTOFF, "W")
    behaviour = behavioral_features(rich, CUTOFF, trailing_windows_days=(30, 90)).table
    assert list(table.columns[:4]) == list(schemas.BTYD_COLUMNS)
    assert list(table.columns[4:10]) == ["r_score", "f_score", "m_score", "rfm_score", "rfm_segment",
                                         "historical_value_tier"]
    assert list(table.columns[10:-2]) == list(behaviour.columns)
    assert list(table.columns[-2:]) == ["current_value", "current_value_trailing"]
    assert builder.feature_names_out_ == list(table.columns)
    assert list(builder.get_feature_names_out()) == list(table.columns)
    pd.testing.assert_frame_equal(table[list(schemas.BTYD_COLUMNS)], btyd)
    pd.testing.assert_frame_equal(table[behaviour.columns], behaviour)
    assert table["rfm_score"].str.fullmatch(r"[1-5]{3}").all()
    tiers = value_tiers(table["total_spend"], 0.80, 0.95)
    assert (table["historical_value_tier"] == tiers).all()
    assert builder.as_of_.isoformat() == CUTOFF
    assert builder.skipped_features_ == ()
    assert builder.n_customers_fit_ == len(table)


def test_fit_then_transform_equals_fit_transform(rich: pd.DataFrame,
                                                 fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    builder = FeatureBuilder(time_unit="W", trailing_windows_days=(30, 90)).fit(rich, CUTOFF)
    pd.testing.assert_frame_equal(builder.transform(rich, CUTOFF), fitted[1])


def test_transform_applies_learnt_edges_at_another_cutoff(
    rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]
) -> None:
    builder, _ = fitted
    later = builder.transform(rich, "2021-03-31")
    refit = FeatureBuilder(time_unit="W", trailing_windows_days=(30, 90)).fit(rich, "2021-03-31")
    assert builder.rfm_edges_ != refit.rfm_edges_
    scores = builder.rfm_edges_.score(later["days_since_last_purchase"], later["n_purchase_days"],
                                      later["spend_per_purchase_day"])
    np.testing.assert_array_equal(later["r_score"], scores["r_score"])
    assert builder.as_of_.isoformat() == CUTOFF  # transform does not refit


def test_as_of_defaults_to_last_transaction_day(rich: pd.DataFrame) -> None:
    builder = FeatureBuilder().fit(rich)
    assert builder.as_of_ == rich["timestamp"].max().date()
    pd.testing.assert_frame_equal(builder.transform(rich), builder.transform(rich, builder.as_of_))


def test_not_fitted(rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        FeatureBuilder().transform(rich, CUTOFF)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        FeatureBuilder().get_feature_names_out()
    # scikit-learn's own check agrees, and clvkit's error is also scikit-learn's NotFittedError
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(FeatureBuilder())
    with pytest.raises(SklearnNotFittedError, match="not fitted yet"):
        FeatureBuilder().transform(rich, CUTOFF)
    check_is_fitted(fitted[0])
    check_is_fitted(FeatureBuilder.from_dict(fitted[0].to_dict()))
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(FeatureBuilder.from_dict(FeatureBuilder().to_dict()))


def test_feature_mismatch_names_columns(rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    builder, _ = fitted
    with pytest.raises(FeatureMismatchError,
                       match=r"missing \['n_distinct_products'\], extra \[\] \(transform data lacks "
                             r"column\(s\) \['product'\] that the fit data had\)"):
        builder.transform(rich.drop(columns="product"), CUTOFF)
    lean = FeatureBuilder().fit(rich.drop(columns=["order_id", "channel"]), CUTOFF)
    with pytest.raises(FeatureMismatchError, match=r"extra \['n_orders', 'n_distinct_channels'\]"):
        lean.transform(rich, CUTOFF)


def test_fit_on_no_customers(rich: pd.DataFrame) -> None:
    with pytest.raises(UserInputError, match="no customer has a transaction on or before 2000-01-01"):
        FeatureBuilder().fit(rich, "2000-01-01")
    with pytest.raises(ValueError, match="as_of is None and there are no transactions"):
        FeatureBuilder().fit(rich.iloc[:0])


def test_transform_with_no_customers_is_empty(fitted: tuple[FeatureBuilder, pd.DataFrame],
                                              rich: pd.DataFrame) -> None:
    builder, table = fitted
    empty = builder.transform(rich, "2000-01-01")
    assert empty.empty and list(empty.columns) == list(table.columns)


def test_json_round_trip(rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    builder, table = fitted
    text = json.dumps(builder.to_dict())
    rebuilt = FeatureBuilder.from_dict(json.loads(text))
    assert rebuilt.get_params() == builder.get_params()
    pd.testing.assert_frame_equal(rebuilt.transform(rich, CUTOFF), table)
    assert json.loads(json.dumps(rebuilt.to_dict())) == json.loads(text)


def test_json_round_trip_with_tuple_segments(rich: pd.DataFrame) -> None:
    segments = {((4, 5), (1, 5)): "active", ((1, 3), (1, 5)): "inactive"}
    builder = FeatureBuilder(rfm_segments=segments).fit(rich, CUTOFF)
    rebuilt = FeatureBuilder.from_dict(json.loads(json.dumps(builder.to_dict())))
    assert rebuilt.rfm_segments == segments
    assert set(rebuilt.transform(rich, CUTOFF)["rfm_segment"]) == {"active", "inactive"}


def test_unfitted_round_trip_and_bad_descriptions() -> None:
    rebuilt = FeatureBuilder.from_dict(FeatureBuilder(time_unit="M").to_dict())
    assert rebuilt.time_unit == "M" and not hasattr(rebuilt, "feature_names_out_")
    with pytest.raises(ValueError, match="not a FeatureBuilder description"):
        FeatureBuilder.from_dict({"format": "pickle"})
    with pytest.raises(ValueError, match="version 99 is not supported"):
        FeatureBuilder.from_dict({**FeatureBuilder().to_dict(), "version": 99})


def test_sklearn_clone_and_set_params() -> None:
    builder = FeatureBuilder(time_unit="M", trailing_windows_days=(7,))
    assert isinstance(builder, BaseEstimator) and isinstance(builder, TransformerMixin)
    copy = clone(builder)
    assert copy.get_params() == builder.get_params() and copy is not builder
    assert builder.set_params(time_unit="D") is builder and builder.time_unit == "D"
    with pytest.raises(ValueError, match=r"Invalid parameter 'horizon' for estimator FeatureBuilder"):
        builder.set_params(horizon=3)
    # scikit-learn's repr: only the hyperparameters that differ from their defaults
    assert repr(builder) == "FeatureBuilder(trailing_windows_days=(7,))"
    assert repr(FeatureBuilder()) == "FeatureBuilder()"
    with pytest.raises(TypeError, match="positional"):
        FeatureBuilder("W")  # type: ignore[misc]


def test_clone_of_a_fitted_builder_is_unfitted_and_refits_identically(
        rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    builder, table = fitted
    copy = clone(builder)
    assert not hasattr(copy, "feature_names_out_")
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(copy)
    assert copy.fit(rich, CUTOFF) is copy
    check_is_fitted(copy)
    pd.testing.assert_frame_equal(copy.transform(rich, CUTOFF), table)


def test_build_customer_table_one_shot(rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    table = build_customer_table(rich, CUTOFF, time_unit="W", trailing_windows_days=(30, 90))
    pd.testing.assert_frame_equal(table, fitted[1])


def test_shuffled_rows_same_table(rich: pd.DataFrame, fitted: tuple[FeatureBuilder, pd.DataFrame]) -> None:
    """Scores, segments and tiers are identical under row shuffles (float sums are row-order free)."""
    shuffled = rich.sample(frac=1.0, random_state=5)
    again = FeatureBuilder(time_unit="W", trailing_windows_days=(30, 90)).fit_transform(shuffled, CUTOFF)
    table = fitted[1]
    for col in ("r_score", "f_score", "m_score", "rfm_score", "rfm_segment", "historical_value_tier"):
        assert again[col].equals(table[col]), col
    pd.testing.assert_frame_equal(again, table, rtol=1e-12)


# --- current value, count-only logs, RFM on CDNOW ----------------------------------------


def _hand_made(extra: dict[str, list[float]] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b"],
        "timestamp": pd.to_datetime(["2020-01-10", "2020-06-01", "2020-12-20", "2019-03-01", "2020-12-31"]),
        "amount": [100.0, 50.0, -20.0, 40.0, 10.0],
    })
    for name, values in (extra or {}).items():
        frame[name] = values
    return frame


def test_current_value_lifetime_and_trailing_window() -> None:
    tx = _hand_made()
    table = FeatureBuilder(margin=0.4, current_value_window_days=200).fit_transform(tx, "2020-12-31")
    # a: (100 + 50 - 20) x 0.4 lifetime; trailing 200 days = (2020-06-14, 2020-12-31]: -20 x 0.4 -> floored at 0
    assert table.loc["a", "current_value"] == pytest.approx(52.0)
    assert table.loc["a", "current_value_trailing"] == 0.0
    assert table.loc["b", "current_value"] == pytest.approx(20.0)
    assert table.loc["b", "current_value_trailing"] == pytest.approx(4.0)
    # rows after the cut-off are not counted
    early = FeatureBuilder(margin=0.4, current_value_window_days=100).fit_transform(tx, "2020-06-01")
    assert early.loc["a", "current_value"] == pytest.approx(60.0)
    assert early.loc["a", "current_value_trailing"] == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("extra", "expected_a"),
    [({"cost": [60.0, 20.0, -12.0, 10.0, np.nan]}, 100 - 60 + 50 - 20 - 20 + 12),
     ({"margin": [0.5, 0.2, 0.5, 0.5, np.nan]}, 50 + 10 - 10)],
)
def test_current_value_from_cost_or_margin_column(extra: dict[str, list[float]], expected_a: float) -> None:
    table = FeatureBuilder(margin=0.3).fit_transform(_hand_made(extra), "2020-12-31")
    assert table.loc["a", "current_value"] == pytest.approx(expected_a)
    # b's second row has no cost/margin: the default share applies to it
    first_b = 40.0 - 10.0 if "cost" in extra else 40.0 * 0.5
    assert table.loc["b", "current_value"] == pytest.approx(first_b + 10.0 * 0.3)


def test_count_only_transactions(rich: pd.DataFrame) -> None:
    counts = rich.drop(columns=["amount"])
    builder = FeatureBuilder(time_unit="W", trailing_windows_days=(30, 90))
    table = builder.fit_transform(counts, CUTOFF)
    assert builder.has_amount_ is False
    full = FeatureBuilder(time_unit="W", trailing_windows_days=(30, 90)).fit_transform(rich, CUTOFF)
    assert list(table.columns[:4]) == list(schemas.BTYD_COLUMNS)
    assert (table["monetary_value"] == 0.0).all()
    pd.testing.assert_frame_equal(table[["frequency", "recency", "T"]], full[["frequency", "recency", "T"]])
    for gone in ("m_score", "historical_value_tier", "current_value", "current_value_trailing", "total_spend",
                 "spend_30d", "spend_trend_90d", "avg_order_value", "returns_share"):
        assert gone not in table.columns, gone
    assert (table["f_score"] == full["f_score"]).all() and (table["r_score"] == full["r_score"]).all()
    assert table["rfm_score"].str.fullmatch(r"[1-5]{2}").all()
    assert not counts.columns.str.contains("amount").any()  # the caller's frame is not changed
    rebuilt = FeatureBuilder.from_dict(json.loads(json.dumps(builder.to_dict())))
    assert rebuilt.has_amount_ is False
    pd.testing.assert_frame_equal(rebuilt.transform(counts, CUTOFF), table)


def test_cdnow_former_top_customers_are_at_risk_not_loyal(cdnow: pd.DataFrame) -> None:
    """Former top customers (>= 3 purchase days, top-20 % spend, quiet > 180 days) on CDNOW.

    With quantile recency edges 1,142 of these 1,175 were "Loyal"; with cycle-based recency
    (cycle = 82.5 days) and M in the map: 716 "At risk", 459 "Can't lose", none "Loyal".
    """
    builder = FeatureBuilder(time_unit="W")
    table = builder.fit_transform(cdnow, "1998-06-30")
    assert builder.rfm_cycle_days_ == pytest.approx(82.5)
    top = ((table["n_purchase_days"] >= 3) & (table["total_spend"] >= table["total_spend"].quantile(0.8))
           & (table["days_since_last_purchase"] > 180))
    counts = table.loc[top, "rfm_segment"].value_counts().to_dict()
    assert int(top.sum()) == 1_175
    assert counts == {"At risk": 716, "Can't lose": 459}
    # "Lost" no longer holds big spenders
    assert not ((table["rfm_segment"] == "Lost") & (table["m_score"] == 5)).any()
