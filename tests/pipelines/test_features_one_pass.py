"""The pipeline's one-pass customer table equals fit-then-transform, column by column, exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvkit.config import load_config
from clvkit.features.builder import FeatureBuilder
from clvkit.pipelines.features import customer_table, fit_customer_table, make_builder
from tests.features.conftest import enrich


@pytest.fixture(scope="module")
def rich_with_cost(simulation) -> pd.DataFrame:
    """Enriched simulated log (shuffled, same-day rows, returns, zeros, optional columns) with a cost."""
    tx = enrich(simulation.transactions, seed=5)
    rng = np.random.default_rng(5)
    cost = tx["amount"] * rng.uniform(0.4, 0.9, len(tx))
    return tx.assign(cost=cost.where(rng.random(len(tx)) > 0.05))


def _assert_tables_identical(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_index_equal(got.index, expected.index, exact=True)
    for column in expected.columns:
        a, b = got[column], expected[column]
        assert a.dtype == b.dtype, column
        if pd.api.types.is_float_dtype(b.dtype):  # bit for bit, NaN in the same places
            np.testing.assert_array_equal(a.to_numpy().view(np.int64), b.to_numpy().view(np.int64), err_msg=column)
        else:
            pd.testing.assert_series_equal(a, b, check_exact=True)


@pytest.mark.parametrize("cutoff", [dt.date(2020, 9, 15), dt.date(2021, 3, 1)])
@pytest.mark.parametrize("columns", ["all", "count_only", "no_cost"])
def test_one_pass_table_equals_fit_then_transform(rich_with_cost: pd.DataFrame, cutoff: dt.date,
                                                  columns: str) -> None:
    tx = {"all": rich_with_cost, "count_only": rich_with_cost.drop(columns=["amount", "cost"]),
          "no_cost": rich_with_cost.drop(columns="cost")}[columns]
    config = load_config(None)
    before = tx.copy()
    builder, table = fit_customer_table(config, tx, cutoff)
    reference_builder = make_builder(config).fit(tx, as_of=cutoff)
    reference = customer_table(reference_builder, tx, cutoff)
    _assert_tables_identical(table, reference)
    assert ("margin_share" in table.columns) == (columns == "all")
    assert builder.to_dict() == reference_builder.to_dict()
    assert isinstance(builder, FeatureBuilder) and builder.as_of_ == cutoff
    _assert_tables_identical(customer_table(builder, tx, cutoff), reference)  # the builder serves as usual
    pd.testing.assert_frame_equal(tx, before)  # the caller's frame is not changed
