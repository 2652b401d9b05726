"""The public Python API: ``clvkit.CLVModel`` and the curated names of ``import clvkit``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.api import CLVModel, metrics_table, resolve_config
from clvkit.exceptions import ConfigError, NotFittedError, UserInputError
from clvkit.pipelines.ingest import dataframe_source, ingest

ROOT = Path(__file__).parents[1]

# --- the package namespace ------------------------------------------------------------


def test_every_public_name_resolves_and_is_listed() -> None:
    assert clvkit.__all__[0] == "__version__"
    assert set(clvkit.__all__[1:]) == set(clvkit._EXPORTS)  # the literal list and the lazy table agree
    for name in clvkit.__all__:
        assert getattr(clvkit, name) is not None
    assert clvkit.CLVModel is CLVModel
    assert set(clvkit.__all__) <= set(dir(clvkit))
    with pytest.raises(AttributeError, match="module 'clvkit' has no attribute 'nope'"):
        clvkit.nope  # noqa: B018


# --- settings -----------------------------------------------------------------------


def test_overrides_by_leaf_name_dotted_dunder_and_section() -> None:
    config = resolve_config(None, {"horizon_months": 6, "churn.window_days": 60, "models__value__enabled": False,
                                   "mlflow": {"experiment": "nb"}})
    assert config.clv.horizon_months == 6
    assert config.churn.window_days == 60
    assert config.models.value.enabled is False
    assert config.mlflow.experiment == "nb"
    assert config.mlflow.registered_model == resolve_config(None, {}).mlflow.registered_model  # merged, not replaced


def test_overrides_apply_on_top_of_a_config_object_mapping_or_yaml_file() -> None:
    base = resolve_config(ROOT / "configs" / "cdnow_fhl2005.yaml", {})
    assert base.data.calibration_end == dt.date(1997, 9, 30)
    on_top = CLVModel(base, horizon_months=24).config
    assert (on_top.clv.horizon_months, on_top.data.calibration_end) == (24, dt.date(1997, 9, 30))
    assert CLVModel({"clv": {"horizon_months": 3}}).config.clv.horizon_months == 3


def test_bad_overrides_name_the_problem() -> None:
    with pytest.raises(ConfigError, match=r"setting 'penalizer' is ambiguous: it could be models\.bgnbd\.penalizer, "
                                          r"models\.gamma_gamma\.penalizer; pass the dotted name"):
        CLVModel(penalizer=0.01)
    with pytest.raises(ConfigError, match=r"unknown setting 'horizon_month' \(did you mean horizon_months"):
        CLVModel(horizon_month=12)
    with pytest.raises(ConfigError, match=r"clv\.horizon_months: Input should be greater than 0"):
        CLVModel(horizon_months=0)
    with pytest.raises(UserInputError, match="config must be a ClvkitConfig, a mapping, a YAML path or None, got int"):
        CLVModel(3)  # type: ignore[arg-type]


def test_a_new_primary_metric_brings_its_direction() -> None:
    lower = CLVModel(resolve_config(None, {}), primary_metric="purchases_mae").config.evaluation
    assert (lower.primary_metric, lower.primary_metric_higher_is_better) == ("purchases_mae", False)
    with pytest.raises(ConfigError, match="primary_metric 'clv_gini' is not a clvkit metric"):
        CLVModel(primary_metric="clv_gini")


# --- inputs and state -----------------------------------------------------------------


def test_unfitted_model_says_what_to_do() -> None:
    model = CLVModel()
    for call in (lambda: model.predict(pd.DataFrame()), model.evaluate, lambda: model.save("x")):
        with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(transactions\) or CLVModel\.load"):
            call()
    with pytest.raises(NotFittedError, match="log_to_mlflow needs the training outcome of fit"):
        model.log_to_mlflow()
    with pytest.raises(UserInputError, match="has no state.json"):
        CLVModel.load(ROOT)


def test_dates_and_data_source_are_checked() -> None:
    with pytest.raises(UserInputError, match=r"cutoff must be a date such as '2024-06-30'.*got '30/06/1998'"):
        CLVModel().fit(pd.DataFrame({"customer_id": ["a"]}), cutoff="30/06/1998")
    with pytest.raises(UserInputError, match="transactions must be a pandas DataFrame .*got list"):
        CLVModel().fit([1, 2, 3])  # type: ignore[arg-type]


def test_a_dataframe_is_ingested_like_a_file_without_being_changed(tmp_path: Path) -> None:
    frame = pd.DataFrame({"cust": ["a", "a", "b", "b"], "when": ["2024-01-02", "2024-02-03", "2024-01-05", "bad"],
                          "spend": [10.0, 20.0, 5.0, 7.0], "ignored": [1, 2, 3, 4]})
    before = frame.copy()
    config = resolve_config(None, {"data.columns": {"customer_id": "cust", "timestamp": "when", "amount": "spend"},
                                   "invalid_timestamp": "quarantine"})
    with dataframe_source(frame) as source:
        assert source.startswith("memory:")
        data = config.data.model_copy(update={"source": source, "quarantine_path": str(tmp_path / "q.csv")})
        result = ingest(data).validated
    pd.testing.assert_frame_equal(frame, before)
    assert len(result.transactions) == 3 and len(result.quarantine) == 1
    assert set(result.transactions["customer_id"]) == {"a", "b"}
    with pytest.raises(UserInputError, match=r"data\.source 'memory:gone' names no DataFrame in this process"):
        ingest(config.data.model_copy(update={"source": "memory:gone"}))


def test_metrics_table_uses_the_registry() -> None:
    table = metrics_table({"clv_gini_norm": 0.5, "purchases_mae": 1.0, "lift_clv_gini_norm": 0.1, "other": 2.0})
    assert list(table.index) == ["clv_gini_norm", "purchases_mae"]
    assert table.loc["purchases_mae", "direction"] == "lower"
    assert table.loc["clv_gini_norm", "label"] == "Normalized Gini"
    assert list(table.columns) == ["value", "group", "direction", "label", "definition"]


# --- end to end -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return clvkit.load_builtin_transactions("cdnow_sample")


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> CLVModel:
    # the FHL config maps the raw file's columns; the loaded DataFrame already has the canonical names
    canonical = {"data.columns": {"timestamp": "timestamp"}, "date_format": None}
    return CLVModel(ROOT / "configs" / "cdnow_fhl2005.yaml", **canonical).fit(cdnow)


@pytest.mark.slow
def test_fit_predict_evaluate_on_a_dataframe(fitted: CLVModel, cdnow: pd.DataFrame) -> None:
    before = cdnow.copy()
    scores = fitted.predict(cdnow)
    pd.testing.assert_frame_equal(cdnow, before)  # the caller's DataFrame is untouched
    assert fitted.cutoff_ == dt.date(1998, 6, 30)
    assert len(scores) == cdnow["customer_id"].nunique() == 2357
    assert scores["customer_id"].is_unique
    for column in ("p_alive", "churn_probability"):
        assert scores[column].between(0, 1).all()
    assert scores["clv"].ge(0).all() and np.isfinite(scores["clv"]).all()
    table = fitted.evaluate()
    assert table.loc["clv_gini_norm", "value"] == fitted.metrics_["clv_gini_norm"]
    assert {"purchases", "value", "churn"} <= set(table["group"])
    assert fitted.figures_ and all(hasattr(f, "savefig") for f in fitted.figures_.values())
    early = fitted.predict(cdnow, as_of="1997-12-31")
    assert len(early) == 2357 and not early["clv"].equals(scores["clv"])


@pytest.mark.slow
def test_save_load_round_trip_is_the_mlflow_artifact(fitted: CLVModel, cdnow: pd.DataFrame, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "model")
    state = json.loads((path / "state.json").read_text())
    assert {"scorer", "feature_builder", "data", "cutoff", "config_hash", "data_fingerprint", "versions",
            "boosters"} <= set(state)
    assert not [p for p in path.rglob("*") if p.suffix in {".pkl", ".pickle"}]
    loaded = CLVModel.load(path)
    assert loaded.cutoff_ == fitted.cutoff_ and loaded.metrics_ == fitted.metrics_
    assert loaded.config == fitted.config
    pd.testing.assert_frame_equal(loaded.predict(cdnow), fitted.predict(cdnow), check_exact=True)
