"""Columnar validation equals the row-wise definitions: duplicates, netted returns, categorical ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.config.models import ColumnMapping, ValidationPolicies
from clvkit.data.validation import customer_id_categories, duplicate_rows, validate_transactions
from clvkit.features.btyd import summary

MAPPING = ColumnMapping(customer_id="cust", timestamp="when", amount="amt", product="sku")


def messy_log(n_rows: int = 6_000, seed: int = 3) -> pd.DataFrame:
    """Many exact duplicates, near-duplicates (another product, -0.0, NaN), returns, blank ids."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:05d}" for i in range(300)] + ["", " 00007", "00007 "], dtype=object)
    raw = pd.DataFrame({
        "cust": pd.Series(ids[rng.integers(0, ids.size, n_rows)], dtype="str"),
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 40, n_rows), unit="D"),
        "amt": rng.choice([5.0, 10.0, -5.0, -10.0, 0.0, -0.0, np.nan, 2.5], n_rows),
        "sku": pd.Series(rng.choice(["p1", "p2", None], n_rows), dtype="str"),
    })
    copies = raw.sample(n_rows // 5, random_state=seed)  # exact duplicates, shuffled in
    return pd.concat([raw, copies]).sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)


def reference_unmatched_returns(canonical: pd.DataFrame, usable: np.ndarray) -> np.ndarray:
    """The full-frame definition: customer-days with no positive spend or a negative total."""
    day = canonical["timestamp"].dt.normalize()
    amount = canonical["amount"].where(usable, 0.0)
    keys = [canonical["customer_id"].astype(object), day]
    day_positive = amount.clip(lower=0).groupby(keys, dropna=False, sort=False).transform("sum")
    day_total = amount.groupby(keys, dropna=False, sort=False).transform("sum")
    return ((day_positive <= 0) | (day_total < 0)).to_numpy()


def test_duplicates_equal_pandas_duplicated_on_the_raw_columns() -> None:
    raw = messy_log()
    canonical = _canonical(raw)
    mapped = ["cust", "when", "amt", "sku"]
    got = duplicate_rows(raw, canonical, mapped, "cust")
    expected = raw.duplicated(subset=mapped, keep="first").to_numpy()
    assert expected.sum() > 500  # the data holds many duplicates
    np.testing.assert_array_equal(got, expected)


def test_duplicates_ignore_nothing_a_hash_part_leaves_out() -> None:
    """Rows equal on id, time and amount but not on product are not duplicates; -0.0 equals 0.0."""
    raw = pd.DataFrame({"cust": ["a", "a", "a", "a", "a"], "when": ["2024-01-01"] * 5,
                        "amt": [0.0, -0.0, 0.0, np.nan, np.nan], "sku": ["x", "x", "y", "x", "x"]})
    canonical = _canonical(raw)
    np.testing.assert_array_equal(duplicate_rows(raw, canonical, ["cust", "when", "amt", "sku"], "cust"),
                                  [False, True, False, False, True])
    mixed = pd.DataFrame({"cust": pd.Series([1, 1.0, "1"], dtype=object), "when": ["2024-01-01"] * 3,
                          "amt": [1.0] * 3, "sku": ["x"] * 3})  # pandas: 1 == 1.0, not "1"
    np.testing.assert_array_equal(duplicate_rows(mixed, _canonical(mixed), ["cust", "when", "amt", "sku"], "cust"),
                                  mixed.duplicated(subset=["cust", "when", "amt", "sku"]).to_numpy())


def _canonical(raw: pd.DataFrame) -> pd.DataFrame:
    from clvkit.data.validation import _canonical_frame

    return _canonical_frame(raw, MAPPING, "UTC", None, None)


@pytest.mark.parametrize("seed", [3, 4])
def test_netted_returns_equal_the_full_frame_groupby(seed: int) -> None:
    raw = messy_log(seed=seed)
    policies = ValidationPolicies(missing_customer_id="quarantine", invalid_amount="quarantine")
    got = validate_transactions(raw, MAPPING, policies)
    canonical = _canonical(raw)
    amount = canonical["amount"].to_numpy()
    duplicated = raw.duplicated(subset=["cust", "when", "amt", "sku"]).to_numpy()
    usable = canonical["customer_id"].notna().to_numpy() & np.isfinite(amount) & ~duplicated
    negative = usable & (amount < 0)
    unmatched = reference_unmatched_returns(canonical, usable) & negative
    assert got.report.quarantined["unmatched_return"] == unmatched.sum() > 0
    assert got.report.kept_flagged["returns_netted"] == negative.sum() - unmatched.sum() > 0
    quarantined = got.quarantine.loc[got.quarantine["reason"] == "unmatched_return", "source_row"].to_numpy()
    np.testing.assert_array_equal(quarantined, np.flatnonzero(unmatched) + 1)


def test_ids_become_a_sorted_categorical_of_their_exact_text() -> None:
    raw = messy_log()
    policies = ValidationPolicies(missing_customer_id="quarantine", invalid_amount="quarantine")
    clean = validate_transactions(raw, MAPPING, policies).transactions
    ids = clean["customer_id"]
    assert isinstance(ids.dtype, pd.CategoricalDtype)
    categories = list(ids.cat.categories)
    assert categories == sorted(categories) and "00007" in categories and "" not in categories
    assert set(categories) == set(ids.astype(str))  # only customers with a used row
    text = raw["cust"].str.strip()
    assert set(categories) <= set(text[text != ""].dropna())
    assert ids.cat.categories.dtype == "str"


def test_categorical_ids_give_the_same_summary_and_index_as_text_ids() -> None:
    raw = messy_log()
    policies = ValidationPolicies(missing_customer_id="quarantine", invalid_amount="quarantine")
    clean = validate_transactions(raw, MAPPING, policies).transactions
    as_text = clean.assign(customer_id=clean["customer_id"].astype(str))
    ours, ref = summary(clean, "2024-02-15", "D"), summary(as_text, "2024-02-15", "D")
    pd.testing.assert_frame_equal(ours, ref)  # same ids (str index), same numbers
    assert ours.index[:3].tolist() == ["00000", "00001", "00002"]


@pytest.mark.parametrize("ids", [
    pd.Series([" 007", "007", "", None, "b", "a ", "A"], dtype="str"),
    pd.Series([1, 1.0, True, "x", None, np.nan, " 2"], dtype=object),  # mixed: 1, 1.0, True stay apart
    pd.Series([3, 1, 2, 3], dtype="int64"),
    pd.Series([1.0, np.nan, 2.5]),
])
def test_customer_id_categories_equal_row_by_row_text(ids: pd.Series) -> None:
    text = ids.astype("string").str.strip()
    expected = text.mask(text == "")
    got = customer_id_categories(ids)
    assert got.isna().tolist() == expected.isna().tolist()
    assert got.dropna().astype(str).tolist() == expected.dropna().astype(str).tolist()
    assert list(got.cat.categories) == sorted(set(expected.dropna()))


def test_caller_frame_and_its_categorical_ids_are_not_mutated() -> None:
    raw = messy_log().assign(cust=lambda f: f["cust"].astype("category"))
    before = raw.copy(deep=True)
    validate_transactions(raw, MAPPING, ValidationPolicies(missing_customer_id="quarantine",
                                                           invalid_amount="quarantine"))
    pd.testing.assert_frame_equal(raw, before)


@pytest.mark.parametrize("n_distinct", [1, 7, 5_000, 10**18])
def test_repeated_positions_equal_pandas_duplicated_keep_false(n_distinct: int) -> None:
    from clvkit.data.validation import repeated_positions

    rng = np.random.default_rng(n_distinct % 1000)
    key = rng.integers(0, n_distinct, 20_000, dtype=np.int64).view(np.uint64)
    key[:3] = np.iinfo(np.uint64).max  # the largest value: the binary search's edge
    expected = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    np.testing.assert_array_equal(repeated_positions(key), expected)
    unique = np.arange(1_000, dtype=np.uint64)[::-1].copy()
    assert repeated_positions(unique).size == 0
    assert repeated_positions(np.empty(0, dtype=np.uint64)).size == 0
