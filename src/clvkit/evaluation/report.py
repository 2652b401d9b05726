"""One self-contained HTML evaluation report (pure: returns a string, writes nothing).

Images travel inside the page as base64 ``data:`` URIs, so the file can be logged as a
single artifact and opened offline. Metrics tables put the model next to its baselines and
flag each metric on which the model is worse than a baseline (direction from
:mod:`clvkit.evaluation.registry`). Every user-supplied string is escaped.
The output depends on the inputs only (no timestamps), so equal inputs give equal pages.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
from collections.abc import Mapping
from io import BytesIO
from typing import Any, Final

import pandas as pd
from matplotlib.figure import Figure

from clvkit.constants import FIGURE_DPI
from clvkit.evaluation import metrics as m

logger = logging.getLogger(__name__)

#: The eight bytes every PNG file starts with.
PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
DEFAULT_METRICS_SECTION: Final = "Metrics"
MISSING_VALUE: Final = "—"
LOSES_CLASS: Final = "loses"
LOSES_MARK: Final = "⚠"
#: Significant digits of the numbers in metric and data tables.
SIGNIFICANT_DIGITS: Final = 4
#: Table rendered as the "where the value at risk is" section (see plots.value_at_risk_summary).
VALUE_AT_RISK_TABLE: Final = "value_at_risk"

CSS: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr.loses td { background: #fde8e8; }
td.flag { color: #b00020; font-weight: 600; text-align: left; }
p.summary.loses { color: #b00020; font-weight: 600; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85rem; color: #555; }
"""

MetricsTable = pd.DataFrame | Mapping[str, Mapping[str, float]]


def figure_to_png(fig: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """PNG bytes of a matplotlib figure (rendered by the Agg backend, no pyplot)."""
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render_html_report(
    title: str,
    run_info: Mapping[str, Any],
    metrics: MetricsTable | Mapping[str, MetricsTable],
    images: Mapping[str, bytes],
    tables: Mapping[str, pd.DataFrame],
    model_column: str | None = None,
) -> str:
    """The evaluation report as one self-contained HTML page.

    Parameters
    ----------
    title : str
        Page title and heading.
    run_info : mapping
        Run facts (ids, dates, settings), shown as a key/value table.
    metrics : DataFrame, mapping of model -> {metric: value}, or mapping of section -> either
        Metrics with one row per metric and one column per model; the model is
        ``model_column`` (default: the first column), the other columns are baselines. A
        metric row is flagged where the model is worse than any baseline.
    images : mapping of name -> PNG bytes
        Plots (see :func:`figure_to_png`); each becomes an ``<img>`` whose ``alt`` is the
        name, inside a ``<figure>`` with id ``img-<slug of name>``.
    tables : mapping of name -> DataFrame
        Further tables (calibration, deciles, segments...). A table named ``value_at_risk``
        (:func:`clvkit.evaluation.plots.value_at_risk_summary`) gets its own section, "Where the
        value at risk is", led by the share of the churn-loss value held by the top customers.
    model_column : str, optional
        Name of the model column in every metrics table.
    """
    if not isinstance(title, str):
        raise ValueError(f"title must be a string, got {type(title).__name__}")
    sections = _metric_sections(metrics)
    _check_images(images)
    _check_tables(tables)
    metric_html, losses = _metrics_html(sections, model_column)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        _run_info_html(run_info),
        '<section id="metrics"><h2>Metrics</h2>',
        _losses_summary(losses, len(sections)),
        metric_html,
        "</section>",
        _value_at_risk_html(tables.get(VALUE_AT_RISK_TABLE)),
        _images_html(images),
        _tables_html({k: v for k, v in tables.items() if k != VALUE_AT_RISK_TABLE}),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


# --- inputs -----------------------------------------------------------------------


def _is_metrics_table(value: Any) -> bool:
    """A DataFrame, or a mapping of model name -> mapping of metric name -> number."""
    if isinstance(value, pd.DataFrame):
        return True
    return isinstance(value, Mapping) and all(
        isinstance(row, Mapping) and all(not isinstance(v, Mapping) for v in row.values())
        for row in value.values()
    )


def _metric_sections(metrics: Any) -> dict[str, pd.DataFrame]:
    """Section title -> metrics frame (rows metrics, columns models)."""
    if isinstance(metrics, pd.DataFrame):
        return {DEFAULT_METRICS_SECTION: metrics}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a DataFrame or a mapping, got {type(metrics).__name__}")
    if not metrics:
        return {}
    if _is_metrics_table(metrics):
        return {DEFAULT_METRICS_SECTION: _metrics_frame(metrics, "metrics")}
    return {str(name): _metrics_frame(table, f"metrics[{name!r}]") for name, table in metrics.items()}


def _metrics_frame(table: MetricsTable, name: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if not _is_metrics_table(table):
        raise ValueError(f"{name} must be a DataFrame or a mapping of model name -> {{metric: value}}")
    rows: list[str] = []
    for by_metric in table.values():
        rows.extend(metric for metric in by_metric if metric not in rows)
    return pd.DataFrame(
        {model: [_float(by_metric.get(metric)) for metric in rows] for model, by_metric in table.items()},
        index=pd.Index(rows, name="metric"),
    )


def _check_images(images: Mapping[str, bytes]) -> None:
    if not isinstance(images, Mapping):
        raise ValueError(f"images must be a mapping of name -> PNG bytes, got {type(images).__name__}")
    for name, data in images.items():
        if not isinstance(data, bytes | bytearray) or not bytes(data).startswith(PNG_MAGIC):
            raise ValueError(f"images[{name!r}] is not PNG bytes (render figures with figure_to_png)")


def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    if not isinstance(tables, Mapping):
        raise ValueError(f"tables must be a mapping of name -> DataFrame, got {type(tables).__name__}")
    for name, table in tables.items():
        if not isinstance(table, pd.DataFrame):
            raise ValueError(f"tables[{name!r}] must be a DataFrame, got {type(table).__name__}")


# --- rendering --------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _number(value: Any) -> str:
    number = _float(value)
    if math.isnan(number):
        return MISSING_VALUE
    return f"{number:.{SIGNIFICANT_DIGITS}g}"


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "image"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def _run_info_html(run_info: Mapping[str, Any]) -> str:
    if not isinstance(run_info, Mapping):
        raise ValueError(f"run_info must be a mapping, got {type(run_info).__name__}")
    rows = "".join(
        f"<tr><th>{_esc(key)}</th><td>{_esc(_info_value(value))}</td></tr>" for key, value in run_info.items()
    )
    return f'<section id="run-info"><h2>Run</h2><table class="kv">{rows}</table></section>'


def _info_value(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _losses(frame: pd.DataFrame, model: str) -> dict[str, list[str]]:
    """Metric -> baselines that beat the model on it (metrics without a known direction skipped)."""
    out: dict[str, list[str]] = {}
    for metric in frame.index:
        try:
            direction = m.metric_direction(str(metric))
        except ValueError:
            continue
        winners = [
            str(baseline) for baseline in frame.columns
            if baseline != model
            and m.loses_to_baseline(_float(frame.at[metric, model]), _float(frame.at[metric, baseline]), direction)
        ]
        if winners:
            out[str(metric)] = winners
    return out


def _metrics_html(sections: Mapping[str, pd.DataFrame], model_column: str | None) -> tuple[str, list[str]]:
    parts: list[str] = []
    all_losses: list[str] = []
    for section, frame in sections.items():
        if frame.shape[1] == 0:
            raise ValueError(f"metrics section {section!r} has no model column")
        model = frame.columns[0] if model_column is None else model_column
        if model not in frame.columns:
            raise ValueError(f"model_column {model!r} is not a column of metrics section {section!r}: {list(frame.columns)}")
        losses = _losses(frame, model)
        all_losses.extend(losses)
        header = "".join(f"<th>{_esc(col)}</th>" for col in ["metric", *frame.columns, "flag"])
        body = []
        for metric in frame.index:
            winners = losses.get(str(metric))
            cells = "".join(f"<td>{_number(frame.at[metric, col])}</td>" for col in frame.columns)
            flag = f"{LOSES_MARK} loses to {_esc(', '.join(winners))}" if winners else ""
            row_class = f' class="{LOSES_CLASS}"' if winners else ""
            body.append(f'<tr{row_class}><td>{_esc(metric)}</td>{cells}<td class="flag">{flag}</td></tr>')
        parts.append(
            f"<h3>{_esc(section)}</h3><table class=\"metrics\"><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    return "\n".join(parts), all_losses


def _losses_summary(losses: list[str], n_sections: int) -> str:
    if n_sections == 0:
        return "<p>No metrics.</p>"
    if not losses:
        return '<p class="summary">The model is at least as good as every baseline on every metric.</p>'
    return (
        f'<p class="summary {LOSES_CLASS}">{LOSES_MARK} The model loses to a baseline on: '
        f"{_esc(', '.join(dict.fromkeys(losses)))}</p>"
    )


def _images_html(images: Mapping[str, bytes]) -> str:
    if not images:
        return ""
    taken: set[str] = set()
    figures = []
    for name, data in images.items():
        slug = _slug(str(name), taken)
        encoded = base64.b64encode(bytes(data)).decode("ascii")
        figures.append(
            f'<figure id="img-{slug}"><img alt="{_esc(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_esc(name)}</figcaption></figure>"
        )
    return '<section id="plots"><h2>Plots</h2>' + "\n".join(figures) + "</section>"


def _value_at_risk_html(table: pd.DataFrame | None) -> str:
    """Section "Where the value at risk is": the top customers' share, then the table by group."""
    if table is None or table.empty:
        return ""
    lead = ""
    if {"grouping", "group", "customers", "churn_loss_share"} <= set(table.columns):
        top = table[table["grouping"] == "top customers"]
        if not top.empty:
            row = top.iloc[0]
            lead = (f"<p>The {_esc(row['group'])} ({_number(row['customers'])} customers) hold "
                    f"<strong>{_float(row['churn_loss_share']):.1%}</strong> of the total churn-loss value "
                    "(P(loss) x value if retained, over the CLV horizon).</p>")
    rendered = table.to_html(
        escape=True, index=False, na_rep=MISSING_VALUE, border=0, classes="data",
        float_format=lambda v: f"{v:.{SIGNIFICANT_DIGITS}g}",
    )
    return ('<section id="value-at-risk"><h2>Where the value at risk is</h2>' + lead
            + "<p>By value quadrant, RFM segment and value tier, largest churn-loss value first.</p>"
            + rendered + "</section>")


def _tables_html(tables: Mapping[str, pd.DataFrame]) -> str:
    if not tables:
        return ""
    parts = []
    for name, table in tables.items():
        show_index = not isinstance(table.index, pd.RangeIndex)
        rendered = table.to_html(
            escape=True, index=show_index, na_rep=MISSING_VALUE, border=0, classes="data",
            float_format=lambda v: f"{v:.{SIGNIFICANT_DIGITS}g}",
        )
        parts.append(f"<h3>{_esc(name)}</h3>{rendered}")
    return '<section id="tables"><h2>Tables</h2>' + "\n".join(parts) + "</section>"
