"""Registry and alias logic against a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from clvkit.io import tracking


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracking.configure_tracking()
    mlflow.set_experiment("alias-test")
    return tmp_path


def _register(metric: float, fp: str) -> tracking.Registration:
    with mlflow.start_run() as run:
        mlflow.log_metric("clv_gini_norm", metric)
        info = mlflow.pyfunc.log_model(name="m", python_model=_Constant())
        return tracking.register_with_alias(info.model_uri, "scorer", run.info.run_id, "clv_gini_norm",
                                            metric, fp, higher_is_better=True)


def test_champion_moves_only_when_beaten_on_same_data(store: Path) -> None:
    first = _register(0.60, "fp1")
    assert (first.alias, first.reason) == ("champion", "first version: no champion yet")
    worse = _register(0.55, "fp1")
    assert worse.alias == "challenger"
    assert worse.reason == "clv_gini_norm 0.5500 does not beat champion v1 (0.6000)"
    tie = _register(0.60, "fp1")
    assert tie.alias == "challenger"
    better = _register(0.70, "fp1")
    assert better.alias == "champion"
    other_data = _register(0.99, "fp2")
    assert other_data.alias == "challenger"
    assert "evaluated on other data (fp1); not comparable" in other_data.reason
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("scorer", "champion").version) == better.version


def test_fingerprint_depends_on_content() -> None:
    tx = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                       "amount": [1.0, 2.0]})
    fp = tracking.fingerprint(tx)
    assert (fp.rows, fp.customers, fp.first_date, fp.last_date) == (2, 2, "2024-01-01", "2024-01-02")
    changed = tx.assign(amount=[1.0, 2.5])
    assert tracking.fingerprint(changed).content_hash != fp.content_hash
    assert tracking.fingerprint(tx.copy()).content_hash == fp.content_hash
