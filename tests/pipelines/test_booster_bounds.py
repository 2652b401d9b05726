"""The recipe's boosters are bounded by ``models.value.max_train_rows`` / ``churn.max_train_rows``."""

from __future__ import annotations

from pathlib import Path

import pytest

from clvkit import constants
from clvkit.config import load_config
from clvkit.exceptions import ConfigError
from clvkit.pipelines.fitting import _churn_model, _value_model

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_boosters_get_the_configured_sample_size():
    default = load_config(str(ROOT / "configs/cdnow.yaml"))
    assert _value_model(default).max_train_rows == constants.DEFAULT_BOOSTER_MAX_TRAIN_ROWS
    assert _churn_model(default).max_train_rows == constants.DEFAULT_BOOSTER_MAX_TRAIN_ROWS
    unbounded = load_config(str(ROOT / "configs/cdnow.yaml"),
                            ["models.value.max_train_rows=null", "churn.max_train_rows=5000"])
    assert _value_model(unbounded).max_train_rows is None
    assert _churn_model(unbounded).max_train_rows == 5000


def test_max_train_rows_below_the_minimum_is_refused():
    with pytest.raises(ConfigError, match=r"churn\.max_train_rows"):
        load_config(str(ROOT / "configs/cdnow.yaml"), ["churn.max_train_rows=1"])
