"""The MLflow store prepared in a background thread: cheap checks at once, the same errors, a true run start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clvkit.exceptions import UserInputError
from clvkit.io import store


def test_a_lost_folder_fails_before_the_thread_starts(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}"
    with pytest.raises(UserInputError, match=r"tracking store .* cannot be used: the folder .*gone' does not exist\. "
                                             r"Set MLFLOW_TRACKING_URI"):
        store.prepare_in_background(uri)


def test_an_unusable_file_fails_at_wait_with_the_store_message(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not an sqlite database" * 100)
    pending = store.prepare_in_background(f"sqlite:///{db}")
    with pytest.raises(UserInputError, match=r"tracking store .* cannot be used: .*\(nothing was trained\)"):
        pending.wait()


@pytest.mark.slow  # a real MLflow store
def test_a_fresh_store_is_ready_after_wait_and_the_run_keeps_its_start(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from clvkit.config.models import ClvkitConfig
    from clvkit.io import tracking
    from clvkit.pipelines.run_logging import training_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    started_ms = int(time.time() * 1000) - 60_000  # the training began a minute ago
    assert store.prepare_in_background().wait() == uri
    assert uri in store._PREPARED_STORES
    tracking.configure_tracking()
    config = ClvkitConfig.model_validate({"data": {"source": "cdnow_sample"}})
    with training_run(config, start_time_ms=started_ms) as run:
        mlflow.log_metric("x", 1.0)
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    assert got.info.start_time == started_ms and got.info.status == "FINISHED"
    assert got.data.tags["kind"] == "train" and "mlflow.user" in got.data.tags
    assert got.info.run_name == f"{config.mlflow.registered_model}-h{config.clv.horizon_months}m"


def test_a_store_failure_is_seen_without_blocking_and_says_what_was_lost_after_fitting(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not an sqlite database" * 100)
    pending = store.prepare_in_background(f"sqlite:///{db}")
    deadline = time.monotonic() + 60
    while pending._thread.is_alive() and time.monotonic() < deadline:
        pending.raise_if_failed()  # still preparing: returns at once
        time.sleep(0.05)
    with pytest.raises(UserInputError, match=r"cannot be used: .*\(nothing was trained\)"):
        pending.raise_if_failed()
    with pytest.raises(UserInputError, match=r"cannot be used: .*\(the models were fitted, but nothing was logged "
                                             r"or registered: run the training again\)"):
        pending.wait(after_fitting=True)
