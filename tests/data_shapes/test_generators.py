"""The shape generators draw what their names promise (fast, no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.data.shapes import HEAVY_ORDER_AMOUNT, ONE_TIME_SHARE, SHAPES, make_shape


def _purchases(shape_name: str) -> pd.Series:
    shape = make_shape(shape_name)
    return shape.raw.groupby(shape.columns["customer_id"]).size()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_same_seed_same_log_and_file_like_columns(name: str) -> None:
    a, b = make_shape(name, seed=3), make_shape(name, seed=3)
    pd.testing.assert_frame_equal(a.raw, b.raw)
    assert a.name == name
    mapped = [c for c in a.columns.values() if c is not None]
    assert set(mapped) <= set(a.raw.columns)
    assert a.raw[a.columns["timestamp"]].map(type).eq(str).all()  # text, as in a file


def test_weekly_buyers_buy_about_weekly_and_never_drop_out() -> None:
    shape = make_shape("weekly_buyers")
    stamps = pd.to_datetime(shape.raw["timestamp"])
    per_customer = shape.raw.assign(t=stamps).groupby("customer_id")["t"]
    weeks_observed = (per_customer.max() - per_customer.min()).dt.days / 7
    rate = (per_customer.size() - 1) / weeks_observed
    assert rate.median() == pytest.approx(1.0, rel=0.25)
    assert (per_customer.max() > stamps.max() - pd.Timedelta(days=35)).mean() > 0.95  # still buying at the end


def test_one_time_buyers_share() -> None:
    purchases = _purchases("one_time_buyers")
    assert (purchases == 1).mean() >= 0.9
    assert (purchases == 1).mean() == pytest.approx(ONE_TIME_SHARE, abs=0.01)


def test_returns_heavy_has_c_invoices_with_negative_quantities() -> None:
    raw = make_shape("returns_heavy").raw
    cancels = raw[raw["InvoiceNo"].str.startswith("C")]
    assert len(cancels) > 0.2 * len(raw) / 1.2
    assert (cancels["Quantity"] < 0).all() and (raw.loc[~raw.index.isin(cancels.index), "Quantity"] > 0).all()
    assert "amount" not in raw.columns
    assert make_shape("returns_heavy").columns["amount"] is None


def test_count_only_has_customer_and_date_only() -> None:
    shape = make_shape("count_only")
    assert list(shape.raw.columns) == ["customer_id", "timestamp"]
    assert shape.columns["amount"] is None


def test_tiny_and_few_customers() -> None:
    tiny = _purchases("tiny")
    assert len(tiny) == 50 and (tiny > 1).sum() == 20
    few = _purchases("few_customers")
    assert len(few) == 8 and (few > 1).all()


def test_one_day_single_customer_no_repeat() -> None:
    assert pd.to_datetime(make_shape("one_day").raw["timestamp"]).dt.normalize().nunique() == 1
    assert _purchases("single_customer").size == 1
    assert (_purchases("no_repeat_buyers") == 1).all()


def test_acquired_throughout_spreads_first_purchases() -> None:
    raw = make_shape("acquired_throughout").raw
    first = pd.to_datetime(raw.groupby("customer_id")["timestamp"].min())
    span = pd.to_datetime(raw["timestamp"]).max() - pd.to_datetime(raw["timestamp"]).min()
    assert first.max() - first.min() > 0.9 * span


def test_heavy_tailed_spend_has_million_orders_and_a_pareto_tail() -> None:
    amount = make_shape("heavy_tailed_spend").raw["amount"]
    assert (amount == HEAVY_ORDER_AMOUNT).sum() == 3
    rest = amount[amount < HEAVY_ORDER_AMOUNT]
    assert rest.max() > 50 * rest.median()


def test_leading_zero_ids_are_distinct_text() -> None:
    ids = set(make_shape("leading_zero_ids").raw["customer_id"])
    assert {"000100", "100"} <= ids
    assert any(i.startswith("0") for i in ids) and all(i.isdigit() for i in ids)


def test_mixed_offsets_carry_several_offsets() -> None:
    stamps = make_shape("mixed_utc_offsets").raw["timestamp"]
    offsets = stamps.str.extract(r"(Z|[+-]\d\d:\d\d)$")[0]
    assert offsets.notna().all() and offsets.nunique() >= 5


def test_empty_holdout_and_all_negative() -> None:
    shape = make_shape("empty_holdout")
    last = pd.to_datetime(shape.raw["timestamp"]).max().date().isoformat()
    assert last <= shape.data_settings["calibration_end"] < shape.data_settings["observation_end"]
    assert (make_shape("all_negative_spend").raw["amount"] < 0).all()


def test_unknown_shape_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown data shape 'nope'; choose one of \['acquired_throughout'"):
        make_shape("nope")


def test_generators_are_fast_and_small() -> None:
    sizes = {name: len(make_shape(name).raw) for name in SHAPES}
    assert max(sizes.values()) < 10_000
    assert np.all(np.array(list(sizes.values())) > 0)
