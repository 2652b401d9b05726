"""Spark validation equals the pandas engine: reasons, counts, rows kept and quarantined, messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.config.models import ColumnMapping, DataConfig, ValidationPolicies
from clvkit.data.validation import validate_transactions
from clvkit.data.validation_spark import validate_transactions_spark
from clvkit.exceptions import DataValidationError
from clvkit.pipelines.ingest import ingest
from clvkit.pipelines.spark_ingest import ingest_spark

pytestmark = [pytest.mark.slow,  # starts a Spark session: not in make test-fast
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

MAPPING = ColumnMapping(customer_id="cust", timestamp="when", amount="amt")
ALL_QUARANTINE = ValidationPolicies(
    missing_customer_id="quarantine", invalid_timestamp="quarantine", invalid_amount="quarantine",
    duplicate_rows="quarantine", after_observation_end="quarantine", zero_amount="quarantine",
    negative_amount="quarantine",
)


def bad_rows() -> pd.DataFrame:
    """Good rows and every class of bad row, returns to net and an offset timestamp."""
    return pd.DataFrame({
        "cust": ["a", "b", "", None, "c", "d", "d", "e", "f", "a", "g", "h", "h", " i ", "j", "j", "k"],
        "when": ["2024-01-01", "2024-01-02 10:00", "2024-01-03", "2024-01-03", "not a date", "2024-01-05",
                 "2024-01-05", "2024-03-01", "2024-01-06", "2024-01-01", "2024-01-07", "2024-01-08",
                 "2024-01-08", "2024-01-09T23:30:00-02:00", "2024-01-10", "2024-01-10", "2024-01-11 08:00:00"],
        "amt": ["10", "5", "3", "3", "4", "x", "inf", "7", "0", "10", "-2", "9", "-4", "6", "-8", "3", "2.5"],
    })


def _pandas_and_spark(spark, raw: pd.DataFrame, policies: ValidationPolicies, **kwargs):
    expected = validate_transactions(raw, MAPPING, policies, **kwargs)
    got = validate_transactions_spark(spark.createDataFrame(raw.astype(object).where(raw.notna(), None)),
                                      MAPPING, policies, **kwargs)
    return expected, got


def _sorted_clean(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [schemas.CUSTOMER_ID, schemas.TIMESTAMP, schemas.AMOUNT]
    out = frame.sort_values(keys, kind="mergesort").reset_index(drop=True)
    out[schemas.TIMESTAMP] = out[schemas.TIMESTAMP].astype("datetime64[us]")
    out[schemas.CUSTOMER_ID] = out[schemas.CUSTOMER_ID].astype(str)
    return out


@pytest.mark.parametrize("policies", [ALL_QUARANTINE, ValidationPolicies(
    missing_customer_id="quarantine", invalid_timestamp="quarantine", invalid_amount="quarantine")],
    ids=["all-quarantine", "defaults-net-returns"])
def test_every_class_same_reasons_counts_and_rows(spark, policies) -> None:
    expected, got = _pandas_and_spark(spark, bad_rows(), policies, observation_end="2024-01-31",
                                      timezone="Europe/Paris")
    assert got.report.to_dict() == expected.report.to_dict()
    assert got.report.reconciles and got.report.quarantined
    clean = got.transactions.toPandas()
    pd.testing.assert_frame_equal(_sorted_clean(clean), _sorted_clean(expected.transactions), check_dtype=False)
    # the offset timestamp is converted to local time in the configured zone
    assert str(clean.set_index(schemas.CUSTOMER_ID).loc["i", schemas.TIMESTAMP]) == "2024-01-10 02:30:00"
    q = got.quarantine.toPandas().sort_values("source_row").reset_index(drop=True)
    assert q["source_row"].tolist() == expected.quarantine["source_row"].tolist()
    assert q["reason"].tolist() == expected.quarantine["reason"].tolist()
    assert q["cust"].fillna("<null>").tolist() == expected.quarantine["cust"].fillna("<null>").tolist()


def test_error_policy_reports_every_problem_like_pandas(spark) -> None:
    raw = bad_rows()
    with pytest.raises(DataValidationError) as pandas_error:
        validate_transactions(raw, MAPPING, ValidationPolicies(), observation_end="2024-01-31")
    with pytest.raises(DataValidationError) as spark_error:
        validate_transactions_spark(spark.createDataFrame(raw.astype(object).where(raw.notna(), None)),
                                    MAPPING, ValidationPolicies(), observation_end="2024-01-31")
    text = str(spark_error.value)
    assert text.startswith("3 problem(s) in the transactions:")
    headers = [line for line in str(pandas_error.value).splitlines() if line.startswith("[")]
    assert len(headers) == 3
    for header in headers:  # class, column, count, rows and problem, word for word
        assert header in text
    assert "set data.validation.invalid_amount: quarantine" in text and "not a date" in text


def test_cdnow_ingest_equals_pandas_and_quarantine_is_parquet(spark, tmp_path) -> None:
    data = DataConfig(source="cdnow", quarantine_path=str(tmp_path / "q.csv"),
                      observation_end="1998-03-31")
    expected = ingest(data)
    got = ingest_spark(data, spark)
    assert got.validated.report.to_dict() == expected.validated.report.to_dict()
    assert got.validated.report.quarantined  # duplicates and rows after observation_end
    assert got.quarantine_path is not None and got.quarantine_path.suffix == ".parquet"
    written = pd.read_parquet(got.quarantine_path).sort_values("source_row").reset_index(drop=True)
    assert written["source_row"].tolist() == expected.validated.quarantine["source_row"].tolist()
    assert written["reason"].tolist() == expected.validated.quarantine["reason"].tolist()
    clean = _sorted_clean(got.validated.transactions.toPandas())
    ref = _sorted_clean(expected.validated.transactions)
    assert len(clean) == len(ref)
    for column in ref.columns:
        if pd.api.types.is_float_dtype(ref[column]):
            np.testing.assert_allclose(clean[column].to_numpy(float), ref[column].to_numpy(float), rtol=1e-12)
        else:
            assert clean[column].astype(str).tolist() == ref[column].astype(str).tolist(), column


def test_parquet_directory_of_parts_is_read(spark, tmp_path) -> None:
    raw = bad_rows().iloc[:4].assign(amt=lambda f: f["amt"].astype(float))
    folder = tmp_path / "parts"
    folder.mkdir()
    raw.iloc[:2].to_parquet(folder / "part-0.parquet")
    raw.iloc[2:].to_parquet(folder / "part-1.parquet")
    data = DataConfig(source=str(folder), columns=MAPPING, quarantine_path=str(tmp_path / "q.csv"),
                      validation=ValidationPolicies(missing_customer_id="quarantine"))
    report = ingest_spark(data, spark).validated.report
    assert (report.rows_read, report.rows_used, report.quarantined) == (4, 2, {"missing_customer_id": 2})


def test_slash_dates_follow_the_detected_day_month_order(spark) -> None:
    raw = pd.DataFrame({"cust": ["a", "b", "c"], "when": ["25/03/2024", "01/04/2024", "02/04/2024 10:30"],
                        "amt": [1.0, 2.0, 3.0]})
    expected, got = _pandas_and_spark(spark, raw, ValidationPolicies())
    stamps = got.transactions.toPandas().sort_values("customer_id")[schemas.TIMESTAMP].astype(str).tolist()
    assert stamps == ["2024-03-25 00:00:00", "2024-04-01 00:00:00", "2024-04-02 10:30:00"]
    assert stamps == expected.transactions.sort_values("customer_id")[schemas.TIMESTAMP].astype(str).tolist()


def test_mixed_date_formats_are_refused_like_pandas(spark) -> None:
    raw = pd.DataFrame({"cust": ["a", "b"], "when": ["2024-03-25", "25/03/2024"], "amt": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"\[mixed_date_formats\] column 'when'"):
        validate_transactions(raw, MAPPING, ValidationPolicies())
    with pytest.raises(DataValidationError, match=r"\[mixed_date_formats\] column 'when'"):
        validate_transactions_spark(spark.createDataFrame(raw), MAPPING, ValidationPolicies())
