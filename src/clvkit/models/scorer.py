"""The combined scorer's logic (pure): one row per customer in, eight scores out.

Outputs (schemas.SCORER_OUTPUT_COLUMNS):

* ``p_alive`` — BG/NBD P(alive | x, t_x, T) (Fader, Hardie & Lee 2005a, eq. 13);
* ``expected_purchases`` — BG/NBD E[X(t) | x, t_x, T] over the CLV horizon (eq. 10);
* ``expected_order_value`` — Gamma-Gamma E[Z | p, q, v, x, z̄] (Fader, Hardie & Lee 2005b, eq. 5);
* ``clv`` — discounted expected gross margin over the horizon (BTYD, or the ML value model
  when the training run chose it);
* ``churn_probability`` — calibrated XGBoost P(no purchase within the churn window);
* ``value_at_risk`` — churn_probability × clv;
* ``rfm_segment`` — from the feature table; ``value_tier`` — A/B/C by CLV thresholds learned
  on the training population (so a single customer scores the same alone or in a batch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DAYS_PER_MONTH, DAYS_PER_TIME_UNIT, MONTHS_PER_YEAR
from clvkit.exceptions import FeatureMismatchError
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.churn import ChurnClassifier
from clvkit.models.clv import discounted_clv
from clvkit.models.gamma_gamma import GammaGammaModel
from clvkit.models.value_regressor import ValueRegressor
from clvkit.schemas import MARGIN_SHARE

#: Extra model-derived features given to the churn and value models.
P_ALIVE_FEATURE = "btyd_p_alive"
PURCHASES_WINDOW_FEATURE = "btyd_expected_purchases_window"
ORDER_VALUE_FEATURE = "btyd_expected_order_value"
CLV_SOURCES = ("btyd", "ml", "hybrid")
TIER_LABELS = ("A", "B", "C")


@dataclass(frozen=True)
class ScorerSettings:
    """Everything besides fitted models that the scores depend on."""

    time_unit: str
    horizon_months: int
    discount_rate_annual: float
    margin: float
    churn_window_days: int
    value_window_days: int
    cutoff: str
    clv_source: str
    tier_thresholds: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary, for JSON."""
        return asdict(self)


def btyd_model_features(
    table: pd.DataFrame, bgnbd: BetaGeoModel, gamma_gamma: GammaGammaModel, window_days: int, time_unit: str
) -> pd.DataFrame:
    """BTYD outputs used as features by the churn and hybrid value models."""
    f, r, t = _btyd_arrays(table)
    window_units = window_days / DAYS_PER_TIME_UNIT[time_unit]
    return pd.DataFrame(
        {
            P_ALIVE_FEATURE: bgnbd.p_alive(f, r, t),
            PURCHASES_WINDOW_FEATURE: bgnbd.expected_purchases(window_units, f, r, t),
            ORDER_VALUE_FEATURE: gamma_gamma.expected_order_value(f, table[schemas.MONETARY_VALUE].to_numpy()),
        },
        index=table.index,
    )


def numeric_features(table: pd.DataFrame) -> pd.DataFrame:
    """The numeric columns of a feature table (text columns such as segments are dropped)."""
    numeric = table.select_dtypes(include=["number", "bool"])
    return numeric.drop(columns=[MARGIN_SHARE], errors="ignore").astype("float64")


def supervised_frame(table: pd.DataFrame, btyd: pd.DataFrame) -> pd.DataFrame:
    """Feature table's numeric columns plus the BTYD-derived features."""
    return pd.concat([numeric_features(table), btyd], axis=1)


def ml_clv_factor(horizon_months: int, discount_rate_annual: float, window_days: int) -> float:
    """Discounted horizon multiplier of a window value, assuming a constant spend rate.

    CLV = margin × value(window) × Σ_{k=1..H} (DAYS_PER_MONTH / window_days) / (1 + m)^k,
    with monthly rate m = (1 + annual)^(1/12) − 1.
    """
    monthly = (1.0 + discount_rate_annual) ** (1.0 / MONTHS_PER_YEAR) - 1.0
    months = np.arange(1, horizon_months + 1)
    return float(np.sum((DAYS_PER_MONTH / window_days) / (1.0 + monthly) ** months))


def assign_tiers(clv: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    """A when clv ≥ thresholds[0], B when ≥ thresholds[1], else C."""
    high, mid = thresholds
    return np.where(clv >= high, TIER_LABELS[0], np.where(clv >= mid, TIER_LABELS[1], TIER_LABELS[2]))


def tier_thresholds(clv: np.ndarray, a_share: float, b_share: float) -> tuple[float, float]:
    """CLV thresholds where the cumulative share of total CLV crosses a_share and b_share."""
    values = np.sort(np.clip(np.asarray(clv, dtype=float), 0.0, None))[::-1]
    total = values.sum()
    if values.size == 0 or total <= 0:
        return (np.inf, np.inf)
    share_before = (np.cumsum(values) - values) / total
    in_a = share_before < a_share
    in_b = share_before < b_share
    high = float(values[in_a].min())
    mid = float(values[in_b].min()) if in_b.any() else high
    return (high, mid)


class ClvScorer:
    """Fitted models + settings → per-customer scores. Holds no training data."""

    def __init__(
        self,
        bgnbd: BetaGeoModel,
        gamma_gamma: GammaGammaModel,
        churn: ChurnClassifier,
        settings: ScorerSettings,
        value_model: ValueRegressor | None = None,
        input_columns: tuple[str, ...] = (),
    ) -> None:
        self.bgnbd = bgnbd
        self.gamma_gamma = gamma_gamma
        self.churn = churn
        self.settings = settings
        self.value_model = value_model
        self.input_columns = input_columns

    def score(self, table: pd.DataFrame) -> pd.DataFrame:
        """Score a customer feature table indexed by customer id; see the module docstring."""
        self._check_columns(table)
        s = self.settings
        f, r, t = _btyd_arrays(table)
        horizon_units = s.horizon_months * DAYS_PER_MONTH / DAYS_PER_TIME_UNIT[s.time_unit]
        margin = customer_margin(table, s.margin)
        btyd = btyd_model_features(table, self.bgnbd, self.gamma_gamma, s.churn_window_days, s.time_unit)
        eov = btyd[ORDER_VALUE_FEATURE].to_numpy()
        features = supervised_frame(table, btyd)
        clv = self._clv(features, eov, f, r, t, margin)
        churn = self.churn.predict_proba(features[list(self.churn.feature_names_in_)])
        out = pd.DataFrame(
            {
                schemas.P_ALIVE: btyd[P_ALIVE_FEATURE].to_numpy(),
                schemas.EXPECTED_PURCHASES: self.bgnbd.expected_purchases(horizon_units, f, r, t),
                schemas.EXPECTED_ORDER_VALUE: eov,
                schemas.CLV: clv,
                schemas.CHURN_PROBABILITY: churn,
                schemas.VALUE_AT_RISK: churn * clv,
                schemas.RFM_SEGMENT: table[schemas.RFM_SEGMENT].astype(str).to_numpy(),
                schemas.VALUE_TIER: assign_tiers(clv, s.tier_thresholds),
            },
            index=table.index,
        )
        return out

    def _clv(self, features: pd.DataFrame, eov: np.ndarray, f: np.ndarray, r: np.ndarray,
             t: np.ndarray, margin: np.ndarray | float) -> np.ndarray:
        s = self.settings
        if s.clv_source == "btyd" or self.value_model is None:
            return discounted_clv(
                self.bgnbd, eov, f, r, t, time_unit=s.time_unit, horizon_months=s.horizon_months,
                discount_rate_annual=s.discount_rate_annual, margin=margin,
            )
        window_value = self.value_model.predict(features[list(self.value_model.feature_names_in_)])
        factor = ml_clv_factor(s.horizon_months, s.discount_rate_annual, s.value_window_days)
        return np.asarray(margin * window_value * factor, dtype=float)

    def _check_columns(self, table: pd.DataFrame) -> None:
        missing = [c for c in self.input_columns if c not in table.columns]
        if missing:
            raise FeatureMismatchError(
                f"the customer table lacks {len(missing)} column(s) the scorer was trained with: "
                f"{missing[:10]}{' ...' if len(missing) > 10 else ''}; build it with the same "
                "FeatureBuilder settings (clvkit predict does this from transactions)"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state; boosters travel separately as xgboost JSON (see ``boosters``)."""
        return {
            "settings": self.settings.to_dict(),
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": self.gamma_gamma.to_dict(),
            "churn": self.churn.to_dict(),
            "value_model": self.value_model.to_dict() if self.value_model is not None else None,
            "input_columns": list(self.input_columns),
        }

    def boosters(self) -> dict[str, str]:
        """XGBoost models as JSON text, by name."""
        out = {"churn": self.churn.booster_json()}
        if self.value_model is not None:
            out["value_model"] = self.value_model.booster_json()
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any], boosters: dict[str, str]) -> ClvScorer:
        """Rebuild from :meth:`to_dict` and :meth:`boosters`."""
        settings = dict(state["settings"])
        settings["tier_thresholds"] = tuple(settings["tier_thresholds"])
        value_state = state.get("value_model")
        return cls(
            bgnbd=BetaGeoModel.from_dict(state["bgnbd"]),
            gamma_gamma=GammaGammaModel.from_dict(state["gamma_gamma"]),
            churn=ChurnClassifier.from_dict(state["churn"], boosters["churn"]),
            settings=ScorerSettings(**settings),
            value_model=ValueRegressor.from_dict(value_state, boosters["value_model"]) if value_state else None,
            input_columns=tuple(state.get("input_columns", ())),
        )


def _btyd_arrays(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        table[schemas.FREQUENCY].to_numpy(dtype=float),
        table[schemas.RECENCY].to_numpy(dtype=float),
        table[schemas.T].to_numpy(dtype=float),
    )


def customer_margin(table: pd.DataFrame, default: float) -> np.ndarray | float:
    """Per-customer gross-margin share (``margin_share``, missing ones = ``default``), else ``default``."""
    if MARGIN_SHARE not in table.columns:
        return default
    share = table[MARGIN_SHARE].to_numpy(dtype=float)
    return np.clip(np.where(np.isfinite(share), share, default), 0.0, 1.0)
