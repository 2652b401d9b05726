"""The scorer's three input forms and its request checks (no MLflow: the forms must give the same table)."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from clvkit.features.builder import FeatureBuilder
from clvkit.io.datasets import load_builtin_transactions
from clvkit.io.scorer_input import (
    FORM_BTYD,
    FORM_FEATURES,
    FORM_TRANSACTIONS,
    ScorerInputError,
    customer_table_from_request,
)

AS_OF = dt.date(1998, 6, 30)
TIME_UNIT = "W"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_builtin_transactions("cdnow_sample")


@pytest.fixture(scope="module")
def builder(cdnow: pd.DataFrame) -> FeatureBuilder:
    return FeatureBuilder(time_unit=TIME_UNIT).fit(cdnow, as_of=AS_OF)


@pytest.fixture(scope="module")
def table(builder: FeatureBuilder, cdnow: pd.DataFrame) -> pd.DataFrame:
    """The customer table as FeatureBuilder returns it (customer_id as index, int and float columns)."""
    return builder.transform(cdnow, as_of=AS_OF).rename_axis("customer_id")


def _request(frame: pd.DataFrame, builder: FeatureBuilder, columns: list[str], **params: str) -> tuple[pd.DataFrame, str]:
    return customer_table_from_request(frame, builder=builder, input_columns=columns, time_unit=TIME_UNIT,
                                       params=params or None)


def test_feature_table_as_index_column_csv_or_json_numbers_is_one_table(table, builder) -> None:  # type: ignore[no-untyped-def]
    columns = list(table.columns)
    as_index, form = _request(table, builder, columns)
    assert form == FORM_FEATURES
    as_column, _ = _request(table.reset_index(), builder, columns)
    csv = pd.read_csv(io.StringIO(table.to_csv()), dtype={"customer_id": str})  # `clvkit features -o x.csv`
    from_csv, _ = _request(csv, builder, columns)
    json_rows = pd.DataFrame(table.reset_index().to_dict(orient="records"))  # ints stay ints, as JSON numbers do
    from_json, _ = _request(json_rows, builder, columns)
    for other in (as_column, from_csv, from_json):
        pd.testing.assert_frame_equal(other, as_index, check_dtype=False)
    assert as_index.index.tolist() == table.index.astype(str).tolist()


def test_transactions_with_as_of_build_the_same_table(table, builder, cdnow) -> None:  # type: ignore[no-untyped-def]
    ids = table.index[:40]
    rows = cdnow[cdnow["customer_id"].isin(ids)].copy()
    rows["timestamp"] = rows["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")  # as JSON sends it
    built, form = _request(rows, builder, list(table.columns), as_of=str(AS_OF))
    assert form == FORM_TRANSACTIONS
    expected, _ = _request(table.loc[ids], builder, list(table.columns))
    pd.testing.assert_frame_equal(built.sort_index(), expected.sort_index(), check_dtype=False)


def test_transactions_without_an_optional_column_leave_its_features_missing(table, builder, cdnow) -> None:  # type: ignore[no-untyped-def]
    rows = cdnow[cdnow["customer_id"].isin(table.index[:5])].drop(columns=["quantity"])
    built, _ = _request(rows, builder, list(table.columns), as_of=str(AS_OF))
    assert built["avg_basket_quantity"].isna().all()
    assert list(built.columns) == list(table.columns)


def test_minimal_btyd_rows_derive_the_exact_relations(table, builder) -> None:  # type: ignore[no-untyped-def]
    minimal = table[["frequency", "recency", "T", "monetary_value"]].reset_index()
    built, form = _request(minimal, builder, list(table.columns))
    assert form == FORM_BTYD
    assert list(built.columns) == list(table.columns)
    full, _ = _request(table, builder, list(table.columns))
    for column in ("frequency", "recency", "T", "monetary_value", "n_purchase_days", "days_since_last_purchase",
                   "tenure_days", "r_score", "f_score"):
        np.testing.assert_allclose(built[column].to_numpy(float), full[column].to_numpy(float), err_msg=column)
    quiet = full["days_since_last_purchase"] > 90
    assert (built.loc[quiet, "purchase_days_90d"] == 0).all() and built.loc[~quiet, "purchase_days_90d"].isna().all()
    assert built["gap_mean_days"].isna().all()  # not derivable: missing, as XGBoost handles it
    assert built["rfm_segment"].notna().all()


BAD_REQUESTS = [
    ({"monetary_value": -100.0}, r"column 'monetary_value' must be a finite, non-negative amount up to 1e\+12; "
                                 r"1 row\(s\) do not: row 0 \(customer_id c1\): monetary_value=-100"),
    ({"monetary_value": 1e300}, r"column 'monetary_value' must be a finite, non-negative amount"),
    ({"recency": 80.0}, r"column 'recency' must not exceed T .*row 0 \(customer_id c1\): recency=80, T=77.9"),
    ({"frequency": np.nan}, r"column 'frequency' must be a finite, non-negative number; 1 row\(s\) do not"),
    ({"T": np.inf}, r"column 'T' must be a finite, non-negative number"),
    ({"frequency": 2.5}, r"column 'frequency' must be a whole number"),
    ({"frequency": 0.0, "recency": 3.0}, r"column 'recency' must be 0 when frequency is 0"),
    ({"recency": "soon"}, r"column 'recency' must hold numbers; 1 row\(s\) do not \(c1: 'soon'\)"),
]


@pytest.mark.parametrize(("change", "message"), BAD_REQUESTS)
def test_impossible_values_are_refused_naming_column_and_row(builder, change, message) -> None:  # type: ignore[no-untyped-def]
    row = {"customer_id": "c1", "frequency": 3, "recency": 49.3, "T": 77.9, "monetary_value": 23.7}
    frame = pd.DataFrame([{"customer_id": "c0", "frequency": 1, "recency": 2.0, "T": 10.0, "monetary_value": 5.0},
                          {**row, **change}]).iloc[[1]].reset_index(drop=True)
    with pytest.raises(ScorerInputError, match=message):
        _request(frame, builder, ["frequency", "recency", "T", "monetary_value"])


@pytest.mark.parametrize(("frame", "params", "message"), [
    (pd.DataFrame({"frequency": [1]}), {}, r"the request needs a 'customer_id' column"),
    (pd.DataFrame({"customer_id": ["a"], "frequency": [1]}), {}, r"the request lacks column\(s\) \['recency', 'T'\]"),
    (pd.DataFrame({"customer_id": ["a", "a"], "frequency": [0, 0], "recency": [0, 0], "T": [3, 3],
                   "monetary_value": [0, 0]}), {}, r"column 'customer_id' repeats 1 id\(s\) \('a'\)"),
    (pd.DataFrame({"customer_id": ["a"], "timestamp": ["1998-01-01"], "amount": [3.0]}), {},
     r"transactions need the cut-off day: send params \{\"as_of\": \"YYYY-MM-DD\"\}"),
    (pd.DataFrame({"customer_id": ["a"], "timestamp": ["1998-01-01"], "amount": [3.0]}), {"as_of": "30/06/1998"},
     r"params as_of='30/06/1998' is not a date"),
    (pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["1998-01-01", "next tuesday"], "amount": [3.0, 1.0]}),
     {"as_of": "1998-06-30"}, r"column 'timestamp' must be an ISO date .*row 1 \(customer_id b\)"),
    (pd.DataFrame({"customer_id": ["a"], "timestamp": ["1998-07-01"], "amount": [3.0]}), {"as_of": "1998-06-30"},
     r"column 'timestamp' is after as_of=1998-06-30"),
    (pd.DataFrame({"customer_id": ["a"], "timestamp": ["1998-01-01"], "amount": [float("inf")]}),
     {"as_of": "1998-06-30"}, r"column 'amount' must be a finite number"),
])
def test_malformed_requests_say_what_to_send(builder, frame, params, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScorerInputError, match=message):
        _request(frame, builder, ["frequency", "recency", "T", "monetary_value"], **params)


def test_one_time_buyers_spend_comes_from_the_spend_model(table, builder) -> None:  # type: ignore[no-untyped-def]
    minimal = table[["frequency", "recency", "T", "monetary_value"]].reset_index()
    built, _ = customer_table_from_request(minimal, builder=builder, input_columns=list(table.columns),
                                           time_unit=TIME_UNIT, order_value=lambda f, m: np.full(len(f), 40.0))
    one_off = built["frequency"] == 0
    assert one_off.any() and (built.loc[one_off, "total_spend"] == 40.0).all()
    repeat = ~one_off
    np.testing.assert_allclose(built.loc[repeat, "spend_per_purchase_day"], built.loc[repeat, "monetary_value"])
    assert built[["total_spend", "spend_per_purchase_day"]].notna().all().all()


def test_non_finite_scores_never_leave_the_scorer() -> None:
    from clvkit.io.scorer_model import check_finite_scores

    scores = pd.DataFrame({"clv": [1.0, np.nan], "rfm_segment": ["Lost", "New"]}, index=["a", "b"])
    with pytest.raises(ScorerInputError, match=r"1 customer\(s\) \(b\) cannot be scored from frequency, recency, T "
                                               r"and monetary_value alone: \['clv'\] would be undefined"):
        check_finite_scores(scores, FORM_BTYD)
    with pytest.raises(RuntimeError, match=r"non-finite scores \['clv'\]"):
        check_finite_scores(scores, FORM_FEATURES)
    check_finite_scores(scores.dropna(), FORM_FEATURES)


def test_unknown_columns_are_ignored_and_column_order_does_not_matter(table, builder) -> None:  # type: ignore[no-untyped-def]
    """The model declares no input schema: the scorer itself keeps only the request columns, in their order."""
    from clvkit.io.scorer_input import request_columns

    columns = list(table.columns)
    expected, _ = _request(table.reset_index(), builder, columns)
    shuffled = table.reset_index().assign(note="vip", score_v2=np.inf)
    shuffled = shuffled[list(reversed(shuffled.columns))]
    got, form = _request(shuffled, builder, columns)
    assert form == FORM_FEATURES
    pd.testing.assert_frame_equal(got, expected)
    names = request_columns(columns)
    assert names[0] == "customer_id" and names[1:len(columns) + 1] == tuple(columns)
    assert {"timestamp", "amount", "quantity", "order_id"} <= set(names) and "note" not in names


def test_the_first_broken_column_in_table_order_is_reported(builder) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [1, 2, 0], "recency": [3.0, 4.0, 0.0],
                          "T": [9.0, np.inf, 5.0], "monetary_value": [5.0, 6.0, -1.0]})
    with pytest.raises(ScorerInputError, match=r"column 'T' must be a finite, non-negative number; 1 row\(s\) do not: "
                                               r"row 1 \(customer_id b\): T=inf"):
        _request(frame, builder, ["frequency", "recency", "T", "monetary_value"])
    with pytest.raises(ScorerInputError, match=r"column 'monetary_value' must be a finite, non-negative amount .*"
                                               r"row 2 \(customer_id c\): monetary_value=-1"):
        _request(frame.assign(T=9.0), builder, ["frequency", "recency", "T", "monetary_value"])


@pytest.mark.parametrize(("ids", "expected"), [
    ([7, 12], ["7", "12"]),
    ([7.0, 12.5], ["7", "12.5"]),
    (["007", "x"], ["007", "x"]),
    ([7, "x"], ["7", "x"]),
])
def test_customer_ids_become_text_whatever_their_type(builder, ids, expected) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"customer_id": ids, "frequency": [0, 0], "recency": [0.0, 0.0], "T": [3.0, 4.0],
                          "monetary_value": [0.0, 0.0]})
    built, _ = _request(frame, builder, ["frequency", "recency", "T", "monetary_value"])
    assert built.index.tolist() == expected and built.index.dtype == object
