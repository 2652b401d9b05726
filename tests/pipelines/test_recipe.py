"""The recipe evaluation: choices made without the holdout, and the ML parts harmless where BTYD is the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.config import load_config
from clvkit.data.simulate import SimulationParams, simulate_transactions
from clvkit.evaluation import metrics
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.pipelines.evaluate import evaluate_origin
from tests.pipelines.conftest import ROOT

pytestmark = pytest.mark.slow

ORIGIN = dt.date(2020, 12, 31)
HOLDOUT_END = dt.date(2021, 6, 29)
FIRST = dt.date(2020, 1, 1)


def _config() -> object:
    return load_config(str(ROOT / "configs/simulated.yaml"), ["clv.horizon_months=6"])


def _rounded(value: object) -> object:
    """Floats to 8 significant digits (summation order may differ in the last bits), recursively."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return f"{value:.8g}"  # text, so that NaN equals NaN
    return value


def _choices(result) -> dict:  # type: ignore[no-untyped-def]
    stage = result.stage
    return _rounded({"clv_source": stage.clv_source, "weights": stage.value_blend.weights_,
                     "calibration": stage.value_blend.calibration_, "churn_source": stage.churn_source,
                     "purchase": stage.bgnbd.params_, "inner": stage.inner_metrics, "cutoffs": stage.inner_cutoffs})


def test_changing_holdout_rows_changes_the_figures_not_the_choices() -> None:
    tx = simulate_transactions(1500, seed=3).transactions
    config = _config()
    first = evaluate_origin(tx, ORIGIN, HOLDOUT_END, FIRST, config)
    after = tx[schemas.TIMESTAMP] >= pd.Timestamp(ORIGIN) + pd.Timedelta(days=1)
    rng = np.random.default_rng(0)
    changed = tx.copy()
    changed.loc[after, schemas.AMOUNT] = changed.loc[after, schemas.AMOUNT] * rng.uniform(0.1, 5.0, int(after.sum()))
    changed = changed.drop(changed.index[after.to_numpy()][::3])
    second = evaluate_origin(changed, ORIGIN, HOLDOUT_END, FIRST, config)
    assert _choices(first) == _choices(second)
    assert first.metrics["clv_gini_norm"] != second.metrics["clv_gini_norm"]
    assert first.metrics["clv_holdout_total_actual"] != second.metrics["clv_holdout_total_actual"]
    assert first.metrics["churn_roc_auc"] != second.metrics["churn_roc_auc"]


def test_served_clv_close_to_the_truth_where_btyd_is_the_truth() -> None:
    """Simulated BG/NBD + Gamma-Gamma world: served CLV >= 97 % of the true-parameter predictor's ranking."""
    params = SimulationParams()
    simulation = simulate_transactions(4000, seed=11, params=params)
    tx = simulation.transactions
    result = evaluate_origin(tx, ORIGIN, HOLDOUT_END, FIRST, _config())
    preds = result.predictions
    table = result.stage.table.loc[preds.index]
    f, r, t = (table[c].to_numpy(dtype=float) for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))
    state = result.stage.bgnbd.to_dict()
    state["params"] = {k: getattr(params, k) for k in ("r", "alpha", "a", "b")}
    truth = BetaGeoModel.from_dict(state)
    holdout_units = result.cal.duration_holdout
    z = table[schemas.MONETARY_VALUE].to_numpy(dtype=float)
    order_value = params.p * (params.v + f * z) / (params.p * f + params.q - 1.0)  # Gamma-Gamma eq. 5
    oracle = truth.expected_purchases(holdout_units, f, r, t) * order_value
    actual = preds["actual_spend_holdout"].to_numpy()
    served = preds["pred_served"].to_numpy()
    for name, metric in (("spearman", metrics.spearman), ("gini", metrics.normalized_gini)):
        assert metric(actual, served) >= 0.97 * metric(actual, oracle), name
