"""Value candidates of the training recipe and their non-negative blend (pure).

Every candidate predicts a customer's revenue over a label window of ``window_days`` days
after the cut-off; the scorer extrapolates a window value to any horizon with the purchase
model's own attrition (see :func:`horizon_ratio`).

Components, per customer (all in revenue over the window):

* ``btyd`` — E[X(w) | x, t_x, T] × E[Z | x, z̄] (purchase model eq. 10 × Gamma-Gamma eq. 5);
* ``historical`` — the spend rate carried forward: total_spend / max(tenure, 1 day) × w;
* ``ml`` — a supervised regressor trained on examples stacked from several inner cut-offs,
  on features normalised by tenure (:func:`tenure_normalised_features`);
* ``btyd_all`` — E[X(w) | x, t_x, T] × E[Z | every purchase]: the Gamma-Gamma posterior mean
  conditioned on all x + 1 purchase periods, the first included (FHL 2005b eq. 5 with
  x → x + 1 and x·m_x → total spend; see :func:`all_purchases_order_value`). The published
  convention drops the first purchase (it often differs, as in CDNOW); where it does not, it
  is the customer's only spend observation at x = 0 and throwing it away loses ranking power.
  Chosen, like every component, on the inner validation window.

The blend is a weighted geometric mean ``ŷ = c · Π_j (component_j + ε_j)^{w_j}`` with
``w ≥ 0``, ``Σ w = 1`` chosen on an inner validation window, and ``c`` the total-calibration
factor Σ actual / Σ ŷ on that window (see :class:`ValueBlend`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: Window-value components, in the order of the blend weights.
COMPONENTS: Final = ("btyd", "historical", "ml", "btyd_all")
BTYD_WINDOW_VALUE: Final = "btyd_window_value"
HISTORICAL_WINDOW_VALUE: Final = "historical_window_value"
#: Columns of the feature table whose values grow with tenure; replaced by rates for the ML model.
TENURE_DEPENDENT: Final = (
    schemas.FREQUENCY, schemas.RECENCY, schemas.T, "tenure_days", "n_purchase_days", "n_lines", "total_spend",
)
#: Smallest tenure (days) used as a denominator.
MIN_TENURE_DAYS: Final = 1.0
#: Spacing of the blend's weight grid.
BLEND_GRID_STEP: Final = 0.1
#: ε of a component in the geometric blend, as a share of its mean (keeps zeros finite).
OFFSET_SHARE: Final = 0.01
TINY: Final = 1e-9
#: A grid point must beat the best so far by more than this to replace it (earlier = simpler wins ties).
SCORE_TOLERANCE: Final = 1e-9
#: Above this many customers the weights are searched on a seeded sample of this size (the
#: standard error of a normalized Gini on 20,000 customers is about 0.005) with a coarse-to-fine
#: grid, so the search costs the same at any data size; at or below it, every grid point is scored.
BLEND_MAX_SEARCH_CUSTOMERS: Final = 20_000
#: Spacing of the coarse grid of the coarse-to-fine search (then every fine point next to the best).
BLEND_COARSE_STEP: Final = 0.2


#: Per-customer float columns by name: a DataFrame's columns (read on demand) or 1-D float arrays.
Columns = Mapping[str, NDArray[np.float64]]


class FrameColumns(Mapping[str, FloatArray]):
    """A feature table's columns as float arrays, read on demand (``name in cols`` sees every column,
    iteration only the numeric ones, in table order)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._table = table

    def __getitem__(self, name: str) -> FloatArray:
        return self._table[name].to_numpy(dtype=float)

    def __contains__(self, name: object) -> bool:
        return name in self._table.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.select_dtypes(include=["number", "bool"]).columns)

    def __len__(self) -> int:
        return len(self._table.select_dtypes(include=["number", "bool"]).columns)


def as_columns(table: pd.DataFrame | Columns) -> Columns:
    """``table`` as :data:`Columns` (a DataFrame is wrapped, its columns read when asked for)."""
    return FrameColumns(table) if isinstance(table, pd.DataFrame) else table


def historical_window_value(table: pd.DataFrame | Columns, window_days: float, time_unit: str) -> FloatArray:
    """Spend rate carried forward: ``total_spend / max(tenure_days, 1) * window_days`` (0 without spend)."""
    cols = as_columns(table)
    tenure = _tenure_days(cols, time_unit)
    if "total_spend" not in cols:
        return np.zeros(len(tenure))
    spend = np.clip(np.asarray(cols["total_spend"], dtype=float), 0.0, None)
    return spend / tenure * float(window_days)


def all_purchases_order_value(table: pd.DataFrame | Columns, gamma_gamma: Any) -> FloatArray | None:
    """E[Z | p, q, v, every purchase]: Gamma-Gamma eq. 5 (FHL 2005b) on all x + 1 purchase periods.

    ``p (v + S) / (p (x + 1) + q - 1)`` with ``S`` the customer's total spend (returns netted,
    at least 0): the published posterior mean with the first purchase counted as one more
    transaction. ``None`` when the table has no ``total_spend`` (count-only logs).
    """
    cols = as_columns(table)
    if "total_spend" not in cols:
        return None
    n = np.asarray(cols[schemas.FREQUENCY], dtype=float) + 1.0
    total = np.clip(np.asarray(cols["total_spend"], dtype=float), 0.0, None)
    return gamma_gamma.expected_order_value(n, total / n)


def window_components(table: pd.DataFrame, purchase: Any, gamma_gamma: Any, order_value: ArrayLike,
                      window_days: float, time_unit: str) -> pd.DataFrame:
    """Window values of the formula components: ``btyd``, ``historical`` and ``btyd_all`` (when spend exists).

    ``order_value`` is the Gamma-Gamma E[Z | x, m_x] of each customer (repeat purchases only).
    """
    cols = FrameColumns(table)
    f, r, t = (cols[c] for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))
    purchases = purchase.expected_purchases(float(window_days) / DAYS_PER_TIME_UNIT[time_unit], f, r, t)
    return pd.DataFrame(window_component_arrays(cols, gamma_gamma, purchases, order_value, window_days, time_unit),
                        index=table.index)


def window_component_arrays(table: pd.DataFrame | Columns, gamma_gamma: Any, purchases: ArrayLike,
                            order_value: ArrayLike, window_days: float, time_unit: str) -> dict[str, FloatArray]:
    """:func:`window_components` as arrays by name, from the purchase model's E[X(w) | x, t_x, T] (``purchases``)."""
    cols = as_columns(table)
    purchases = np.asarray(purchases, dtype=float)
    components = {
        "btyd": purchases * np.asarray(order_value, dtype=float),
        "historical": historical_window_value(cols, window_days, time_unit),
    }
    every = all_purchases_order_value(cols, gamma_gamma)
    if every is not None:
        components["btyd_all"] = purchases * every
    return components


def tenure_normalised_features(table: pd.DataFrame, components: pd.DataFrame, time_unit: str) -> pd.DataFrame:
    """Numeric features with every tenure-dependent count turned into a per-day rate or share.

    Rates: purchase days per day of tenure, spend per day of tenure, recency and days since the
    last purchase as shares of tenure; absolute counts and tenure itself are dropped so a model
    trained at short tenures is not extrapolating at longer ones. The window components
    (BTYD and historical window values) are inputs too.
    """
    columns = tenure_normalised_columns(FrameColumns(table), time_unit)
    # each column its own writable array (views of the caller's table are copied), one block each: no
    # consolidating copy of every column (1.3 s on 1M customers x 35 columns)
    owned = {name: v if v.base is None and v.flags.writeable else v.copy() for name, v in columns.items()}
    features = pd.DataFrame(owned, index=table.index, copy=False)
    return pd.concat([features, components], axis=1)


def tenure_normalised_columns(table: pd.DataFrame | Columns, time_unit: str,
                              components: Mapping[str, ArrayLike] | None = None) -> dict[str, FloatArray]:
    """:func:`tenure_normalised_features` as float arrays by name, in the same column order
    (the numeric columns of ``table`` in its order, then the rates, then ``components``)."""
    cols = as_columns(table)
    dropped = {*TENURE_DEPENDENT, schemas.MARGIN_SHARE}
    out = {name: np.asarray(cols[name], dtype=float) for name in cols if name not in dropped}
    tenure = _tenure_days(cols, time_unit)
    days_per_unit = DAYS_PER_TIME_UNIT[time_unit]
    out["purchase_days_per_day"] = (np.asarray(cols[schemas.FREQUENCY], dtype=float) + 1.0) / tenure
    out["recency_share"] = np.asarray(cols[schemas.RECENCY], dtype=float) * days_per_unit / tenure
    if "total_spend" in cols:
        out["spend_per_day"] = np.clip(np.asarray(cols["total_spend"], dtype=float), 0.0, None) / tenure
    if "days_since_last_purchase" in cols:
        out["inactive_share"] = np.asarray(cols["days_since_last_purchase"], dtype=float) / tenure
    for name, values in (components or {}).items():
        out[name] = np.asarray(values, dtype=float)
    return out


def horizon_ratio(purchases_horizon: ArrayLike, purchases_window: ArrayLike) -> FloatArray:
    """Per-customer factor from a window value to a horizon value: E[X(h)] / E[X(w)].

    The purchase model's attrition is in both terms, so a customer likely to have left
    gets a smaller factor than a constant spend rate would give. Where E[X(w)] is 0 the
    factor is 0 (no expected purchases in the window, none over the horizon either).
    """
    horizon = np.asarray(purchases_horizon, dtype=float)
    window = np.asarray(purchases_window, dtype=float)
    ratio = np.divide(horizon, window, out=np.zeros_like(horizon), where=window > 0)
    return np.nan_to_num(np.clip(ratio, 0.0, None), nan=0.0, posinf=0.0)


def simplex_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``n`` non-negative multiples of ``step`` summing to 1."""
    k = int(round(1.0 / step))
    out = []
    for combo in np.ndindex(*(k + 1,) * (n - 1)):
        if sum(combo) <= k:
            out.append(tuple(c / k for c in combo) + ((k - sum(combo)) / k,))
    return out


class ValueBlend:
    """Non-negative geometric blend of window-value components, with a total calibration factor.

    ``ŷ = c · Π_j (component_j + ε_j)^{w_j}``, ``w_j ≥ 0``, ``Σ w_j = 1`` (a weighted geometric
    mean: robust to one component's outliers, scale-free in each component), ``ε_j`` 1 % of the
    component's mean. The weights are the point of a simplex grid that scores best on the window
    the blend is fitted on (normalized Gini by default); ``c`` = Σ actual / Σ ŷ there.

    Parameters
    ----------
    source : {"btyd", "btyd_all", "historical", "ml", "blend"}
        What the blend serves: one component (weight 1) or the blend of all components.
    grid_step : float
        Spacing of the weight grid.
    max_search_customers : int
        Above this many customers the weights are searched on a seeded sample of this size with a
        coarse-to-fine grid (``BLEND_COARSE_STEP``, then the ``grid_step`` points next to the best);
        the calibration uses every customer.
    random_state : int
        Seed of that sample.

    Attributes
    ----------
    weights_ : dict
        Non-negative weight per component (``COMPONENTS``), summing to 1.
    offsets_ : dict
        ε per component.
    calibration_ : float
        Σ actual / Σ prediction on the fitting window (1.0 when undefined).
    """

    def __init__(self, *, source: str = "blend", grid_step: float = BLEND_GRID_STEP,
                 max_search_customers: int = BLEND_MAX_SEARCH_CUSTOMERS, random_state: int = 0) -> None:
        self.source = source
        self.grid_step = grid_step
        self.max_search_customers = max_search_customers
        self.random_state = random_state

    def fit(self, components: pd.DataFrame, actual: ArrayLike,
            score: Callable[[FloatArray, FloatArray], float] | None = None) -> ValueBlend:
        """Weights (grid search for ``source='blend'``, else 1 on the single component), then calibration."""
        y = np.clip(np.asarray(actual, dtype=float), 0.0, None)
        names = [c for c in COMPONENTS if c in components.columns]
        self.offsets_ = {n: float(OFFSET_SHARE * max(components[n].clip(lower=0.0).mean(), 0.0) + TINY)
                         for n in names}
        if self.source == "blend":
            score = score or _gini
            if len(y) > self.max_search_customers:
                rows = np.sort(np.random.default_rng(self.random_state).choice(
                    len(y), self.max_search_customers, replace=False))
                search, y_search = components.iloc[rows], y[rows]
                coarse = self._search(search, y_search, score, names, simplex_grid(len(names), BLEND_COARSE_STEP))
                centre = np.array([coarse[n] for n in names]) if coarse else None
                grid = [w for w in simplex_grid(len(names), self.grid_step)
                        if centre is None or np.max(np.abs(np.array(w) - centre)) <= self.grid_step + TINY]
                best = self._search(search, y_search, score, names, grid)
            else:
                best = self._search(components, y, score, names, simplex_grid(len(names), self.grid_step))
            self.weights_ = best or {n: 1.0 / len(names) for n in names}
        else:
            if self.source not in names:
                raise ValueError(f"source {self.source!r} is not among the components {names}")
            self.weights_ = {n: float(n == self.source) for n in names}
        raw = self._combine(components)
        total = float(raw.sum())
        self.calibration_ = float(y.sum() / total) if total > 0 and y.sum() > 0 else 1.0
        logger.debug("value blend %s: weights %s, calibration %.4f", self.source, self.weights_, self.calibration_)
        return self

    def _search(self, components: pd.DataFrame, y: FloatArray, score: Callable[[FloatArray, FloatArray], float],
                names: list[str], grid: Sequence[tuple[float, ...]]) -> dict[str, float] | None:
        """The grid point scoring best (earlier points win ties within ``SCORE_TOLERANCE``); None if none is finite."""
        best, best_score = None, -np.inf
        for weights in grid:
            self.weights_ = dict(zip(names, weights, strict=True))
            value = score(y, self._combine(components))
            if np.isfinite(value) and value > best_score + SCORE_TOLERANCE:
                best, best_score = dict(self.weights_), value
        return best

    def anchor_total(self, components: pd.DataFrame, total: float) -> ValueBlend:
        """Set the calibration so the blend's total over ``components`` is ``total``.

        The blend ranks customers; its level comes from a model of totals (the purchase
        model's window revenue, calibrated on the inner window), measured on the population
        the scorer is fitted on (no outcomes are read).
        """
        raw = float(self._combine(components).sum())
        if raw > 0 and np.isfinite(total) and total > 0:
            self.calibration_ = float(total / raw)
        return self

    def predict(self, components: pd.DataFrame | Mapping[str, ArrayLike]) -> FloatArray:
        """Calibrated window value per customer (non-negative); ``components`` by name (a frame or arrays)."""
        return np.clip(self.calibration_ * self._combine(components), 0.0, None)

    def _combine(self, components: pd.DataFrame | Mapping[str, ArrayLike]) -> FloatArray:
        active = {n: w for n, w in self.weights_.items() if w > 0}
        if len(active) == 1:
            (name, _), = active.items()
            return np.clip(np.asarray(components[name], dtype=float), 0.0, None)
        rows = len(components) if isinstance(components, pd.DataFrame) else len(next(iter(components.values())))
        log_value = np.zeros(rows)
        for name, weight in active.items():
            values = np.clip(np.asarray(components[name], dtype=float), 0.0, None)
            log_value = log_value + weight * np.log(values + self.offsets_[name])
        return np.exp(log_value)

    @property
    def uses_ml(self) -> bool:
        """Whether the ML component carries weight."""
        return self.weights_.get("ml", 0.0) > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state."""
        return {"source": self.source, "grid_step": self.grid_step, "weights": dict(self.weights_),
                "offsets": dict(self.offsets_), "calibration": self.calibration_}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ValueBlend:
        """Rebuild from :meth:`to_dict`."""
        blend = cls(source=str(state["source"]), grid_step=float(state.get("grid_step", BLEND_GRID_STEP)))
        blend.weights_ = {str(k): float(v) for k, v in state["weights"].items()}
        blend.offsets_ = {str(k): float(v) for k, v in state.get("offsets", {}).items()}
        blend.calibration_ = float(state["calibration"])
        return blend

    def __repr__(self) -> str:
        return f"ValueBlend(source={self.source!r})"


def _gini(actual: FloatArray, predicted: FloatArray) -> float:
    from clvkit.evaluation.metrics import normalized_gini

    return float(normalized_gini(actual, predicted))


def describe_weights(weights: Mapping[str, float], names: Sequence[str] = COMPONENTS) -> str:
    """``btyd 0.41, historical 0.52, ml 0.07`` for logs."""
    return ", ".join(f"{n} {weights.get(n, 0.0):.3g}" for n in names if n in weights)


def _tenure_days(table: pd.DataFrame | Columns, time_unit: str) -> FloatArray:
    """Days from first purchase to the cut-off, inclusive (at least 1)."""
    cols = as_columns(table)
    if "tenure_days" in cols:
        tenure = np.asarray(cols["tenure_days"], dtype=float)
    else:
        tenure = np.asarray(cols[schemas.T], dtype=float) * DAYS_PER_TIME_UNIT[time_unit]
    return np.maximum(tenure + 1.0, MIN_TENURE_DAYS)
