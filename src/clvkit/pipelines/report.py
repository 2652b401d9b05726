"""``clvkit report``: one self-contained HTML page per training run, from what MLflow holds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from clvkit.evaluation import registry
from clvkit.evaluation.report import render_html_report
from clvkit.exceptions import UserInputError
from clvkit.io import tracking
from clvkit.io.metric_names import internal_metrics

#: Metric rows of the report, in the metric registry's order.
VALUE_SUFFIXES = registry.group_keys(registry.VALUE)
CHURN_SUFFIXES = registry.group_keys(registry.CHURN)
PURCHASE_METRICS = registry.group_keys(registry.PURCHASES) + registry.group_keys(registry.SPEND)
SERVED_COLUMNS = {"served CLV": "clv", "historical spend (baseline)": "baseline_hist", "RFM score (baseline)": "baseline_rfm"}
CANDIDATE_COLUMNS = {"btyd": "clv_btyd", "ml": "clv_ml", "hybrid": "clv_hybrid"}
CHURN_COLUMNS = {"churn model": "churn", "1 - P(alive) (baseline)": "baseline_palive_churn"}
RUN_INFO_TAGS = ("clv_source", "clv_source_reason", "time_frame", "config_hash", "data_fingerprint",
                 "registered_version", "alias", "refit_on_full_history", "clvkit.version")


def metric_sections(metrics: dict[str, float], clv_source: str) -> dict[str, pd.DataFrame]:
    """Metrics tables: served CLV vs baselines, CLV candidates, churn vs baseline, purchases."""
    candidates = dict(sorted(CANDIDATE_COLUMNS.items(), key=lambda kv: kv[0] != clv_source))
    return {
        "Served CLV vs baselines (realised holdout value)": _section(metrics, SERVED_COLUMNS, VALUE_SUFFIXES, "clv"),
        f"CLV candidates (served: {clv_source})": _section(metrics, candidates, VALUE_SUFFIXES, "clv"),
        "Churn (no purchase within the window after calibration end)": _section(
            metrics, CHURN_COLUMNS, CHURN_SUFFIXES, "churn"),
        "Purchases and spend (BG/NBD, Gamma-Gamma)": pd.DataFrame(
            {"model": [metrics.get(name, float("nan")) for name in PURCHASE_METRICS]},
            index=pd.Index(PURCHASE_METRICS, name="metric")),
    }


def _section(metrics: dict[str, float], columns: dict[str, str], suffixes: tuple[str, ...], row_prefix: str) -> pd.DataFrame:
    data = {label: [metrics.get(f"{prefix}_{s}", float("nan")) for s in suffixes] for label, prefix in columns.items()}
    return pd.DataFrame(data, index=pd.Index([f"{row_prefix}_{s}" for s in suffixes], name="metric"))


def render_run_report(run_id: str) -> str:
    """The HTML report of a logged training run (plots and tables are read back from MLflow)."""
    tracking.configure_tracking()
    try:
        run = mlflow.get_run(run_id)
    except MlflowException:
        raise UserInputError(f"no MLflow run {run_id!r} in {mlflow.get_tracking_uri()}; see clvkit compare") from None
    metrics = internal_metrics(run.data.metrics)  # grouped names (baseline/...) back to code names
    with tempfile.TemporaryDirectory() as tmp:
        images, tables = _artifacts(run_id, Path(tmp))
    if not images:
        raise UserInputError(f"run {run_id} has no plots: it is not a clvkit training run")
    return render_report(run_id, run.info.experiment_id, metrics, run.data.tags, images, tables)


def render_report(run_id: str, experiment_id: str, metrics: dict[str, float], tags: dict[str, str],
                  images: dict[str, bytes], tables: dict[str, pd.DataFrame]) -> str:
    """The HTML report from a run's metrics (code names), tags, PNG plots and tables, however obtained
    (``clvkit train`` passes what it holds in memory: nothing is read back from MLflow)."""
    info = {"run id": run_id, "experiment id": experiment_id,
            **{tag: tags[tag] for tag in RUN_INFO_TAGS if tag in tags}}
    title = f"clvkit evaluation: {tags.get('mlflow.runName', run_id)}"
    return render_html_report(title, info, metric_sections(metrics, tags.get("clv_source", "btyd")), images, tables)


def _artifacts(run_id: str, folder: Path) -> tuple[dict[str, bytes], dict[str, pd.DataFrame]]:
    images: dict[str, bytes] = {}
    tables: dict[str, pd.DataFrame] = {}
    for sub in ("plots", "tables"):
        try:
            local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=sub, dst_path=str(folder)))
        except (MlflowException, OSError):
            continue
        for path in sorted(local.glob("*.png")):
            images[path.stem] = path.read_bytes()
        for path in sorted(local.glob("*.parquet")):  # runs since tables are Parquet
            tables[path.stem] = pd.read_parquet(path)
        for path in sorted(local.glob("*.csv")):  # older runs
            tables[path.stem] = pd.read_csv(path, index_col=0)
    return images, tables
