"""Fit every model as of one cut-off (calibration end, or observation end for the refit).

Time design: BTYD models are fitted on the history up to ``as_of``; supervised models
(churn, value) learn from features at an inner cut-off with labels from the window after it,
all inside the history up to ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.config.models import ClvkitConfig
from clvkit.exceptions import UserInputError
from clvkit.features.builder import FeatureBuilder
from clvkit.features.labels import SPEND_WINDOW, churn_labels, future_value
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.churn import ChurnClassifier
from clvkit.models.gamma_gamma import GammaGammaModel
from clvkit.models.scorer import btyd_model_features, numeric_features, supervised_frame
from clvkit.models.value_regressor import ValueRegressor
from clvkit.pipelines.features import customer_table, make_builder

logger = logging.getLogger(__name__)

#: Supervised labels need at least this many days of history before the inner cut-off.
MIN_INNER_HISTORY_DAYS = 28


@dataclass
class StageModels:
    """Everything fitted as of one cut-off."""

    as_of: dt.date
    inner_cutoff: dt.date
    builder: FeatureBuilder
    table: pd.DataFrame
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    churn: ChurnClassifier
    value_ml: ValueRegressor | None
    value_hybrid: ValueRegressor | None
    value_window_days: int
    churn_window_days: int

    def supervised_features(self, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """Numeric features + BTYD outputs of ``table`` (default: the stage's own table)."""
        table = self.table if table is None else table
        return supervised_frame(table, self.btyd_features(table))

    def btyd_features(self, table: pd.DataFrame) -> pd.DataFrame:
        """BTYD-derived features of ``table`` from this stage's BTYD models."""
        unit = self.builder.time_unit
        return btyd_model_features(table, self.bgnbd, self.gamma_gamma, self.churn_window_days, unit)


def value_window_days(first_date: dt.date, calibration_end: dt.date, holdout_days: int) -> int:
    """Label window of the value models: the holdout length, at most half the calibration span."""
    return max(1, min(holdout_days, (calibration_end - first_date).days // 2))


def inner_cutoff(config: ClvkitConfig, first_date: dt.date, as_of: dt.date, window_days: int) -> dt.date:
    """The supervised models' cut-off: configured, or ``as_of`` minus the longest label window."""
    cutoff = config.churn.inner_cutoff if as_of == config.data.calibration_end and config.churn.inner_cutoff else None
    cutoff = cutoff or as_of - dt.timedelta(days=window_days)
    if (cutoff - first_date).days < MIN_INNER_HISTORY_DAYS or cutoff + dt.timedelta(days=window_days) > as_of:
        raise UserInputError(
            f"history too short for supervised training as of {as_of}: the inner cut-off {cutoff} needs "
            f"{MIN_INNER_HISTORY_DAYS}+ days of history after the first purchase ({first_date}) and a "
            f"{window_days}-day label window before {as_of}. Shorten churn.window_days, set "
            "churn.inner_cutoff, or move data.calibration_end later."
        )
    return cutoff


def fit_btyd(table: pd.DataFrame, config: ClvkitConfig) -> tuple[BetaGeoModel, GammaGammaModel]:
    """BG/NBD and Gamma-Gamma fitted on a customer table's BTYD columns."""
    summary = table[list(schemas.BTYD_COLUMNS)]
    bgnbd = BetaGeoModel(penalizer=config.models.bgnbd.penalizer).fit(summary)
    gamma_gamma = GammaGammaModel(penalizer=config.models.gamma_gamma.penalizer).fit(summary)
    return bgnbd, gamma_gamma


def fit_stage(
    transactions: pd.DataFrame, as_of: dt.date, first_date: dt.date, value_window: int, config: ClvkitConfig
) -> StageModels:
    """Fit BTYD on history up to ``as_of`` and supervised models on an inner cut-off."""
    churn_window = config.churn.window_days
    cutoff = inner_cutoff(config, first_date, as_of, max(churn_window, value_window))
    builder = make_builder(config).fit(transactions, as_of=as_of)
    table = customer_table(builder, transactions, as_of)
    bgnbd, gamma_gamma = fit_btyd(table, config)
    logger.info("as of %s: %d customers; BG/NBD %s", as_of, len(table), bgnbd.params_)

    inner_builder = make_builder(config).fit(transactions, as_of=cutoff)
    inner_table = customer_table(inner_builder, transactions, cutoff)
    inner_bg, inner_gg = fit_btyd(inner_table, config)
    btyd_inner = btyd_model_features(inner_table, inner_bg, inner_gg, churn_window, config.data.time_unit)
    x_hybrid = supervised_frame(inner_table, btyd_inner)
    y_churn = churn_labels(transactions, cutoff, churn_window).reindex(x_hybrid.index)
    churn = _churn_model(config).fit(x_hybrid, y_churn.to_numpy())
    logger.info("churn model trained on %d customers at inner cut-off %s (churn rate %.3f)",
                len(x_hybrid), cutoff, float(np.mean(y_churn)))
    value_ml = value_hybrid = None
    if config.models.value.enabled:
        y_value = future_value(transactions, cutoff, value_window)[SPEND_WINDOW]
        y_value = y_value.reindex(x_hybrid.index).fillna(0.0).clip(lower=0.0).to_numpy()
        value_ml = _value_model(config).fit(numeric_features(inner_table), y_value)
        value_hybrid = _value_model(config).fit(x_hybrid, y_value)
    stage = StageModels(
        as_of=as_of, inner_cutoff=cutoff, builder=builder, table=table, bgnbd=bgnbd,
        gamma_gamma=gamma_gamma, churn=churn, value_ml=value_ml, value_hybrid=value_hybrid,
        value_window_days=value_window, churn_window_days=churn_window,
    )
    return stage


def _churn_model(config: ClvkitConfig) -> ChurnClassifier:
    c = config.churn
    return ChurnClassifier(
        n_estimators=c.n_estimators, max_depth=c.max_depth, learning_rate=c.learning_rate,
        early_stopping_rounds=c.early_stopping_rounds, validation_fraction=c.validation_fraction,
        calibration=c.calibration, random_state=config.seed,
    )


def _value_model(config: ClvkitConfig) -> ValueRegressor:
    v = config.models.value
    return ValueRegressor(
        tweedie_variance_power=v.tweedie_variance_power, n_estimators=v.n_estimators,
        max_depth=v.max_depth, learning_rate=v.learning_rate, random_state=config.seed,
    )
