"""Ids factorised upstream (categorical dtype) give the same codes and summary as the hash path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.features import _periods
from clvkit.features.btyd import summary


def _transactions(n_rows: int = 3_000, n_customers: int = 400, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": pd.Series([f"C{i:04d}" for i in rng.integers(0, n_customers, n_rows)], dtype="str"),
        "timestamp": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300 * 24, n_rows), unit="h"),
        "amount": np.round(rng.gamma(2.0, 10.0, n_rows), 2),
    })


@pytest.mark.parametrize("categories", [None, "reversed_with_unused"])
def test_categorical_codes_match_the_hash_path(categories):
    ids = _transactions()["customer_id"]
    if categories is None:
        cat = ids.astype("category")
    else:
        cat = ids.astype(pd.CategoricalDtype(sorted(set(ids), reverse=True) + ["UNUSED"]))
    codes, index = _periods.factorize_ids(cat)
    ref_codes, ref_uniques = pd.factorize(cat, sort=True)  # pandas sorts a categorical by category order
    np.testing.assert_array_equal(codes, ref_codes)
    assert codes.dtype == np.int64
    assert not isinstance(index, pd.CategoricalIndex)  # the ids themselves, as in the hash path
    assert index.dtype == cat.dtype.categories.dtype
    assert list(index) == list(ref_uniques) and index.name == "customer_id"
    assert "UNUSED" not in list(index)


def test_summary_of_categorical_ids_equals_summary_of_strings():
    tx = _transactions()
    plain = summary(tx, "2023-10-01", "W")
    cat = summary(tx.assign(customer_id=tx["customer_id"].astype("category")), "2023-10-01", "W")
    pd.testing.assert_index_equal(cat.index, plain.index)  # same ids, same dtype
    np.testing.assert_array_equal(cat.to_numpy(), plain.to_numpy())
    subset = tx[tx["timestamp"] < pd.Timestamp("2023-06-01")]  # filtering keeps unused categories
    cat_subset = summary(subset.assign(customer_id=subset["customer_id"].astype(tx["customer_id"].astype("category").dtype)),
                         "2023-06-01", "D")
    np.testing.assert_array_equal(cat_subset.to_numpy(), summary(subset, "2023-06-01", "D").to_numpy())
