"""The HTML report embeds every image as PNG, shows tables, flags losses, escapes strings."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clvkit.evaluation import plots, report

IMG = re.compile(r'<figure id="(img-[^"]+)"><img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def pngs() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 10.0, 200)
    return {
        "Gain curve": report.figure_to_png(plots.plot_gain_curve(actual, {"ml": actual + rng.random(200)})),
        "Deciles <ml>": report.figure_to_png(plots.plot_deciles(actual, actual * 2)),
    }


@pytest.fixture()
def page(pngs: dict[str, bytes]) -> str:
    metrics = {
        "Value": {
            "ml": {"clv_gini_norm": 0.55, "clv_decile_mape": 20.0},
            "historical": {"clv_gini_norm": 0.60, "clv_decile_mape": 35.0},
            "rfm": {"clv_gini_norm": 0.40},
        },
        "Churn": pd.DataFrame({"xgb": [0.8, 0.12], "1 - p_alive": [0.7, 0.10]}, index=["churn_roc_auc", "churn_brier"]),
    }
    tables = {"Segments <b>": pd.DataFrame({"segment": ["<script>alert(1)</script>", "b"], "clv": [1.5, np.nan]})}
    run_info = {"run_id": "abc123", "note": "a & b", "settings": {"horizon_months": 12}}
    return report.render_html_report("CLV <evaluation>", run_info, metrics, pngs, tables)


def test_figure_to_png_gives_png_bytes():
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    png = report.figure_to_png(fig)
    assert png.startswith(report.PNG_MAGIC)
    with pytest.raises(ValueError, match="fig must be a matplotlib Figure"):
        report.figure_to_png("not a figure")


def test_every_image_is_embedded_as_png(page: str, pngs: dict[str, bytes]):
    found = IMG.findall(page)
    assert [alt for _, alt, _ in found] == ["Gain curve", "Deciles &lt;ml&gt;"]
    assert [fid for fid, _, _ in found] == ["img-gain-curve", "img-deciles-ml"]
    for (_, _, data), original in zip(found, pngs.values(), strict=True):
        decoded = base64.b64decode(data)
        assert decoded.startswith(report.PNG_MAGIC)
        assert decoded == original


def test_page_is_self_contained_and_escaped(page: str):
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>CLV &lt;evaluation&gt;</title>" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Segments &lt;b&gt;" in page
    assert "a &amp; b" in page
    assert "horizon_months" in page
    assert "http://" not in page and "https://" not in page


def test_metrics_side_by_side_with_loss_flags(page: str):
    assert "<th>ml</th><th>historical</th><th>rfm</th>" in page
    value_rows = re.findall(r"<tr( class=\"loses\")?><td>(clv_[a-z_]+)</td>(.*?)</tr>", page)
    flags = {name: (cls, cells) for cls, name, cells in value_rows}
    assert flags["clv_gini_norm"][0]  # historical 0.60 beats ml 0.55
    assert "loses to historical" in flags["clv_gini_norm"][1]
    assert not flags["clv_decile_mape"][0]  # lower is better: 20 < 35
    assert "—" in flags["clv_decile_mape"][1]  # rfm has no decile MAPE
    assert "The model loses to a baseline on: clv_gini_norm, churn_brier" in page


def test_tables_are_rendered(page: str):
    assert page.count('class="dataframe data"') == 1
    assert "1.5" in page


def test_bad_inputs_are_named(pngs: dict[str, bytes]):
    with pytest.raises(ValueError, match=r"images\['broken'\] is not PNG bytes"):
        report.render_html_report("t", {}, {}, {"broken": b"GIF89a"}, {})
    with pytest.raises(ValueError, match=r"tables\['x'\] must be a DataFrame"):
        report.render_html_report("t", {}, {}, pngs, {"x": [1, 2]})
    with pytest.raises(ValueError, match="model_column 'nope' is not a column"):
        report.render_html_report("t", {}, {"m": {"a_mae": 1.0}}, {}, {}, model_column="nope")


def test_output_is_deterministic(pngs: dict[str, bytes]):
    args = ("t", {"a": 1}, {"m": {"x_mae": 1.0}, "b": {"x_mae": 0.5}}, pngs, {})
    assert report.render_html_report(*args) == report.render_html_report(*args)
    assert "x_mae" in report.render_html_report(*args)


def test_value_at_risk_section(pngs: dict[str, bytes]):
    loss = np.array([50.0, 20.0, 10.0, 5.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    scores = pd.DataFrame({
        "rfm_segment": ["Can't lose"] * 2 + ["Lost"] * 8, "value_tier": ["A"] * 5 + ["C"] * 5,
        "value_quadrant": ["Stars", "Fading"] * 5, "current_value": np.arange(10.0), "clv": loss / 2,
        "churn_loss_value": loss,
    })
    tables = {"value_at_risk": plots.value_at_risk_summary(scores), "deciles": pd.DataFrame({"x": [1.0]})}
    page = report.render_html_report("t", {}, {}, pngs, tables)
    section = page[page.index('<section id="value-at-risk">'):page.index('<section id="plots">')]
    assert "<h2>Where the value at risk is</h2>" in section
    assert "(1 customers) hold <strong>50.0%</strong> of the total churn-loss value" in section
    assert "t lose</td>" in section and "Stars" in section
    assert page.count("<h3>value_at_risk</h3>") == 0 and "<h3>deciles</h3>" in page
