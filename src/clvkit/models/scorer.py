"""The combined scorer's logic (pure): one row per customer in, the scores out.

Outputs (schemas.SCORER_OUTPUT_COLUMNS; money is gross margin in the data's currency, horizon
``horizon_months``):

* ``p_alive`` — purchase-model P(alive | x, t_x, T) (BG/NBD: Fader, Hardie & Lee 2005a, eq. 13);
* ``expected_purchases`` — E[X(t) | x, t_x, T] over the CLV horizon (BG/NBD eq. 10);
* ``expected_order_value`` — Gamma-Gamma E[Z | p, q, v, x, z̄] (Fader, Hardie & Lee 2005b, eq. 5);
* ``clv`` — discounted expected gross margin over the horizon; ``clv_source`` names the model
  that produced it (``btyd``: exactly margin × E[order value] × Σ_k ΔE[X(t_k)] / (1 + i)^k);
* ``clv_p10`` / ``clv_p90`` — quantiles (``interval_levels``) of the discounted value over the
  horizon (:mod:`clvkit.models.intervals`); for a non-BTYD clv the BTYD interval scaled by
  clv / BTYD clv (same relative spread around the served mean);
* ``churn_probability`` — P(no purchase within the churn window) (classifier or closed form);
* ``churn_loss_value`` — P(loss) × value if retained (:mod:`clvkit.models.customer_value`);
* ``current_value`` / ``current_value_trailing`` — gross margin earned, lifetime / trailing window;
* ``value_quadrant`` — current × future value high/low (thresholds learnt at training);
* ``value_tier`` — A/B/C by CLV thresholds learnt on the training population (so a single
  customer scores the same alone or in a batch); ``rfm_segment`` — from the feature table.

Count-only runs (no amounts, no ``clv.value_per_purchase``) omit ``schemas.CLV_FAMILY_COLUMNS``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import (
    DAYS_PER_MONTH,
    DAYS_PER_TIME_UNIT,
    DEFAULT_CLV_INTERVAL_DRAWS,
    DEFAULT_CLV_INTERVAL_LEVELS,
    DEFAULT_CURRENT_VALUE_WINDOW_DAYS,
    DEFAULT_RANDOM_SEED,
    MONTHS_PER_YEAR,
)
from clvkit.exceptions import FeatureMismatchError
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.blend import (
    BTYD_WINDOW_VALUE,
    HISTORICAL_WINDOW_VALUE,
    ValueBlend,
    historical_window_value,
    horizon_ratio,
    tenure_normalised_features,
    window_components,
)
from clvkit.models.churn import ChurnClassifier
from clvkit.models.clv import discounted_clv
from clvkit.models.customer_value import (
    DEFAULT_QUADRANT_NAME_TUPLE,
    assign_quadrants,
    churn_loss_value,
    current_values,
)
from clvkit.models.gamma_gamma import GammaGammaModel
from clvkit.models.intervals import clv_intervals, interval_simulator
from clvkit.models.purchase import purchase_model_from_dict
from clvkit.models.value_regressor import ValueRegressor
from clvkit.schemas import MARGIN_SHARE

#: Extra model-derived features given to the churn and value models.
P_ALIVE_FEATURE = "btyd_p_alive"
PURCHASES_WINDOW_FEATURE = "btyd_expected_purchases_window"
ORDER_VALUE_FEATURE = "btyd_expected_order_value"
CLV_SOURCES = ("btyd", "btyd_all", "ml", "blend", "historical", "hybrid")
#: Where the served churn probability comes from.
CHURN_SOURCES = ("classifier", "closed_form")
#: Output columns that are money; absent when a count-only run has no value per purchase.
MONEY_COLUMNS = schemas.CLV_FAMILY_COLUMNS
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
    churn_source: str = "classifier"
    purchase_model: str = "bgnbd"
    value_per_purchase: float | None = None
    clv_available: bool = True
    # --- customer-value outputs (helper "value") ---
    quadrant_thresholds: tuple[float, float] = (float("inf"), float("inf"))  # current, future (clv)
    quadrant_names: tuple[str, str, str, str] = DEFAULT_QUADRANT_NAME_TUPLE  # high_high, high_low, low_high, low_low
    interval_levels: tuple[float, float] = DEFAULT_CLV_INTERVAL_LEVELS
    interval_draws: int = DEFAULT_CLV_INTERVAL_DRAWS
    interval_seed: int = DEFAULT_RANDOM_SEED
    current_value_window_days: int = DEFAULT_CURRENT_VALUE_WINDOW_DAYS

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary, for JSON."""
        return asdict(self)


def btyd_model_features(
    table: pd.DataFrame, bgnbd: BetaGeoModel, gamma_gamma: GammaGammaModel, window_days: int, time_unit: str
) -> pd.DataFrame:
    """BTYD outputs used as features by the churn and hybrid value models."""
    f, r, t = _btyd_arrays(table)
    window_units = window_days / DAYS_PER_TIME_UNIT[time_unit]
    (purchases,) = expected_purchases_at(bgnbd, (window_units,), f, r, t)
    return pd.DataFrame(
        {
            P_ALIVE_FEATURE: bgnbd.p_alive(f, r, t),
            PURCHASES_WINDOW_FEATURE: purchases,
            ORDER_VALUE_FEATURE: gamma_gamma.expected_order_value(f, table[schemas.MONETARY_VALUE].to_numpy()),
        },
        index=table.index,
    )


def expected_purchases_at(purchase_model: Any, units: Sequence[float], frequency: np.ndarray, recency: np.ndarray,
                          T: np.ndarray) -> list[np.ndarray]:
    """E[X(u) | x, t_x, T] for each ``u`` in ``units`` (BG/NBD eq. 10), as ``expected_purchases(u, ...)``.

    P(alive | x, t_x, T) × E[X(u) | alive, x, T], the second factor evaluated once per distinct
    (x, T) pair for all ``u`` at once (``alive_expectation_pairs``, no pandas grouping per call).
    """
    codes, conditional = purchase_model.alive_expectation_pairs(np.asarray(units, dtype=float), frequency, T)
    alive = purchase_model.p_alive(frequency, recency, T)
    return [alive * conditional[codes, j] for j in range(len(units))]


def closed_form_churn(purchase_model: Any, window_units: float, frequency: np.ndarray, recency: np.ndarray,
                      T: np.ndarray) -> np.ndarray:
    """P(no purchase in (T, T + window]) from the purchase model (its ``p_no_purchase``).

    For a BG/NBD model without that method: ``1 - P(alive) + P(alive) · ((α + T) / (α + T + t))^(r + x)``
    (Fader, Hardie & Lee 2005a: alive customers buy at a gamma-mixed Poisson rate).
    """
    if hasattr(purchase_model, "p_no_purchase"):
        p = purchase_model.p_no_purchase(window_units, frequency, recency, T)
    else:
        params = purchase_model.params_
        alive = purchase_model.p_alive(frequency, recency, T)
        alpha, r = params["alpha"], params["r"]
        log_none = (r + frequency) * (np.log(alpha + T) - np.log(alpha + T + window_units))
        p = 1.0 - alive + alive * np.exp(log_none)
    return np.clip(np.nan_to_num(np.asarray(p, dtype=float), nan=1.0), 0.0, 1.0)


def churn_probability(churn: ChurnClassifier, features: pd.DataFrame) -> np.ndarray:
    """The classifier's P(churn) per row (1-D), whatever the shape of its ``predict_proba``."""
    p = np.asarray(churn.predict_proba(features[list(churn.feature_names_in_)]), dtype=float)
    return p[:, 1] if p.ndim == 2 else p


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
    """CLV thresholds where the cumulative share of total CLV crosses a_share and b_share.

    Non-finite CLVs are left out (they carry no share); with no positive CLV left every
    customer is tier C (thresholds ``inf``). When the total would overflow, shares are
    computed on CLV / max(CLV).
    """
    values = np.asarray(clv, dtype=float)
    values = np.sort(np.clip(values[np.isfinite(values)], 0.0, None))[::-1]
    if values.size == 0 or values[0] <= 0:
        return (np.inf, np.inf)
    with np.errstate(over="ignore"):
        overflows = not np.isfinite(values.sum())
    scaled = values / values[0] if overflows else values
    share_before = (np.cumsum(scaled) - scaled) / scaled.sum()
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
        churn: ChurnClassifier | None,
        settings: ScorerSettings,
        value_model: ValueRegressor | None = None,
        input_columns: tuple[str, ...] = (),
        value_blend: ValueBlend | None = None,
    ) -> None:
        self.value_blend = value_blend
        self.bgnbd = bgnbd
        self.gamma_gamma = gamma_gamma
        self.churn = churn
        self.settings = settings
        self.value_model = value_model
        self.input_columns = input_columns
        self._simulator: tuple[tuple[Any, ...], Any] | None = None  # (settings key, the interval's draws and streams)
        self._simulator_lock = threading.Lock()

    def score(self, table: pd.DataFrame, *, intervals: bool = True) -> pd.DataFrame:
        """Score a customer feature table indexed by customer id; see the module docstring.

        ``intervals=False`` skips the Monte Carlo interval (``clv_p10``/``clv_p90`` absent), for
        internal uses such as learning thresholds. The numeric columns become one float matrix
        (:func:`numeric_features`) once per call; the BTYD features are computed once and shared.
        """
        self._check_columns(table)
        s = self.settings
        numeric = numeric_features(table)
        f, r, t = _btyd_arrays(numeric)
        horizon_units = s.horizon_months * DAYS_PER_MONTH / DAYS_PER_TIME_UNIT[s.time_unit]
        margin = customer_margin(table, s.margin)
        btyd = btyd_model_features(numeric, self.bgnbd, self.gamma_gamma, s.churn_window_days, s.time_unit)
        eov = btyd[ORDER_VALUE_FEATURE].to_numpy()
        # the numeric features + BTYD features frame, only for the models that read it
        features = pd.concat([numeric, btyd], axis=1) if self._reads_features() else None
        clv = self._clv(features, eov, f, r, t, margin, numeric, btyd)
        churn = self._churn(features, f, r, t)
        (purchases,) = expected_purchases_at(self.bgnbd, (horizon_units,), f, r, t)
        out = {
            schemas.P_ALIVE: btyd[P_ALIVE_FEATURE].to_numpy(),
            schemas.EXPECTED_PURCHASES: purchases,
            schemas.EXPECTED_ORDER_VALUE: eov,
            schemas.CLV: clv,
        }
        return self._value_outputs(out, table, numeric, churn, margin, intervals)

    def _reads_features(self) -> bool:
        """Whether the churn classifier or a stand-alone ML value model scores this call (they read
        the supervised feature frame; the blend, BTYD and closed-form paths do not)."""
        classifier = self.churn is not None and self.settings.churn_source != "closed_form"
        ml_clv = self.value_blend is None and self.value_model is not None and self.settings.clv_source != "btyd"
        return classifier or ml_clv

    def clv_source_label(self) -> str:
        """Which model produced ``clv`` (the ``clv_source`` column)."""
        blend = self.value_blend
        if blend is not None:
            scaled = blend.source == "btyd" and float(getattr(blend, "calibration_", 1.0)) != 1.0
            return "btyd_scaled" if scaled else str(blend.source)
        return self.settings.clv_source if self.value_model is not None else "btyd"

    def _value_outputs(self, out: dict[str, Any], table: pd.DataFrame, numeric: pd.DataFrame, churn: np.ndarray,
                       margin: np.ndarray | float, intervals: bool) -> pd.DataFrame:
        """Add the value columns (interval, churn-loss value, current value, quadrant, tier, segment) to
        ``out`` (column name -> values) and build the scores frame once."""
        s = self.settings
        clv = np.clip(np.nan_to_num(np.asarray(out[schemas.CLV], dtype=float), nan=0.0), 0.0, None)
        source = self.clv_source_label()
        current = current_values(numeric, margin, time_unit=s.time_unit, window_days=s.current_value_window_days,
                                 value_per_purchase=s.value_per_purchase)
        if intervals and s.clv_available:
            low, high = self._interval(numeric, clv, out[schemas.EXPECTED_ORDER_VALUE], margin, source)
            out[schemas.CLV_P10], out[schemas.CLV_P90] = low, high
        out[schemas.CLV_SOURCE] = source
        out[schemas.CHURN_PROBABILITY] = churn
        out[schemas.CHURN_LOSS_VALUE] = churn_loss_value(clv, churn, out[schemas.P_ALIVE])
        if current is not None:
            out[schemas.CURRENT_VALUE], out[schemas.CURRENT_VALUE_TRAILING] = current
            out[schemas.VALUE_QUADRANT] = assign_quadrants(current[0], clv, s.quadrant_thresholds, s.quadrant_names)
        out[schemas.VALUE_TIER] = assign_tiers(clv, s.tier_thresholds)
        out[schemas.RFM_SEGMENT] = table[schemas.RFM_SEGMENT].astype(str).to_numpy()
        if not s.clv_available:
            out = {k: v for k, v in out.items() if k not in MONEY_COLUMNS}
        frame = pd.DataFrame(out, index=table.index)
        return frame.astype({schemas.CLV_SOURCE: "str"}) if schemas.CLV_SOURCE in frame else frame

    def _interval(self, table: pd.DataFrame, clv: np.ndarray, eov: np.ndarray, margin: np.ndarray | float,
                  source: str) -> tuple[np.ndarray, np.ndarray]:
        """clv_p10 / clv_p90: BTYD predictive quantiles, scaled by clv / BTYD clv when clv is not BTYD."""
        s = self.settings
        f, r, t = _btyd_arrays(table)
        spend_model = self.gamma_gamma if s.value_per_purchase is None else None
        bounds = clv_intervals(
            self.bgnbd, f, r, t, time_unit=s.time_unit, horizon_months=s.horizon_months,
            discount_rate_annual=s.discount_rate_annual, margin=margin, spend_model=spend_model,
            monetary_value=table[schemas.MONETARY_VALUE].to_numpy(dtype=float), order_value=eov,
            levels=s.interval_levels, n_draws=s.interval_draws, random_state=s.interval_seed,
            simulator=self._interval_simulator(spend_model),
        )
        if source != "btyd":
            btyd_clv = discounted_clv(self.bgnbd, eov, f, r, t, time_unit=s.time_unit,
                                      horizon_months=s.horizon_months, discount_rate_annual=s.discount_rate_annual,
                                      margin=margin)
            ratio = np.where(btyd_clv > 0, clv / np.where(btyd_clv > 0, btyd_clv, 1.0), 1.0)
            bounds = bounds * ratio[:, None]
            flat = btyd_clv <= 0
            bounds[flat] = clv[flat, None]
        return bounds[:, 0], bounds[:, 1]

    def _interval_simulator(self, spend_model: Any | None) -> Any:
        """The interval's parameter draws and random streams: built on first use, then reused (a
        served scorer answers every request with the same ones; the values do not change)."""
        s = self.settings
        key = (id(self.bgnbd), id(spend_model), s.time_unit, s.horizon_months, s.discount_rate_annual,
               s.interval_draws, s.interval_seed)
        with self._simulator_lock:
            if self._simulator is None or self._simulator[0] != key:  # built for other models or settings
                self._simulator = (key, interval_simulator(
                    self.bgnbd, time_unit=s.time_unit, horizon_months=s.horizon_months,
                    discount_rate_annual=s.discount_rate_annual, spend_model=spend_model, has_monetary_value=True,
                    has_order_value=True, n_draws=s.interval_draws, random_state=s.interval_seed,
                ))
            return self._simulator[1]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the lock and the simulator cache (rebuilt on first use)."""
        state = {k: v for k, v in self.__dict__.items() if k != "_simulator_lock"}
        state["_simulator"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._simulator_lock = threading.Lock()

    @property
    def purchase_model(self) -> Any:
        """The fitted purchase model (BG/NBD, MBG/NBD or Pareto/NBD; attribute ``bgnbd`` for old states)."""
        return self.bgnbd

    def _churn(self, features: pd.DataFrame, f: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
        s = self.settings
        if s.churn_source == "closed_form" or self.churn is None:
            window_units = s.churn_window_days / DAYS_PER_TIME_UNIT[s.time_unit]
            return closed_form_churn(self.bgnbd, window_units, f, r, t)
        return churn_probability(self.churn, features)

    def value_components(self, table: pd.DataFrame, btyd: pd.DataFrame | None = None,
                         window_days: float | None = None) -> pd.DataFrame:
        """Window-value components (btyd, historical, btyd_all, ml) over ``window_days`` (default: the label window)."""
        s = self.settings
        window_days = float(window_days or s.value_window_days)
        if btyd is None:
            btyd = btyd_model_features(table, self.bgnbd, self.gamma_gamma, s.churn_window_days, s.time_unit)
        comps = window_components(table, self.bgnbd, self.gamma_gamma, btyd[ORDER_VALUE_FEATURE].to_numpy(),
                                  window_days, s.time_unit)
        if self.value_model is not None:
            # the window values under their feature names, beside the BTYD features (same index)
            named = pd.DataFrame({BTYD_WINDOW_VALUE: comps["btyd"].to_numpy(),
                                  HISTORICAL_WINDOW_VALUE: comps["historical"].to_numpy(),
                                  **{c: btyd[c].to_numpy() for c in btyd.columns}}, index=table.index)
            inputs = tenure_normalised_features(table, named, s.time_unit)
            comps["ml"] = self.value_model.predict(inputs[list(self.value_model.feature_names_in_)])
        return comps

    def expected_revenue(self, table: pd.DataFrame, window_days: int) -> np.ndarray:
        """The served CLV's forecast of revenue over the next ``window_days`` (undiscounted, before margin).

        Same candidate, weights and calibration as :meth:`score`'s ``clv``; what the recipe
        evaluation compares with realised spend.
        """
        s = self.settings
        f, r, t = _btyd_arrays(table)
        btyd = btyd_model_features(table, self.bgnbd, self.gamma_gamma, s.churn_window_days, s.time_unit)
        blend = self.value_blend
        units = window_days / DAYS_PER_TIME_UNIT[s.time_unit]
        if blend is None:
            return self.bgnbd.expected_purchases(units, f, r, t) * btyd[ORDER_VALUE_FEATURE].to_numpy()
        if blend.source == "historical":
            return blend.calibration_ * historical_window_value(table, window_days, s.time_unit)
        if blend.source == "btyd":
            return blend.calibration_ * self.bgnbd.expected_purchases(units, f, r, t) * btyd[ORDER_VALUE_FEATURE].to_numpy()
        window_value = blend.predict(self.value_components(table, btyd))
        ratio = horizon_ratio(self.bgnbd.expected_purchases(units, f, r, t), self._window_purchases(f, r, t))
        return window_value * ratio

    def _window_purchases(self, f: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
        s = self.settings
        return expected_purchases_at(self.bgnbd, (s.value_window_days / DAYS_PER_TIME_UNIT[s.time_unit],), f, r, t)[0]

    def _clv(self, features: pd.DataFrame | None, eov: np.ndarray, f: np.ndarray, r: np.ndarray,
             t: np.ndarray, margin: np.ndarray | float, table: pd.DataFrame | None = None,
             btyd: pd.DataFrame | None = None) -> np.ndarray:
        s = self.settings
        blend = self.value_blend
        if blend is not None and table is not None:
            return self._blend_clv(blend, table, eov, f, r, t, margin, btyd)
        if s.clv_source == "btyd" or self.value_model is None:
            return discounted_clv(
                self.bgnbd, eov, f, r, t, time_unit=s.time_unit, horizon_months=s.horizon_months,
                discount_rate_annual=s.discount_rate_annual, margin=margin,
            )
        window_value = self.value_model.predict(features[list(self.value_model.feature_names_in_)])
        factor = ml_clv_factor(s.horizon_months, s.discount_rate_annual, s.value_window_days)
        return np.asarray(margin * window_value * factor, dtype=float)

    def _blend_clv(self, blend: ValueBlend, table: pd.DataFrame, eov: np.ndarray, f: np.ndarray, r: np.ndarray,
                   t: np.ndarray, margin: np.ndarray | float, btyd: pd.DataFrame | None = None) -> np.ndarray:
        """Discounted gross-margin CLV of the chosen candidate: window value × discounted horizon factor.

        btyd: c · Σ_k margin · E[Z] · ΔE[X(t_k)] / (1+i)^k; historical: c · rate · the discounted
        horizon at a constant rate; ml/blend: window value × Σ_k ΔE[X(t_k)]/(1+i)^k / E[X(w)] (the
        purchase model's attrition carries the window value to the horizon).
        """
        s = self.settings
        if blend.source == "historical":
            factor = ml_clv_factor(s.horizon_months, s.discount_rate_annual, s.value_window_days)
            value = blend.calibration_ * historical_window_value(table, s.value_window_days, s.time_unit)
            return np.asarray(margin * value * factor, dtype=float)
        discounted_purchases = discounted_clv(
            self.bgnbd, 1.0, f, r, t, time_unit=s.time_unit, horizon_months=s.horizon_months,
            discount_rate_annual=s.discount_rate_annual, margin=1.0,
        )
        if blend.source == "btyd":
            return np.asarray(margin * blend.calibration_ * eov * discounted_purchases, dtype=float)
        window_value = blend.predict(self.value_components(table, btyd))
        ratio = horizon_ratio(discounted_purchases, self._window_purchases(f, r, t))
        return np.asarray(margin * window_value * ratio, dtype=float)

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
            "churn": self.churn.to_dict() if self.churn is not None else None,
            "value_model": self.value_model.to_dict() if self.value_model is not None else None,
            "input_columns": list(self.input_columns),
            "value_blend": self.value_blend.to_dict() if self.value_blend is not None else None,
        }

    def boosters(self) -> dict[str, str]:
        """XGBoost models as JSON text, by name."""
        out = {"churn": self.churn.booster_json()} if self.churn is not None else {}
        if self.value_model is not None:
            out["value_model"] = self.value_model.booster_json()
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any], boosters: dict[str, str]) -> ClvScorer:
        """Rebuild from :meth:`to_dict` and :meth:`boosters`."""
        settings = dict(state["settings"])
        settings["tier_thresholds"] = tuple(settings["tier_thresholds"])
        for key in ("quadrant_thresholds", "quadrant_names", "interval_levels"):
            if key in settings:
                settings[key] = tuple(settings[key])
        value_state = state.get("value_model")
        return cls(
            bgnbd=purchase_model_from_dict(state["bgnbd"]),  # BG/NBD, MBG/NBD or Pareto/NBD
            gamma_gamma=GammaGammaModel.from_dict(state["gamma_gamma"]),
            churn=ChurnClassifier.from_dict(state["churn"], boosters["churn"]) if state.get("churn") else None,
            settings=ScorerSettings(**settings),
            value_model=ValueRegressor.from_dict(value_state, boosters["value_model"]) if value_state else None,
            input_columns=tuple(state.get("input_columns", ())),
            value_blend=ValueBlend.from_dict(state["value_blend"]) if state.get("value_blend") else None,
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
