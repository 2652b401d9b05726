"""evaluation.primary_metric is checked against the metric registry when the config loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clvkit.cli.main import app
from clvkit.config.loading import config_from_dict
from clvkit.exceptions import ConfigError


def test_unknown_primary_metric_fails_config_validate(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("evaluation:\n  primary_metric: clv_gini\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2
    assert "primary_metric 'clv_gini' is not a clvkit metric; choose one of: purchases_mae" in result.output
    ok = CliRunner().invoke(app, ["config", "validate", str(path), "--set", "evaluation.primary_metric=clv_ml_spearman"])
    assert ok.exit_code == 0, ok.output


def test_direction_follows_the_metric_unless_contradicted() -> None:
    assert config_from_dict({}).evaluation.primary_metric_higher_is_better is True
    lower = config_from_dict({"evaluation": {"primary_metric": "churn_brier"}}).evaluation
    assert lower.primary_metric_higher_is_better is False
    explicit = config_from_dict({"evaluation": {"primary_metric": "churn_brier", "primary_metric_higher_is_better": False}})
    assert explicit.evaluation.primary_metric_higher_is_better is False
    with pytest.raises(ConfigError, match=r"primary_metric_higher_is_better=True contradicts 'churn_brier', which is better lower"):
        config_from_dict({"evaluation": {"primary_metric": "churn_brier", "primary_metric_higher_is_better": True}})
    with pytest.raises(ConfigError, match="is a signed error and cannot rank models"):
        config_from_dict({"evaluation": {"primary_metric": "clv_aggregate_error_pct"}})
