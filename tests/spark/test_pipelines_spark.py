"""End to end on local Spark: ``clvkit train --engine spark``, then ``clvkit predict --engine spark``
from the registered ``models:/...@champion``; the Spark scores equal the pandas engine's (1e-9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clvkit import schemas
from clvkit.cli.main import app

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ROOT = Path(__file__).parents[2]
CONFIG = str(ROOT / "configs" / "cdnow_fhl2005.yaml")
MODEL = "spark-e2e"
SCORE_RTOL = 1e-9


@pytest.mark.slow
def test_train_then_predict_on_spark_equal_pandas_scores(spark, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    overrides = ["--set", f"mlflow.registered_model={MODEL}", "--set", "spark.sample_customers=1000",
                 "--set", f"data.quarantine_path={tmp_path / 'q.csv'}"]
    trained = runner.invoke(app, ["train", "--config", CONFIG, "--engine", "spark", *overrides])
    assert trained.exit_code == 0, trained.output
    assert f"model: models:/{MODEL}@champion" in trained.output

    import mlflow

    run = mlflow.search_runs(experiment_names=["clvkit-cdnow-fhl2005"], output_format="list")[0]
    assert run.data.params["spark_customers"] == "2357"
    sampled = int(run.data.params["spark_sample_customers"])
    assert 800 < sampled < 1200  # about spark.sample_customers, drawn per frequency band
    assert int(run.data.params["spark_collapsed_purchase_rows"]) < 2357

    spark_out = tmp_path / "scores_spark"
    predicted = runner.invoke(app, ["predict", "--engine", "spark", "--model", f"models:/{MODEL}@champion",
                                    "--output", str(spark_out), "--config", CONFIG, "--as-of", "1998-06-30",
                                    *overrides])
    assert predicted.exit_code == 0, predicted.output
    assert "scored 2,357 customers as of 1998-06-30 on Spark" in predicted.output
    assert any(p.name.startswith(f"{schemas.VALUE_TIER}=") for p in spark_out.iterdir())  # partitioned

    pandas_out = tmp_path / "scores_pandas.parquet"
    reference = runner.invoke(app, ["predict", "--model", f"models:/{MODEL}@champion", "--output", str(pandas_out),
                                    "--config", CONFIG, "--as-of", "1998-06-30", *overrides])
    assert reference.exit_code == 0, reference.output

    got = pd.read_parquet(spark_out).sort_values(schemas.CUSTOMER_ID).reset_index(drop=True)
    expected = pd.read_parquet(pandas_out).sort_values(schemas.CUSTOMER_ID).reset_index(drop=True)
    assert got[schemas.CUSTOMER_ID].astype(str).tolist() == expected[schemas.CUSTOMER_ID].astype(str).tolist()
    assert set(got.columns) == set(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[column]):
            np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float),
                                       rtol=SCORE_RTOL, atol=1e-12, err_msg=column)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


@pytest.mark.slow  # starts a Spark session
def test_validate_and_features_commands_on_spark_equal_pandas(spark, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    overrides = ["--set", f"data.quarantine_path={tmp_path / 'q.csv'}"]
    validated = runner.invoke(app, ["data", "validate", "--config", CONFIG, "--engine", "spark", *overrides])
    assert validated.exit_code == 0, validated.output
    assert "Reconciliation (Spark):" in validated.output
    assert "rows read 6,919 = rows used 6,919 + rows quarantined 0" in validated.output

    spark_dir, pandas_file = tmp_path / "features_spark", tmp_path / "features.parquet"
    built = runner.invoke(app, ["features", "--config", CONFIG, "--engine", "spark", "--output", str(spark_dir),
                                "--as-of", "1998-06-30", *overrides])
    assert built.exit_code == 0, built.output
    assert "wrote 2,357 customers" in built.output
    reference = runner.invoke(app, ["features", "--config", CONFIG, "--output", str(pandas_file),
                                    "--as-of", "1998-06-30", *overrides])
    assert reference.exit_code == 0, reference.output
    got = pd.read_parquet(spark_dir).set_index(schemas.CUSTOMER_ID).sort_index()
    expected = pd.read_parquet(pandas_file)
    expected = expected.set_index(schemas.CUSTOMER_ID) if schemas.CUSTOMER_ID in expected else expected
    expected.index = expected.index.astype(str)
    expected = expected.sort_index()
    assert got.index.tolist() == expected.index.tolist()
    assert set(got.columns) == set(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[column]) and not pd.api.types.is_bool_dtype(expected[column]):
            np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float),
                                       rtol=SCORE_RTOL, atol=1e-12, err_msg=column)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
