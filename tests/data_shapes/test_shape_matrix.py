"""The data-shape matrix (issue 8): every awkward log shape runs ``clvkit train`` + ``clvkit predict``
end to end on a real MLflow store and either finishes with sane scores (exit 0) or stops with
exit 2 and a message naming the cause and the setting to change. Exit 1 never happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import pytest

from clvkit import schemas
from clvkit.data.shapes import DataShape, make_shape
from tests.data_shapes.conftest import ShapeHome, check_scores, describe, train_json


@dataclass(frozen=True)
class Case:
    """A shape, the settings a user would add, and the outcome it must have."""

    shape: str
    exit_code: int = 0
    message: str | None = None  # regex the exit-2 message must match (cause and fix)
    settings: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    broken_by: str | None = None  # owner whose code still breaks the case (strict xfail)


CASES = [
    Case("weekly_buyers"),
    Case("one_time_buyers"),
    Case("returns_heavy"),
    Case("returns_heavy", variant="no_amount_key"),
    Case("count_only"),
    Case("count_only", variant="value_per_purchase", settings={"clv.value_per_purchase": 25.0}),
    Case("tiny"),
    Case("one_day"),
    Case("acquired_throughout"),
    Case("heavy_tailed_spend"),
    Case("leading_zero_ids"),
    Case("mixed_utc_offsets"),
    Case("single_customer"),
    Case("empty_holdout"),
    Case("all_negative_spend"),
    Case("no_repeat_buyers"),
]


def _case_id(case: Case) -> str:
    return case.shape + (f"-{case.variant}" if case.variant else "")


def _params(case: Case) -> Any:
    marks = [pytest.mark.slow]
    if case.broken_by:
        marks.append(pytest.mark.xfail(strict=True, reason=f"still broken by helper {case.broken_by!r}'s code"))
    return pytest.param(case, id=_case_id(case), marks=marks)


def _shape(case: Case) -> DataShape:
    shape = make_shape(case.shape, seed=0)
    if case.variant == "no_amount_key":  # quantity + unit_price mapped, no 'amount' key at all
        columns = {k: v for k, v in shape.columns.items() if k != "amount"}
        return replace(shape, name=f"{shape.name}_no_amount_key", columns=columns)
    if case.variant:
        return replace(shape, name=f"{shape.name}_{case.variant}")
    return shape


@pytest.mark.parametrize("case", [_params(c) for c in CASES])
def test_shape_trains_and_predicts_or_exits_2(case: Case, shape_home: ShapeHome) -> None:
    shape = _shape(case)
    config = shape_home.write(shape, case.settings)
    trained = shape_home.train(config)
    assert trained.exit_code == case.exit_code, describe(trained)
    if case.exit_code == 2:
        assert case.message is not None and re.search(case.message, trained.stderr), describe(trained)
        return
    run = train_json(trained)
    output = shape_home.path / f"{shape.name}.scores.parquet"
    predicted = shape_home.clvkit("predict", "--model", f"models:/{run['registered_model']}/{run['version']}",
                                  "--config", str(config), "--output", str(output))
    assert predicted.exit_code == 0, describe(predicted)
    scores = pd.read_parquet(output)
    check_scores(scores)
    _check_shape_specifics(case, shape, scores)


def _check_shape_specifics(case: Case, shape: DataShape, scores: pd.DataFrame) -> None:
    ids = set(scores[schemas.CUSTOMER_ID])
    if case.shape == "leading_zero_ids":
        assert {"000100", "100"} <= ids
        assert ids == set(shape.raw[schemas.CUSTOMER_ID])
    if case.shape == "count_only":
        has_clv = schemas.CLV in scores.columns
        assert has_clv == ("clv.value_per_purchase" in case.settings)
    if case.shape in {"mixed_utc_offsets", "acquired_throughout", "heavy_tailed_spend", "weekly_buyers"}:
        assert len(scores) == shape.raw[shape.columns["customer_id"]].nunique()
