from __future__ import annotations

import pytest

from clvkit.exceptions import UserInputError
from clvkit.io.datasets import builtin_path, load_builtin_transactions


@pytest.mark.parametrize(
    ("name", "rows", "customers"), [("cdnow", 69_659, 23_570), ("cdnow_sample", 6_919, 2_357)]
)
def test_builtin_counts(name: str, rows: int, customers: int) -> None:
    df = load_builtin_transactions(name)
    assert len(df) == rows
    assert df["customer_id"].nunique() == customers
    assert str(df["timestamp"].min().date()) == "1997-01-01"
    assert str(df["timestamp"].max().date()) == "1998-06-30"


def test_builtin_zero_amounts_and_ids_keep_leading_zeros() -> None:
    df = load_builtin_transactions("cdnow")
    assert int((df["amount"] == 0).sum()) == 80
    assert df["customer_id"].iloc[0] == "00001"


def test_unknown_builtin() -> None:
    with pytest.raises(UserInputError, match=r"unknown built-in dataset 'cdnowx'; built-ins are \['cdnow', 'cdnow_sample'\]"):
        builtin_path("cdnowx")
