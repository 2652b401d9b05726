"""The Spark engine's BTYD features and collapsed fits equal the pandas engine's.

Counts and dates exact, floats to 1e-9 relative, column by column, on CDNOW and on simulated
transactions with same-day repeats, returns and zero amounts; fits on the distinct
(frequency, recency, T[, monetary_value]) rows with counts equal the per-customer fits (1e-6).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.features.btyd import calibration_holdout, summary
from clvkit.features.spark_engine import (
    COUNT,
    calibration_holdout_spark,
    collapsed_summary,
    summary_spark,
)
from clvkit.io.datasets import load_builtin_transactions
from tests.features.conftest import enrich

pytestmark = [pytest.mark.slow,  # starts a Spark session: not in make test-fast
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

FLOAT_RTOL = 1e-9
FIT_RTOL = 1e-6
COUNT_COLUMNS = {schemas.FREQUENCY, schemas.FREQUENCY_CAL, schemas.FREQUENCY_HOLDOUT}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_builtin_transactions("cdnow")


@pytest.fixture(scope="module")
def rich_sim(simulation) -> pd.DataFrame:
    return enrich(simulation.transactions, seed=11)[["customer_id", "timestamp", "amount"]]


def to_spark(spark, transactions: pd.DataFrame):
    frame = transactions[[schemas.CUSTOMER_ID, schemas.TIMESTAMP, schemas.AMOUNT]].copy()
    frame[schemas.CUSTOMER_ID] = frame[schemas.CUSTOMER_ID].astype(str)
    frame[schemas.TIMESTAMP] = frame[schemas.TIMESTAMP].astype("datetime64[us]")
    return spark.createDataFrame(frame, schema="customer_id string, timestamp timestamp_ntz, amount double")


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same customers, and every column equal: counts exactly, floats to 1e-9 relative."""
    expected = expected.copy()
    expected.index = expected.index.astype(str)
    got = got.set_index(schemas.CUSTOMER_ID).sort_index()
    expected = expected.sort_index()
    assert got.index.tolist() == expected.index.tolist()
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        g, e = got[column].to_numpy(float), expected[column].to_numpy(float)
        if column in COUNT_COLUMNS:
            np.testing.assert_array_equal(g, e, err_msg=column)
        else:
            np.testing.assert_allclose(g, e, rtol=FLOAT_RTOL, atol=1e-12, err_msg=column)


def test_cdnow_summary_equals_pandas_in_weeks_and_months(spark, cdnow) -> None:
    frame = to_spark(spark, cdnow)
    for time_unit in ("W", "M"):
        got = summary_spark(frame, "1997-09-30", time_unit).toPandas()
        assert_same_table(got, summary(cdnow, "1997-09-30", time_unit))


def test_simulated_summary_with_returns_and_same_day_repeats_equals_pandas(spark, rich_sim) -> None:
    assert (rich_sim["amount"] < 0).any() and (rich_sim["amount"] == 0).any()
    got = summary_spark(to_spark(spark, rich_sim), "2020-09-15", "W").toPandas()
    assert_same_table(got, summary(rich_sim, "2020-09-15", "W"))


@pytest.mark.parametrize(("name", "cal_end", "obs_end"), [("cdnow", "1997-09-30", "1998-06-30"),
                                                          ("sim", "2020-06-30", "2021-01-31")])
def test_calibration_holdout_equals_pandas(spark, cdnow, rich_sim, name, cal_end, obs_end) -> None:
    tx = cdnow if name == "cdnow" else rich_sim
    expected = calibration_holdout(tx, cal_end, obs_end, "W")
    got = calibration_holdout_spark(to_spark(spark, tx), cal_end, obs_end, "W")
    assert got.n_customers_first_seen_in_holdout == expected.n_customers_first_seen_in_holdout
    assert got.duration_holdout == expected.duration_holdout
    assert_same_table(got.table.toPandas(), expected.table)


def test_collapsed_fits_equal_per_customer_fits(spark, cdnow) -> None:
    import warnings

    from clvkit.models.gamma_gamma import GammaGammaModel
    from clvkit.models.purchase import make_purchase_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter

    per_customer = summary(cdnow, "1997-09-30", "W")
    spark_summary = summary_spark(to_spark(spark, cdnow), "1997-09-30", "W").persist()
    rows = collapsed_summary(spark_summary).toPandas()
    spend_rows = collapsed_summary(spark_summary, (schemas.FREQUENCY, schemas.MONETARY_VALUE)).toPandas()
    assert len(rows) < len(per_customer) / 2  # fewer rows reach the driver than customers
    assert rows[COUNT].sum() == spend_rows[COUNT].sum() == len(per_customer)
    for name in ("bgnbd", "mbgnbd"):
        full = make_purchase_model(name).fit(per_customer)
        collapsed = make_purchase_model(name).fit(rows, sample_weight=rows[COUNT].to_numpy())
        for key, value in full.params_.items():
            assert collapsed.params_[key] == pytest.approx(value, rel=FIT_RTOL), (name, key)
        assert collapsed.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=FIT_RTOL)
    full_gg = GammaGammaModel().fit(per_customer)
    collapsed_gg = GammaGammaModel().fit(spend_rows, sample_weight=spend_rows[COUNT].to_numpy())
    for key, value in full_gg.params_.items():
        assert collapsed_gg.params_[key] == pytest.approx(value, rel=FIT_RTOL), key
    # the same sufficient-statistics argument, on lifetimes itself (its `weights` argument)
    lt_full = BetaGeoFitter().fit(per_customer["frequency"], per_customer["recency"], per_customer["T"])
    lt_weighted = BetaGeoFitter().fit(rows["frequency"], rows["recency"], rows["T"], weights=rows[COUNT])
    np.testing.assert_allclose(lt_weighted.params_.to_numpy(), lt_full.params_.to_numpy(), rtol=FIT_RTOL)
    spark_summary.unpersist()


def test_customer_table_built_on_spark_equals_pandas(spark, rich_sim) -> None:
    """Every column of the scorer's customer table (RFM, tiers, behavioural, current value)."""
    from clvkit.features.builder import FeatureBuilder
    from clvkit.pipelines.features import customer_table
    from clvkit.pipelines.spark_predict import customer_table_spark

    as_of = pd.Timestamp("2020-09-15").date()
    builder = FeatureBuilder(time_unit="W").fit(rich_sim, as_of=as_of)
    expected = customer_table(builder, rich_sim, as_of)
    got = customer_table_spark(spark, to_spark(spark, rich_sim), builder.to_dict(), as_of, groups=4).toPandas()
    got = got.set_index(schemas.CUSTOMER_ID).sort_index()
    expected.index = expected.index.astype(str)
    expected = expected.sort_index()
    assert got.index.tolist() == expected.index.tolist()
    assert set(got.columns) == set(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[column]) and not pd.api.types.is_bool_dtype(expected[column]):
            np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float),
                                       rtol=FLOAT_RTOL, atol=1e-12, err_msg=column)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


EDGE_KEYS = ("rfm_edges", "tier_thresholds", "rfm_cycle_days", "n_customers_fit", "as_of")


@pytest.mark.parametrize(("name", "as_of"), [("cdnow", "1998-06-30"), ("cdnow", "1997-06-30"),
                                             ("rich_sim", "2020-09-15")])
def test_feature_edges_learnt_on_spark_from_every_customer_equal_pandas(spark, cdnow, rich_sim, name, as_of) -> None:
    """Cycle, RFM edges and tier thresholds learnt on Spark (all customers) = FeatureBuilder.fit's.

    ``spark.sample_customers`` far below the customer count: edges learnt on a sample would differ.
    """
    from clvkit.config.models import ClvkitConfig, DataConfig, SparkConfig
    from clvkit.pipelines.features import make_builder
    from clvkit.pipelines.spark_features import feature_table_spark

    transactions = {"cdnow": cdnow, "rich_sim": rich_sim}[name][[schemas.CUSTOMER_ID, schemas.TIMESTAMP,
                                                                  schemas.AMOUNT]]
    cutoff = pd.Timestamp(as_of).date()
    config = ClvkitConfig(data=DataConfig(source="unused.csv", time_unit="W"),
                          spark=SparkConfig(sample_customers=100))
    expected = make_builder(config).fit(transactions, as_of=cutoff).to_dict()["fitted"]
    _, builder = feature_table_spark(spark, to_spark(spark, transactions), config, cutoff)
    got = builder.to_dict()["fitted"]
    assert got["n_customers_fit"] > 5 * config.spark.sample_customers
    for key in EDGE_KEYS:
        if key == "rfm_edges":
            for part in ("recency", "frequency", "monetary"):
                np.testing.assert_allclose(got[key][part], expected[key][part], rtol=1e-12, err_msg=part)
        elif key == "tier_thresholds":
            assert [t is None for t in got[key]] == [t is None for t in expected[key]]
            np.testing.assert_allclose([t or 0.0 for t in got[key]], [t or 0.0 for t in expected[key]], rtol=1e-12)
        elif key == "as_of":
            assert got[key] == expected[key]
        else:
            assert got[key] == pytest.approx(expected[key], rel=1e-12), key
    assert got["feature_names_out"] == expected["feature_names_out"]
