"""MLflow tracking and registry: runs, params, metrics, figures, the scorer model, aliases."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from clvkit import schemas

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
CHAMPION = "champion"
CHALLENGER = "challenger"
FINGERPRINT_TAG = "data_fingerprint"
PRIMARY_METRIC_TAG = "primary_metric"
MAX_PARAM_LENGTH = 500


def configure_tracking() -> str:
    """Use ``MLFLOW_TRACKING_URI`` or MLflow's default SQLite file ``mlflow.db`` in the working directory.

    The registry follows the tracking URI unless ``MLFLOW_REGISTRY_URI`` says otherwise.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri


@dataclass(frozen=True)
class DataFingerprint:
    """What identifies the data a run saw."""

    rows: int
    customers: int
    first_date: str
    last_date: str
    content_hash: str

    def as_params(self) -> dict[str, str]:
        """``data_fp.*`` params."""
        return {f"data_fp.{k}": str(v) for k, v in self.__dict__.items()}


def fingerprint(transactions: pd.DataFrame) -> DataFingerprint:
    """Rows, customers, date range and a content hash of the canonical transactions."""
    core = transactions[[schemas.CUSTOMER_ID, schemas.TIMESTAMP, schemas.AMOUNT]]
    hashed = pd.util.hash_pandas_object(core, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
    stamps = transactions[schemas.TIMESTAMP]
    return DataFingerprint(
        rows=len(transactions),
        customers=int(transactions[schemas.CUSTOMER_ID].nunique()),
        first_date=str(stamps.min().date()),
        last_date=str(stamps.max().date()),
        content_hash=digest,
    )


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
) -> str:
    """Log the pyfunc scorer with a signature and input example; return its model URI."""
    from clvkit.io import pyfunc_entry_path
    from clvkit.io.scorer_model import ARTIFACT_KEY

    signature = infer_signature(input_example, output_example)
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
) -> Registration:
    """Register ``model_uri``; alias ``champion`` only if it beats the champion on the same data."""
    client = MlflowClient()
    version = mlflow.register_model(model_uri, name, tags={FINGERPRINT_TAG: data_fingerprint}).version
    client.set_model_version_tag(name, version, PRIMARY_METRIC_TAG, f"{metric}={value:.6g}")
    alias, reason = _decide_alias(client, name, metric, value, data_fingerprint, higher_is_better)
    client.set_registered_model_alias(name, alias, version)
    client.set_model_version_tag(name, version, "alias_reason", reason)
    logger.info("registered %s version %s as %s: %s", name, version, alias, reason)
    return Registration(name=name, version=str(version), alias=alias, reason=reason)


def _decide_alias(
    client: MlflowClient, name: str, metric: str, value: float, data_fingerprint: str, higher_is_better: bool
) -> tuple[str, str]:
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return CHAMPION, "first version: no champion yet"
    champion_fp = champion.tags.get(FINGERPRINT_TAG)
    if champion_fp != data_fingerprint:
        return CHALLENGER, (
            f"champion v{champion.version} was evaluated on other data ({champion_fp}); "
            "not comparable, so not promoted"
        )
    champion_value = client.get_run(champion.run_id).data.metrics.get(metric) if champion.run_id else None
    if champion_value is None:
        return CHAMPION, f"champion v{champion.version} has no {metric}; replaced"
    better = value > champion_value if higher_is_better else value < champion_value
    verdict = "beats" if better else "does not beat"
    alias = CHAMPION if better else CHALLENGER
    return alias, f"{metric} {value:.4f} {verdict} champion v{champion.version} ({champion_value:.4f})"
