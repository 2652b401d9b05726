"""MLflow tracking and registry: runs, params, metrics, figures, the scorer model, aliases."""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from clvkit.io.artifact import DataFingerprint, fingerprint  # noqa: F401  (re-exported)
from clvkit.io.metric_names import internal_metrics
from clvkit.io.store import (  # noqa: F401  (re-exported)
    DEFAULT_TRACKING_URI,
    SERVER_CHECK_TIMEOUT_S,
    STORE_LOCK_POLL_S,
    STORE_LOCK_TIMEOUT_S,
    prepare_store,
    sqlite_path,
    tracking_uri,
)

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
FINGERPRINT_TAG = "data_fingerprint"
PRIMARY_METRIC_TAG = "primary_metric"
#: Model-version tag: the evaluation split (data fingerprint + origins) the version's figures come from.
SPLIT_TAG = "evaluation_split"
#: MLflow's limit on a tag value (characters).
MAX_TAG_LENGTH = 5000
MAX_PARAM_LENGTH = 500


def configure_tracking() -> str:
    """Use ``MLFLOW_TRACKING_URI`` or MLflow's default SQLite file ``mlflow.db`` in the working directory.

    The registry follows the tracking URI unless ``MLFLOW_REGISTRY_URI`` says otherwise. The
    store is checked (and a new SQLite store initialised, under a file lock) here, so that a
    lost store fails before any expensive work and concurrent first runs do not race
    (:mod:`clvkit.io.store`; ``clvkit train`` prepares it in the background while it reads the data).
    """
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    prepare_store(uri)
    return uri


# DataFingerprint and fingerprint() live in io/artifact.py (no MLflow), re-exported here.


def log_params(params: Mapping[str, Any]) -> None:
    """Log params, truncating values to MLflow's limit."""
    mlflow.log_params({k: str(v)[:MAX_PARAM_LENGTH] for k, v in params.items()})


def log_figures(figures: Mapping[str, Any], folder: str = "plots") -> None:
    """Log matplotlib Figures as PNG artifacts ``plots/<name>.png``."""
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"{folder}/{name}.png")


def log_table(table: pd.DataFrame, artifact_file: str) -> None:
    """Log a small table as a CSV artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        table.to_csv(path)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent) if Path(artifact_file).parent.name else None)


def log_scorer_model(
    scorer_dir: Path,
    input_example: pd.DataFrame,
    output_example: pd.DataFrame,
    pip_requirements: list[str],
    metadata: dict[str, Any],
    signature: Any = None,
) -> str:
    """Log the pyfunc scorer with a signature (default: inferred from the examples) and input example;
    return its model URI."""
    from clvkit.io import pyfunc_entry_path
    from clvkit.io.scorer_model import ARTIFACT_KEY

    signature = signature or infer_signature(input_example, output_example)
    info = mlflow.pyfunc.log_model(
        name="scorer",
        python_model=pyfunc_entry_path(),
        artifacts={ARTIFACT_KEY: str(scorer_dir)},
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        metadata=metadata,
    )
    return info.model_uri


@dataclass(frozen=True)
class Registration:
    """Outcome of registering a scorer version."""

    name: str
    version: str
    alias: str
    reason: str


def register_with_alias(
    model_uri: str,
    name: str,
    run_id: str,
    metric: str,
    value: float,
    data_fingerprint: str,
    higher_is_better: bool,
    *,
    split: str | None = None,
    reevaluate: Callable[[str], float | None] | None = None,
) -> Registration:
    """Register ``model_uri``; alias ``champion`` only if it beats the champion on equal terms.

    Equal terms: the champion's figure on the same evaluation split (``split``: data fingerprint and
    evaluation origins). When the champion was evaluated on another split, ``reevaluate(champion_run_id)``
    re-runs the champion's recipe on this run's split; without it (or when it returns None) the
    version is not promoted and the reason names both splits. The decision and both figures are
    tags of the new version.
    """
    client = MlflowClient()
    split = split or f"data={data_fingerprint}"
    version = mlflow.register_model(model_uri, name, tags={FINGERPRINT_TAG: data_fingerprint, SPLIT_TAG: split}).version
    client.set_model_version_tag(name, version, PRIMARY_METRIC_TAG, f"{metric}={value:.6g}")
    decision = _decide_alias(client, name, metric, value, split, higher_is_better, reevaluate)
    client.set_registered_model_alias(name, decision.alias, version)
    client.set_model_version_tag(name, version, "alias_reason", decision.reason[:MAX_TAG_LENGTH])
    client.set_model_version_tag(name, version, "gate_new_value", f"{value:.6g}")
    if decision.champion_value is not None:
        client.set_model_version_tag(name, version, "gate_champion_value", f"{decision.champion_value:.6g}")
        client.set_model_version_tag(name, version, "gate_champion_version", str(decision.champion_version))
    logger.info("registered %s version %s as %s: %s", name, version, decision.alias, decision.reason)
    return Registration(name=name, version=str(version), alias=decision.alias, reason=decision.reason)


def load_run_yaml(run_id: str, artifact_path: str) -> dict[str, Any]:
    """A YAML artifact of a run (e.g. its resolved config) as a dictionary; OSError when absent."""
    import yaml

    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{artifact_path}")
    except MlflowException as err:
        raise OSError(f"run {run_id} has no artifact {artifact_path}: {err}") from err
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{artifact_path} of run {run_id} is not a mapping")
    return data


@dataclass(frozen=True)
class GateDecision:
    """The champion gate's verdict and the figures it compared."""

    alias: str
    reason: str
    champion_value: float | None = None
    champion_version: str | None = None


def _decide_alias(
    client: MlflowClient, name: str, metric: str, value: float, split: str, higher_is_better: bool,
    reevaluate: Callable[[str], float | None] | None = None,
) -> GateDecision:
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return GateDecision(CHAMPION, "first version: no champion yet")
    champion_split = champion.tags.get(SPLIT_TAG) or f"data={champion.tags.get(FINGERPRINT_TAG)}"
    if champion_split == split:
        champion_value = (internal_metrics(client.get_run(champion.run_id).data.metrics).get(metric)
                          if champion.run_id else None)
        how = "on the same split"
    else:
        champion_value = reevaluate(champion.run_id) if reevaluate is not None and champion.run_id else None
        how = "re-evaluated on this run's split"
        if champion_value is None:
            return GateDecision(CHALLENGER, (
                f"champion v{champion.version} was evaluated on another split ({champion_split}) than this "
                f"version ({split}) and its recipe could not be re-evaluated here; not comparable, so not promoted"
            ))
    if champion_value is None or not math.isfinite(champion_value):
        return GateDecision(CHALLENGER, f"champion v{champion.version} has no {metric} {how}; not promoted")
    better = value > champion_value if higher_is_better else value < champion_value
    verdict = "beats" if better else "does not beat"
    alias = CHAMPION if better else CHALLENGER
    return GateDecision(alias, f"{metric} {value:.4f} {verdict} champion v{champion.version} ({champion_value:.4f}, "
                               f"{how}: {split})", champion_value, str(champion.version))
