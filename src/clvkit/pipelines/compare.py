"""``clvkit compare``: the runs of an experiment side by side, sorted by the primary metric."""

from __future__ import annotations

import mlflow
import pandas as pd

from clvkit.evaluation import registry
from clvkit.exceptions import UserInputError
from clvkit.io import tracking
from clvkit.io.metric_names import internal_name

#: Metrics shown side by side (when the runs have them; names as in code, whatever prefix they were logged with).
KEY_METRICS = (
    "clv_gini_norm", "baseline_hist_gini_norm", "churn_pr_auc", "clv_spearman", "clv_top20_capture",
    "baseline_palive_churn_pr_auc", "baseline_recency_churn_pr_auc", "churn_roc_auc", "clv_decile_mape",
    "purchases_mae", "spend_mae",
)
KEY_TAGS = ("clv_source", "alias", "registered_version")
#: Characters of a run id shown in the table format.
SHORT_RUN_ID_CHARS = 8
#: Width the table format fits by default (a narrow terminal).
DEFAULT_TABLE_WIDTH = 100
FORMATS = ("table", "csv", "json")
#: Longest run name or tag shown in the table format (longer ones lose their middle).
MAX_TABLE_TEXT_CHARS = 30
#: Shorter column headers of the table format (csv and json keep the full names).
HEADER_ABBREVIATIONS = (
    ("baseline_", "bl_"), ("_gini_norm", "_gini"), ("_decile_mape", "_dmape"), ("_top20_capture", "_top20"),
    ("_pr_auc", "_prauc"), ("_roc_auc", "_rocauc"), ("_spearman", "_spear"), ("churn_", "ch_"),
    ("purchases_", "purch_"), ("recency_", "rec_"), ("palive_", "pa_"), ("registered_version", "version"),
)


def compare_runs(experiment: str, primary_metric: str = "clv_gini_norm",
                 higher_is_better: bool | None = None, metrics: list[str] | None = None,
                 params: list[str] | None = None) -> pd.DataFrame:
    """One row per run: id, name, start time, key tags, the chosen metrics and params; best first.

    ``metrics`` default to :data:`KEY_METRICS` (those the runs have); metric names are the
    names used in code (``holdout/…``-style logged names are mapped back). ``params`` are
    config keys such as ``clv.horizon_months``. ``higher_is_better`` defaults to the metric's
    direction in the registry (higher for a name the registry does not know, e.g. a backtest
    ``*_mean``).
    """
    if higher_is_better is None:
        spec = registry.find_metric(primary_metric)
        higher_is_better = spec.higher_is_better if spec is not None else True
    tracking.configure_tracking()
    if mlflow.get_experiment_by_name(experiment) is None:
        names = [e.name for e in mlflow.search_experiments()]
        raise UserInputError(f"no experiment named {experiment!r}; experiments here: {names}")
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string="tags.kind != 'backtest-cutoff'")
    if runs.empty:
        return pd.DataFrame()
    logged = {c: internal_name(c[len("metrics."):]) for c in runs.columns if c.startswith("metrics.")}
    by_internal: dict[str, str] = {}
    for column, name in logged.items():
        by_internal.setdefault(name, column)
    metrics = [internal_name(m) for m in metrics] if metrics else None
    wanted = [primary_metric, *(metrics if metrics else KEY_METRICS)]
    unknown = [m for m in (metrics or []) if m not in by_internal]
    if unknown:
        raise UserInputError(
            f"--metrics {unknown} are not metrics of experiment {experiment!r}; it has: "
            f"{', '.join(sorted(by_internal)[:40])}{' ...' if len(by_internal) > 40 else ''}"
        )
    columns = {"run_id": "run_id", "tags.mlflow.runName": "run", "start_time": "started"}
    columns |= {by_internal[m]: m for m in wanted if m in by_internal}
    columns |= {f"params.{p}": p for p in params or []}
    columns |= {f"tags.{t}": t for t in KEY_TAGS}
    missing_params = [p for p in params or [] if f"params.{p}" not in runs.columns]
    if missing_params:
        known = sorted(c[len("params."):] for c in runs.columns if c.startswith("params."))
        raise UserInputError(f"--params {missing_params} are not params of these runs; they have: "
                             f"{', '.join(known[:40])}{' ...' if len(known) > 40 else ''}")
    present = {k: v for k, v in columns.items() if k in runs.columns}
    table = runs[list(present)].rename(columns=present)
    table = table.loc[:, ~table.columns.duplicated()]
    if primary_metric in table:
        table = table.sort_values(primary_metric, ascending=not higher_is_better, na_position="last")
    return table.reset_index(drop=True)


def format_runs(table: pd.DataFrame, fmt: str = "table", width: int = DEFAULT_TABLE_WIDTH) -> tuple[str, list[str]]:
    """The runs as text in ``fmt`` and, for ``table``, the columns left out to fit ``width``."""
    if fmt == "csv":
        return table.to_csv(index=False), []
    if fmt == "json":
        return table.to_json(orient="records", date_format="iso", indent=1), []
    if fmt != "table":
        raise UserInputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    shown = table.copy()
    if "run_id" in shown:
        shown["run_id"] = shown["run_id"].str[:SHORT_RUN_ID_CHARS]
    if "started" in shown:
        shown["started"] = pd.to_datetime(shown["started"]).dt.strftime("%m-%d %H:%M")
    for column in ("run", "clv_source", "alias"):
        if column in shown:
            shown[column] = shown[column].astype(str).map(_middle_ellipsis)
    shown = shown.rename(columns=_short_header)
    dropped: list[str] = []
    text = _text(shown)
    while _width(text) > width and shown.shape[1] > 2:
        dropped.insert(0, str(shown.columns[-1]))
        shown = shown.iloc[:, :-1]
        text = _text(shown)
    return text, dropped


def _middle_ellipsis(text: str, limit: int = MAX_TABLE_TEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2):]


def _short_header(name: str) -> str:
    for long, short in HEADER_ABBREVIATIONS:
        name = name.replace(long, short)
    return name


def _text(table: pd.DataFrame) -> str:
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)
