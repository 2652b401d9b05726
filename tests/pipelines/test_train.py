"""``clvkit train`` end to end on the Fader-Hardie-Lee CDNOW sample, with real MLflow."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from tests.pipelines.conftest import ROOT, MlflowHome

#: End-to-end: every test here trains through the CLI or starts a server (make test-fast skips them).
pytestmark = pytest.mark.slow

FHL_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005a), table
FHL_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}  # Fader, Hardie & Lee (2005b)


def test_published_estimates_reproduced(fhl_home: MlflowHome) -> None:
    run = fhl_home.first_run  # type: ignore[attr-defined]
    assert {k: round(v, 3) for k, v in run["bgnbd"].items()} == FHL_BGNBD
    assert {k: round(v, 2) for k, v in run["gamma_gamma"].items()} == FHL_GAMMA_GAMMA


def test_json_line_has_the_contract(fhl_home: MlflowHome) -> None:
    run = fhl_home.first_run  # type: ignore[attr-defined]
    for key in ("run_id", "model_uri", "registered_model", "version", "alias", "metrics", "bgnbd", "gamma_gamma"):
        assert key in run
    assert (run["registered_model"], run["version"], run["alias"]) == ("clvkit-cdnow-fhl2005", "1", "champion")
    assert run["reconciliation"]["reconciles"] is True
    assert run["time_frame"]["calibration_end"] == "1997-09-30"
    for name in ("clv_gini_norm", "baseline_hist_gini_norm", "churn_pr_auc", "purchases_mae", "spend_mae",
                 "churn_ece", "clv_top20_capture", "lift_clv_gini_norm"):
        assert np.isfinite(run["metrics"][name])


def test_run_logs_config_plots_report_and_signature(fhl_home: MlflowHome, in_home: MlflowHome) -> None:
    run_id = fhl_home.first_run["run_id"]  # type: ignore[attr-defined]
    run = mlflow.get_run(run_id)
    assert run.data.params["clv.horizon_months"] == "12"
    assert run.data.params["data_fp.rows"] == "6919"
    assert run.data.tags["clv_source"] in {"btyd", "ml", "blend", "historical", "hybrid"}
    assert float(run.data.metrics["fit/cal_bgnbd_r_se"]) > 0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"config", "plots", "tables", "report.html", "data", "evaluation"} <= artifacts
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "plots")}
    assert len(plots) >= 9
    info = mlflow.models.get_model_info(fhl_home.first_run["model_uri"])  # type: ignore[attr-defined]
    outputs = [c.name for c in info.signature.outputs.inputs]
    assert outputs[1:] == list(schemas.SCORER_OUTPUT_COLUMNS)
    assert info.metadata["time_unit"] == "W"
    assert info.metadata["cutoff"] == "1998-06-30"


def test_second_run_identical_and_not_promoted(fhl_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = fhl_home.first_run  # type: ignore[attr-defined]
    second = fhl_home.train_json("configs/cdnow_fhl2005.yaml")
    assert second["bgnbd"] == first["bgnbd"]
    # same data, same seed: the same figures (the Gamma-Gamma optimiser may differ in the last bits)
    assert second["gamma_gamma"] == pytest.approx(first["gamma_gamma"], rel=1e-6)
    assert second["metrics"] == pytest.approx(first["metrics"], rel=1e-5, abs=1e-9, nan_ok=True)
    assert second["alias"] == "challenger"
    assert "does not beat champion v1" in second["alias_reason"]
    out1, out2 = tmp_path / "v1.parquet", tmp_path / "v2.parquet"
    fhl_home.clvkit("predict", "--model", "models:/clvkit-cdnow-fhl2005/1", "--config",
                    str(ROOT / "configs/cdnow_fhl2005.yaml"), "--output", str(out1))
    fhl_home.clvkit("predict", "--model", f"models:/clvkit-cdnow-fhl2005/{second['version']}", "--config",
                    str(ROOT / "configs/cdnow_fhl2005.yaml"), "--output", str(out2))
    pd.testing.assert_frame_equal(pd.read_parquet(out1), pd.read_parquet(out2))


def test_predict_from_transactions_writes_every_customer(fhl_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "scores.csv"
    result = fhl_home.clvkit("predict", "--model", "models:/clvkit-cdnow-fhl2005@champion", "--config",
                             str(ROOT / "configs/cdnow_fhl2005.yaml"), "--output", str(out))
    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert len(scores) == 2357
    assert scores["customer_id"].is_unique
    assert list(scores.columns) == ["customer_id", *schemas.SCORER_OUTPUT_COLUMNS]
    assert scores["p_alive"].between(0, 1).all() and scores["churn_probability"].between(0, 1).all()
    retained = scores["p_alive"].clip(0.05, 1.0)
    np.testing.assert_allclose(scores["churn_loss_value"], scores["churn_probability"] * scores["clv"] / retained,
                               rtol=1e-9)
    assert (scores["clv_p10"] <= scores["clv_p90"]).all() and (scores["clv_p10"] >= 0).all()
    assert set(scores["value_tier"]) == {"A", "B", "C"}
    assert "scored 2,357 customers as of 1998-06-30" in result.stdout
    assert "by RFM segment:" in result.stdout
    assert not list(tmp_path.glob(".clvkit-tmp-*"))


def test_predict_writes_a_retention_list(fhl_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, retention = tmp_path / "scores.parquet", tmp_path / "retain.csv"
    result = fhl_home.clvkit("predict", "--model", "models:/clvkit-cdnow-fhl2005@champion", "--config",
                             str(ROOT / "configs/cdnow_fhl2005.yaml"), "--output", str(out),
                             "--retention-list", str(retention), "--top", "25")
    scores = pd.read_parquet(out)
    ranked = pd.read_csv(retention, dtype={"customer_id": str})
    assert len(ranked) == 25 and ranked["rank"].tolist() == list(range(1, 26))
    assert list(ranked.columns) == ["customer_id", "rank", "churn_loss_value", "current_value", "clv", "clv_p10",
                                    "clv_p90", "value_quadrant", "action", "value_tier", "rfm_segment", "p_alive",
                                    "churn_probability"]
    assert ranked["churn_loss_value"].is_monotonic_decreasing
    top = scores.nlargest(25, "churn_loss_value")
    np.testing.assert_allclose(ranked["churn_loss_value"], top["churn_loss_value"].to_numpy(), rtol=1e-9)
    assert ranked["action"].str.len().gt(0).all()
    assert "retention list: top 25 customers by churn-loss value" in result.stdout


def test_predict_from_feature_table(fhl_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    features = tmp_path / "features.parquet"
    fhl_home.clvkit("features", "--config", str(ROOT / "configs/cdnow_fhl2005.yaml"), "--as-of", "1998-06-30",
                    "--output", str(features))
    from_table, from_tx = tmp_path / "a.parquet", tmp_path / "b.parquet"
    fhl_home.clvkit("predict", "--model", "models:/clvkit-cdnow-fhl2005/1", "--input", str(features),
                    "--output", str(from_table))
    fhl_home.clvkit("predict", "--model", "models:/clvkit-cdnow-fhl2005/1", "--config",
                    str(ROOT / "configs/cdnow_fhl2005.yaml"), "--output", str(from_tx))
    pd.testing.assert_frame_equal(pd.read_parquet(from_table), pd.read_parquet(from_tx))


def test_predict_unknown_model_exit_2(fhl_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = fhl_home.clvkit("predict", "--model", "models:/nope@champion", "--config",
                             str(ROOT / "configs/cdnow_fhl2005.yaml"), "--output", str(tmp_path / "x.csv"), check=False)
    assert result.returncode == 2
    assert "cannot load model 'models:/nope@champion'" in result.stderr


def test_fresh_process_scores_equal_in_memory(in_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from clvkit.config.loading import load_config
    from clvkit.io.scorer_model import signature_frame
    from clvkit.pipelines.train import fit_and_evaluate, log_training

    config = load_config(ROOT / "configs/cdnow_fhl2005.yaml", ["mlflow.registered_model=fresh-process"])
    outcome = fit_and_evaluate(config)
    expected = outcome.scorer.score(outcome.served.table)
    result = log_training(config, None, outcome)
    table = tmp_path / "table.parquet"
    signature_frame(outcome.served.table).rename_axis("customer_id").reset_index().to_parquet(table)
    scored = tmp_path / "scored.parquet"
    code = (
        f"import mlflow, pandas as pd; m = mlflow.pyfunc.load_model({result.model_uri!r}); "
        f"m.predict(pd.read_parquet({str(table)!r})).to_parquet({str(scored)!r})"
    )
    subprocess.run([sys.executable, "-c", code], cwd=in_home.path, env=in_home.env, check=True, timeout=300)
    fresh = pd.read_parquet(scored).set_index("customer_id")
    pd.testing.assert_frame_equal(fresh, expected.rename_axis("customer_id"), check_exact=True)


def test_model_refuses_incompatible_versions(in_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import shutil

    from clvkit.exceptions import IncompatibleModelError

    local = mlflow.artifacts.download_artifacts(in_home.first_run["model_uri"], dst_path=str(tmp_path))  # type: ignore[attr-defined]
    state_files = list((tmp_path).rglob("state.json"))
    assert len(state_files) == 1
    state = json.loads(state_files[0].read_text())
    state["versions"]["xgboost-cpu"] = "1.7.6"
    state_files[0].write_text(json.dumps(state))
    with pytest.raises(IncompatibleModelError, match=r"saved under xgboost-cpu 1\.7\.6 \(installed: 3\."):
        mlflow.pyfunc.load_model(local)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_model_artifact_is_small_and_holds_no_pickle(in_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    local = mlflow.artifacts.download_artifacts(in_home.first_run["model_uri"], dst_path=str(tmp_path))  # type: ignore[attr-defined]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".cloudpickle"}]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    state_files = [p for p in files if p.name == "state.json"]
    assert len(state_files) == 1 and state_files[0].is_relative_to(local)
    state = json.loads(state_files[0].read_text())
    assert {"scorer", "feature_builder", "data", "cutoff", "config_hash", "data_fingerprint", "versions"} <= set(state)
    boosters = {p.name: p for p in files if p.name.endswith(".xgb.json")}
    assert set(boosters) == {f"{name}.xgb.json" for name in state["boosters"]} and boosters
    assert all(json.loads(p.read_text())["learner"] for p in boosters.values())  # XGBoost's JSON model format


def test_predict_as_of_quarantines_later_rows_beside_the_output(fhl_home: MlflowHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "early.csv"
    result = fhl_home.clvkit("predict", "--model", "models:/clvkit-cdnow-fhl2005/1", "--config",
                             str(ROOT / "configs/cdnow_fhl2005.yaml"), "--as-of", "1997-12-31", "--output", str(out))
    assert "as of 1997-12-31" in result.stdout
    quarantine = pd.read_csv(tmp_path / "early.quarantine.csv")
    assert set(quarantine["reason"]) == {"after_as_of"}
    scores = pd.read_csv(out)
    assert len(scores) == 2357  # every customer was acquired in 1997's first quarter
    assert f"input rows quarantined (not scored): see {tmp_path / 'early.quarantine.csv'}" in result.stdout
