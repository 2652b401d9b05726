"""Registry and alias logic against a real MLflow SQLite store."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from clvkit.exceptions import UserInputError
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


def _register(metric: float, fp: str, split: str | None = None, reevaluate=None) -> tracking.Registration:  # type: ignore[no-untyped-def]
    with mlflow.start_run() as run:
        mlflow.log_metric("clv_gini_norm", metric)
        info = mlflow.pyfunc.log_model(name="m", python_model=_Constant())
        return tracking.register_with_alias(info.model_uri, "scorer", run.info.run_id, "clv_gini_norm",
                                            metric, fp, higher_is_better=True, split=split, reevaluate=reevaluate)


@pytest.mark.slow  # a real MLflow store and registry
def test_champion_moves_only_when_beaten_on_same_data(store: Path) -> None:
    first = _register(0.60, "fp1")
    assert (first.alias, first.reason) == ("champion", "first version: no champion yet")
    worse = _register(0.55, "fp1")
    assert worse.alias == "challenger"
    assert worse.reason == "clv_gini_norm 0.5500 does not beat champion v1 (0.6000, on the same split: data=fp1)"
    tie = _register(0.60, "fp1")
    assert tie.alias == "challenger"
    better = _register(0.70, "fp1")
    assert better.alias == "champion"
    other_data = _register(0.99, "fp2")
    assert other_data.alias == "challenger"
    assert other_data.reason == (
        "champion v4 was evaluated on another split (data=fp1) than this version (data=fp2) and its recipe "
        "could not be re-evaluated here; not comparable, so not promoted")
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("scorer", "champion").version) == better.version


@pytest.mark.slow  # a real MLflow store and registry
def test_champion_never_replaced_by_a_run_evaluated_on_a_different_split(store: Path) -> None:
    thirteen_weeks = "data=fp1; origins=1998-03-31..1998-06-30"
    thirty_nine_weeks = "data=fp1; origins=1997-09-30..1998-06-30"
    champion = _register(0.719, "fp1", split=thirty_nine_weeks)
    assert champion.alias == "champion"
    # a higher figure on another split, nothing re-evaluated: refused, both splits named
    refused = _register(0.777, "fp1", split=thirteen_weeks)
    assert refused.alias == "challenger"
    assert f"another split ({thirty_nine_weeks}) than this version ({thirteen_weeks})" in refused.reason
    # the champion's recipe re-evaluated on the new split wins there: still not promoted
    seen: list[str] = []

    def champion_on_new_split(run_id: str) -> float:
        seen.append(run_id)
        return 0.80

    kept = _register(0.777, "fp1", split=thirteen_weeks, reevaluate=champion_on_new_split)
    assert kept.alias == "challenger" and len(seen) == 1
    assert kept.reason == (f"clv_gini_norm 0.7770 does not beat champion v1 (0.8000, re-evaluated on this run's "
                           f"split: {thirteen_weeks})")
    promoted = _register(0.777, "fp1", split=thirteen_weeks, reevaluate=lambda run_id: 0.70)
    assert promoted.alias == "champion"
    tags = mlflow.MlflowClient().get_model_version("scorer", promoted.version).tags
    assert tags["gate_champion_value"] == "0.7" and tags["gate_new_value"] == "0.777"
    assert tags["evaluation_split"] == thirteen_weeks and tags["alias_reason"] == promoted.reason


def test_fingerprint_depends_on_content() -> None:
    tx = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                       "amount": [1.0, 2.0]})
    fp = tracking.fingerprint(tx)
    assert (fp.rows, fp.customers, fp.first_date, fp.last_date) == (2, 2, "2024-01-01", "2024-01-02")
    changed = tx.assign(amount=[1.0, 2.5])
    assert tracking.fingerprint(changed).content_hash != fp.content_hash
    assert tracking.fingerprint(tx.copy()).content_hash == fp.content_hash


_FIRST_RUN = """
import os, sys, time
from clvkit.io import tracking
import mlflow
start = float(sys.argv[1])
while time.time() < start:  # both processes open the fresh store at the same moment
    time.sleep(0.01)
tracking.configure_tracking()
mlflow.set_experiment("race")
with mlflow.start_run():
    mlflow.log_metric("x", 1.0)
print("ok")
"""


@pytest.mark.slow
def test_two_first_runs_on_one_fresh_sqlite_store_both_succeed(tmp_path: Path) -> None:
    """Issue 11: two first runs at once broke the store (alembic: table _alembic_tmp_* already exists)."""
    import subprocess
    import sys
    import time

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("MLFLOW_REGISTRY_URI", None)
    start = f"{time.time() + 8:.3f}"  # after both interpreters have imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", _FIRST_RUN, start], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == "ok"
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("race")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 2


def test_lost_sqlite_store_fails_fast_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}")
    with pytest.raises(UserInputError, match=r"tracking store .* cannot be used: the folder .*gone' does not exist\. "
                                             r"Set MLFLOW_TRACKING_URI"):
        tracking.configure_tracking()


def test_unreachable_tracking_server_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(UserInputError, match=r"the server does not answer .*\(nothing was trained\)"):
        tracking.configure_tracking()


def test_sqlite_paths() -> None:
    assert tracking.sqlite_path("sqlite:///mlflow.db") == Path("mlflow.db")
    assert tracking.sqlite_path("sqlite:////tmp/x/mlflow.db") == Path("/tmp/x/mlflow.db")
    assert tracking.sqlite_path("sqlite://") is None
