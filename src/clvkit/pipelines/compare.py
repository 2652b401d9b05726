"""``clvkit compare``: the runs of an experiment side by side, sorted by the primary metric."""

from __future__ import annotations

import mlflow
import pandas as pd

from clvkit.exceptions import UserInputError
from clvkit.io import tracking

#: Metrics shown side by side (when the runs have them).
KEY_METRICS = (
    "clv_gini_norm", "clv_spearman", "clv_decile_mape", "clv_top20_capture", "baseline_hist_gini_norm",
    "churn_pr_auc", "baseline_palive_churn_pr_auc", "churn_roc_auc", "purchases_mae", "spend_mae",
)
KEY_TAGS = ("clv_source", "alias", "registered_version")


def compare_runs(experiment: str, primary_metric: str = "clv_gini_norm", higher_is_better: bool = True) -> pd.DataFrame:
    """One row per run: name, start time, key tags and metrics; best first."""
    tracking.configure_tracking()
    if mlflow.get_experiment_by_name(experiment) is None:
        names = [e.name for e in mlflow.search_experiments()]
        raise UserInputError(f"no experiment named {experiment!r}; experiments here: {names}")
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string="tags.kind != 'backtest-cutoff'")
    if runs.empty:
        return pd.DataFrame()
    columns = {"run_id": "run_id", "tags.mlflow.runName": "run", "start_time": "started"}
    columns |= {f"tags.{t}": t for t in KEY_TAGS}
    columns |= {f"metrics.{m}": m for m in (primary_metric, *KEY_METRICS)}
    present = {k: v for k, v in columns.items() if k in runs.columns}
    table = runs[list(present)].rename(columns=present)
    table = table.loc[:, ~table.columns.duplicated()]
    if primary_metric in table:
        table = table.sort_values(primary_metric, ascending=not higher_is_better, na_position="last")
    return table.reset_index(drop=True)
