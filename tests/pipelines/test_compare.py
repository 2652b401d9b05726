"""``clvkit compare`` lists runs best first, in the direction the metric registry gives."""

from __future__ import annotations

import os
from collections.abc import Iterator

import mlflow
import pytest
from typer.testing import CliRunner

from clvkit.cli.main import app
from clvkit.pipelines.compare import compare_runs

#: A real MLflow store takes seconds to create: not in the fast lane.
pytestmark = pytest.mark.slow

#: (run name, clv_gini_norm, purchases_mae) of the logged runs, in logging order.
RUNS = (("middle", 0.30, 0.9), ("best-gini", 0.50, 1.2), ("worst-gini", 0.10, 0.4))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow store (SQLite) with three runs of known metrics."""
    path = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # restored with the rest afterwards
            patch.setenv(key, os.environ.get(key, ""))
            patch.delenv(key)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("ranked")
        for name, gini, mae in RUNS:
            with mlflow.start_run(run_name=name, tags={"kind": "train"}):
                mlflow.log_metrics({"clv_gini_norm": gini, "purchases_mae": mae})
        yield uri


def test_runs_are_sorted_best_first_in_the_metric_direction(store: str) -> None:
    by_gini = compare_runs("ranked")
    assert by_gini["run"].tolist() == ["best-gini", "middle", "worst-gini"]
    by_mae = compare_runs("ranked", "purchases_mae")  # lower is better: the registry says so
    assert by_mae["run"].tolist() == ["worst-gini", "middle", "best-gini"]
    assert compare_runs("ranked", "purchases_mae", higher_is_better=True)["run"].tolist()[0] == "best-gini"


def test_cli_prints_the_best_run_first(store: str) -> None:
    result = CliRunner().invoke(app, ["compare", "--experiment", "ranked"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines()[1:] if line.strip()]
    assert [next(n for n, *_ in RUNS if n in row) for row in rows] == ["best-gini", "middle", "worst-gini"]
