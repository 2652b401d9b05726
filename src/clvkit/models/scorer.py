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
    tenure_normalised_columns,
    window_component_arrays,
)
from clvkit.models.churn import ChurnClassifier
from clvkit.models.clv import (
    discounted_clv,
    discounted_month_sums,
    month_grid_units,
    monthly_discount_rate,
    summary_arrays,
)
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
#: The feature-table columns :func:`clvkit.models.customer_value.current_values` may read.
_CURRENT_VALUE_INPUTS = (schemas.CURRENT_VALUE, schemas.CURRENT_VALUE_TRAILING, schemas.MONETARY_VALUE,
                         "n_purchase_days", schemas.FREQUENCY, schemas.T)
CLV_SOURCES = ("btyd", "btyd_all", "ml", "blend", "historical", "hybrid")
#: Where the served churn probability comes from.
CHURN_SOURCES = ("classifier", "closed_form")
#: Output columns that are money; absent when a count-only run has no value per purchase.
MONEY_COLUMNS = schemas.CLV_FAMILY_COLUMNS
TIER_LABELS = ("A", "B", "C")
#: Up to this many rows :func:`float_columns` converts the numeric columns in one ``to_numpy`` call (fixed cost
#: of one call, what a served request of a few rows pays); above it column by column (pandas' interleave of
#: mixed int/float blocks costs ~10x a per-column conversion on a million rows).
FLOAT_MATRIX_MAX_ROWS = 10_000


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
        btyd_feature_arrays(bgnbd.p_alive(f, r, t), purchases, gamma_gamma, f,
                            table[schemas.MONETARY_VALUE].to_numpy()),
        index=table.index,
    )


def btyd_feature_arrays(p_alive: np.ndarray, purchases_window: np.ndarray, gamma_gamma: GammaGammaModel,
                        frequency: np.ndarray, monetary_value: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`btyd_model_features` by name, from P(alive) and E[X(churn window)] already computed."""
    return {
        P_ALIVE_FEATURE: p_alive,
        PURCHASES_WINDOW_FEATURE: purchases_window,
        ORDER_VALUE_FEATURE: gamma_gamma.expected_order_value(frequency, monetary_value),
    }


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


def float_columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The numeric (and bool) columns of a feature table as float64 arrays by name (missing values NaN),
    cut from one float matrix built once: :func:`numeric_features` without a frame per step."""
    numeric = table.select_dtypes(include=["number", "bool"])
    if len(numeric) > FLOAT_MATRIX_MAX_ROWS:  # pandas' mixed-dtype interleave is slower than column by column
        return {name: numeric[name].to_numpy(dtype="float64", na_value=np.nan) for name in numeric.columns}
    matrix = np.asfortranarray(numeric.to_numpy(dtype="float64", na_value=np.nan))
    return dict(zip(numeric.columns, matrix.T, strict=True))


class _PurchasePass:
    """The purchase model evaluated once per scoring call: P(alive | x, t_x, T) and E[X(u) | alive, x, T]
    per distinct (x, T) pair for every horizon ``u`` the call needs and the month ends of the CLV horizon
    (one ``alive_expectation_pairs`` call; the same numbers as separate calls, computed once)."""

    def __init__(self, purchase_model: Any, f: np.ndarray, r: np.ndarray, t: np.ndarray, units: Sequence[float],
                 month_grid: np.ndarray) -> None:
        summary_arrays(f, r, t)  # finite, non-negative (as discounted_clv checks)
        self.units = [float(u) for u in units]
        self.alive = purchase_model.p_alive(f, r, t)
        grid = np.concatenate([np.asarray(self.units, dtype=float), np.asarray(month_grid, dtype=float)])
        self.codes, self.conditional = purchase_model.alive_expectation_pairs(grid, f, t)
        self._discounted: dict[float, np.ndarray] = {}
        self.window_value: np.ndarray | None = None  # the served blend's window value, once per call

    def purchases(self, units: float) -> np.ndarray:
        """E[X(units) | x, t_x, T] (BG/NBD eq. 10), as :func:`expected_purchases_at`."""
        return self.alive * self.conditional[self.codes, self.units.index(float(units))]

    def discounted_purchases(self, discount_rate_annual: float) -> np.ndarray:
        """Σ_k ΔE[X(t_k)] / (1 + i)^k over the month grid: :func:`discounted_clv` at value 1 and margin 1."""
        if discount_rate_annual not in self._discounted:
            cumulative = self.conditional[:, len(self.units):]
            weights = discounted_month_sums(cumulative, monthly_discount_rate(discount_rate_annual))
            self._discounted[discount_rate_annual] = self.alive * weights[self.codes]
        return self._discounted[discount_rate_annual]


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
        (:func:`float_columns`) once per call, the purchase model is evaluated once for every
        horizon the call needs (:class:`_PurchasePass`) and the scores frame is built once.
        """
        return self._score(table, intervals, None)[0]

    def score_with_revenue(self, table: pd.DataFrame, window_days: int, *,
                           intervals: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        """``(score(table, intervals=intervals), expected_revenue(table, window_days))`` in one pass: the same
        numbers, with the purchase model and the value components (the ML model) evaluated once."""
        scores, revenue = self._score(table, intervals, window_days)
        return scores, revenue

    def _score(self, table: pd.DataFrame, intervals: bool, revenue_days: int | None) -> tuple[pd.DataFrame, Any]:
        self._check_columns(table)
        s = self.settings
        cols = float_columns(table)
        f, r, t = _btyd_arrays(cols)
        units = self._units()
        horizon_units = s.horizon_months * DAYS_PER_MONTH / DAYS_PER_TIME_UNIT[s.time_unit]
        revenue_units = () if revenue_days is None else (revenue_days / DAYS_PER_TIME_UNIT[s.time_unit],)
        passes = _PurchasePass(self.bgnbd, f, r, t, (*units, horizon_units, *revenue_units),
                               month_grid_units(s.time_unit, s.horizon_months))
        margin = customer_margin(table, s.margin)
        btyd = btyd_feature_arrays(passes.alive, passes.purchases(units[0]), self.gamma_gamma, f,
                                   cols[schemas.MONETARY_VALUE])
        eov = btyd[ORDER_VALUE_FEATURE]
        # the numeric features + BTYD features frame, only for the models that read it
        features = self._features_frame(cols, btyd, table.index) if self._reads_features() else None
        clv = self._clv(features, eov, passes, margin, cols, btyd)
        churn = self._churn(features, f, r, t)
        out = {
            schemas.P_ALIVE: btyd[P_ALIVE_FEATURE],
            schemas.EXPECTED_PURCHASES: passes.purchases(horizon_units),
            schemas.EXPECTED_ORDER_VALUE: eov,
            schemas.CLV: clv,
        }
        revenue = None if revenue_days is None else self._revenue(cols, passes, btyd, revenue_days)
        return self._value_outputs(out, table, cols, churn, margin, intervals, passes), revenue

    def _units(self) -> tuple[float, float]:
        """The churn window and the value (label) window, in the model's time unit."""
        s = self.settings
        return (s.churn_window_days / DAYS_PER_TIME_UNIT[s.time_unit],
                s.value_window_days / DAYS_PER_TIME_UNIT[s.time_unit])

    def _reads_features(self) -> bool:
        """Whether the churn classifier or a stand-alone ML value model scores this call (they read
        the supervised feature frame; the blend, BTYD and closed-form paths do not)."""
        classifier = self.churn is not None and self.settings.churn_source != "closed_form"
        ml_clv = self.value_blend is None and self.value_model is not None and self.settings.clv_source != "btyd"
        return classifier or ml_clv

    @staticmethod
    def _features_frame(cols: dict[str, np.ndarray], btyd: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
        """:func:`supervised_frame` from the call's float columns: numeric features + BTYD features."""
        numeric = {name: values for name, values in cols.items() if name != MARGIN_SHARE}
        return pd.DataFrame({**numeric, **btyd}, index=index)

    def clv_source_label(self) -> str:
        """Which model produced ``clv`` (the ``clv_source`` column)."""
        blend = self.value_blend
        if blend is not None:
            scaled = blend.source == "btyd" and float(getattr(blend, "calibration_", 1.0)) != 1.0
            return "btyd_scaled" if scaled else str(blend.source)
        return self.settings.clv_source if self.value_model is not None else "btyd"

    def _value_outputs(self, out: dict[str, Any], table: pd.DataFrame, cols: dict[str, np.ndarray],
                       churn: np.ndarray, margin: np.ndarray | float, intervals: bool,
                       passes: _PurchasePass) -> pd.DataFrame:
        """Add the value columns (interval, churn-loss value, current value, quadrant, tier, segment) to
        ``out`` (column name -> values) and build the scores frame once."""
        s = self.settings
        clv = np.clip(np.nan_to_num(np.asarray(out[schemas.CLV], dtype=float), nan=0.0), 0.0, None)
        source = self.clv_source_label()
        inputs = pd.DataFrame({c: cols[c] for c in _CURRENT_VALUE_INPUTS if c in cols}, copy=False)
        current = current_values(inputs, margin, time_unit=s.time_unit, window_days=s.current_value_window_days,
                                 value_per_purchase=s.value_per_purchase)
        if intervals and s.clv_available:
            low, high = self._interval(cols, clv, out[schemas.EXPECTED_ORDER_VALUE], margin, source, passes)
            out[schemas.CLV_P10], out[schemas.CLV_P90] = low, high
        out[schemas.CLV_SOURCE] = np.full(len(clv), source, dtype=object)
        out[schemas.CHURN_PROBABILITY] = churn
        out[schemas.CHURN_LOSS_VALUE] = churn_loss_value(clv, churn, out[schemas.P_ALIVE])
        if current is not None:
            out[schemas.CURRENT_VALUE], out[schemas.CURRENT_VALUE_TRAILING] = current
            out[schemas.VALUE_QUADRANT] = assign_quadrants(current[0], clv, s.quadrant_thresholds, s.quadrant_names)
        out[schemas.VALUE_TIER] = assign_tiers(clv, s.tier_thresholds)
        out[schemas.RFM_SEGMENT] = table[schemas.RFM_SEGMENT].astype(str).array  # text stays text: no round trip
        if not s.clv_available:
            out = {k: v for k, v in out.items() if k not in MONEY_COLUMNS}
        frame = pd.DataFrame(out, index=table.index)
        if schemas.CLV_SOURCE in frame and frame[schemas.CLV_SOURCE].dtype == object:  # pandas without str inference
            frame = frame.astype({schemas.CLV_SOURCE: "str"})
        return frame

    def _interval(self, cols: dict[str, np.ndarray], clv: np.ndarray, eov: np.ndarray, margin: np.ndarray | float,
                  source: str, passes: _PurchasePass) -> tuple[np.ndarray, np.ndarray]:
        """clv_p10 / clv_p90: BTYD predictive quantiles, scaled by clv / BTYD clv when clv is not BTYD."""
        s = self.settings
        f, r, t = _btyd_arrays(cols)
        spend_model = self.gamma_gamma if s.value_per_purchase is None else None
        bounds = clv_intervals(
            self.bgnbd, f, r, t, time_unit=s.time_unit, horizon_months=s.horizon_months,
            discount_rate_annual=s.discount_rate_annual, margin=margin, spend_model=spend_model,
            monetary_value=cols[schemas.MONETARY_VALUE], order_value=eov,
            levels=s.interval_levels, n_draws=s.interval_draws, random_state=s.interval_seed,
            simulator=self._interval_simulator(spend_model),
        )
        if source != "btyd":
            # discounted_clv(purchase model, eov, ..., margin) from the call's purchase pass
            share = np.broadcast_to(np.asarray(margin, dtype=float), eov.shape)
            btyd_clv = share * eov * passes.discounted_purchases(s.discount_rate_annual)
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
        cols = float_columns(table)
        f, r, t = _btyd_arrays(cols)
        if btyd is None:
            btyd = btyd_model_features(table, self.bgnbd, self.gamma_gamma, s.churn_window_days, s.time_unit)
        purchases = self.bgnbd.expected_purchases(window_days / DAYS_PER_TIME_UNIT[s.time_unit], f, r, t)
        named = {c: btyd[c].to_numpy() for c in btyd.columns}
        comps = self._components(cols, purchases, named[ORDER_VALUE_FEATURE], named, window_days, ml=True)
        return pd.DataFrame(comps, index=table.index)

    def _components(self, cols: dict[str, np.ndarray], purchases_window: np.ndarray, eov: np.ndarray,
                    btyd: dict[str, np.ndarray], window_days: float, *, ml: bool) -> dict[str, np.ndarray]:
        """Window-value components by name (``ml`` only when asked for and a value model exists)."""
        s = self.settings
        comps = window_component_arrays(cols, self.gamma_gamma, purchases_window, eov, window_days, s.time_unit)
        if ml and self.value_model is not None:
            # the window values under their feature names, beside the BTYD features
            named = {BTYD_WINDOW_VALUE: comps["btyd"], HISTORICAL_WINDOW_VALUE: comps["historical"], **btyd}
            comps["ml"] = self._predict_window_value(tenure_normalised_columns(cols, s.time_unit, named))
        return comps

    def _predict_window_value(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The value model's prediction from its features by name: one float matrix, columns in the fitted order."""
        model = self.value_model
        names = list(model.feature_names_in_)
        missing = [name for name in names if name not in inputs]
        if missing:
            raise FeatureMismatchError(
                f"the value model needs {len(missing)} feature(s) the customer table does not give: "
                f"{missing[:10]}; build the table with the same FeatureBuilder settings as at training"
            )
        block = np.empty((len(names), len(inputs[names[0]])))
        for row, name in enumerate(names):
            block[row] = inputs[name]
        return model.predict(pd.DataFrame(block.T, columns=names, copy=False))

    def expected_revenue(self, table: pd.DataFrame, window_days: int) -> np.ndarray:
        """The served CLV's forecast of revenue over the next ``window_days`` (undiscounted, before margin).

        Same candidate, weights and calibration as :meth:`score`'s ``clv``; what the recipe
        evaluation compares with realised spend.
        """
        s = self.settings
        cols = float_columns(table)
        f, r, t = _btyd_arrays(cols)
        churn_units, value_units = self._units()
        passes = _PurchasePass(self.bgnbd, f, r, t, (churn_units, value_units,
                                                     window_days / DAYS_PER_TIME_UNIT[s.time_unit]), np.empty(0))
        btyd = btyd_feature_arrays(passes.alive, passes.purchases(churn_units), self.gamma_gamma, f,
                                   cols[schemas.MONETARY_VALUE])
        return self._revenue(cols, passes, btyd, window_days)

    def _revenue(self, cols: dict[str, np.ndarray], passes: _PurchasePass, btyd: dict[str, np.ndarray],
                 window_days: int) -> np.ndarray:
        """:meth:`expected_revenue` from the call's columns, purchase pass and BTYD features."""
        s = self.settings
        units = window_days / DAYS_PER_TIME_UNIT[s.time_unit]
        eov = btyd[ORDER_VALUE_FEATURE]
        blend = self.value_blend
        if blend is None:
            return passes.purchases(units) * eov
        if blend.source == "historical":
            return blend.calibration_ * historical_window_value(cols, window_days, s.time_unit)
        if blend.source == "btyd":
            return blend.calibration_ * passes.purchases(units) * eov
        window_value = self._blend_window_value(blend, cols, passes, eov, btyd)
        return window_value * horizon_ratio(passes.purchases(units), passes.purchases(self._units()[1]))

    def _blend_window_value(self, blend: ValueBlend, cols: dict[str, np.ndarray], passes: _PurchasePass,
                            eov: np.ndarray, btyd: dict[str, np.ndarray]) -> np.ndarray:
        """The blend's calibrated window value (over the label window), computed once per call."""
        if passes.window_value is None:
            window = passes.purchases(self._units()[1])
            components = self._components(cols, window, eov, btyd, self.settings.value_window_days, ml=blend.uses_ml)
            passes.window_value = blend.predict(components)
        return passes.window_value

    def _clv(self, features: pd.DataFrame | None, eov: np.ndarray, passes: _PurchasePass,
             margin: np.ndarray | float, cols: dict[str, np.ndarray], btyd: dict[str, np.ndarray]) -> np.ndarray:
        s = self.settings
        blend = self.value_blend
        if blend is not None:
            return self._blend_clv(blend, cols, eov, passes, margin, btyd)
        if s.clv_source == "btyd" or self.value_model is None:
            f, r, t = _btyd_arrays(cols)
            return discounted_clv(
                self.bgnbd, eov, f, r, t, time_unit=s.time_unit, horizon_months=s.horizon_months,
                discount_rate_annual=s.discount_rate_annual, margin=margin,
            )
        window_value = self.value_model.predict(features[list(self.value_model.feature_names_in_)])
        factor = ml_clv_factor(s.horizon_months, s.discount_rate_annual, s.value_window_days)
        return np.asarray(margin * window_value * factor, dtype=float)

    def _blend_clv(self, blend: ValueBlend, cols: dict[str, np.ndarray], eov: np.ndarray, passes: _PurchasePass,
                   margin: np.ndarray | float, btyd: dict[str, np.ndarray]) -> np.ndarray:
        """Discounted gross-margin CLV of the chosen candidate: window value × discounted horizon factor.

        btyd: c · Σ_k margin · E[Z] · ΔE[X(t_k)] / (1+i)^k; historical: c · rate · the discounted
        horizon at a constant rate; ml/blend: window value × Σ_k ΔE[X(t_k)]/(1+i)^k / E[X(w)] (the
        purchase model's attrition carries the window value to the horizon). The ML component is
        only predicted when it carries weight.
        """
        s = self.settings
        if blend.source == "historical":
            factor = ml_clv_factor(s.horizon_months, s.discount_rate_annual, s.value_window_days)
            value = blend.calibration_ * historical_window_value(cols, s.value_window_days, s.time_unit)
            return np.asarray(margin * value * factor, dtype=float)
        discounted_purchases = passes.discounted_purchases(s.discount_rate_annual)
        if blend.source == "btyd":
            return np.asarray(margin * blend.calibration_ * eov * discounted_purchases, dtype=float)
        ratio = horizon_ratio(discounted_purchases, passes.purchases(self._units()[1]))
        window_value = self._blend_window_value(blend, cols, passes, eov, btyd)
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


def _btyd_arrays(table: pd.DataFrame | dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(table[c], dtype=float) for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))


def customer_margin(table: pd.DataFrame, default: float) -> np.ndarray | float:
    """Per-customer gross-margin share (``margin_share``, missing ones = ``default``), else ``default``."""
    if MARGIN_SHARE not in table.columns:
        return default
    share = table[MARGIN_SHARE].to_numpy(dtype=float)
    return np.clip(np.where(np.isfinite(share), share, default), 0.0, 1.0)
