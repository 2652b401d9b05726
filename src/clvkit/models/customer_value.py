"""Customer value in the business's terms (pure): current value, churn-loss value, the value quadrant.

Definitions (the scorer's contract; horizons are the CLV horizon ``clv.horizon_months``):

* ``current_value`` — gross margin earned up to the cut-off (revenue x margin share, or revenue -
  cost), from the feature table; ``current_value_trailing`` — the same over the trailing
  ``features.current_value_window_days``.
* **churn-loss value** — what the business loses if the customer is lost now::

      churn_loss_value = P(loss) x value_if_retained

  ``P(loss)`` is the served ``churn_probability``. ``value_if_retained`` is the future value
  *given that the customer is still alive now*, ``E[CLV | alive] = clv / P(alive)``: a dead
  customer brings nothing, so ``clv = P(alive) E[CLV | alive]`` (exact for BG/NBD, MBG/NBD and
  Pareto/NBD clv; for an ML, blended or historical clv the same identity holds for any unbiased
  forecast of the value, with P(alive) from the scorer's purchase model). ``P(alive)`` is floored
  at ``CHURN_LOSS_MIN_P_RETAINED`` (0.05), so ``value_if_retained <= 20 x clv``. Attrition is
  counted once (in P(loss)), not twice as in the old ``value_at_risk = churn_probability x clv``,
  which ranked customers like clv (Spearman 0.97 on CDNOW).

  Why not ``clv / (1 - churn_probability)`` for an ML clv: ``1 - churn_probability`` is the chance
  of a purchase within the churn window, not of being active; it is small for infrequent active
  buyers and for long-lapsed one-time buyers alike, so their churn-loss value hit the 20 x cap
  (CDNOW, ML clv: 37 % of all churn-loss value sat in "Hibernating", the top 10 % of customers held
  22 % of it; with P(alive): "At risk", "Can't lose" and "Loyal" lead and the top 10 % hold 51 %).
* ``value_quadrant`` — current value high/low x future value (clv) high/low, thresholds learnt on
  the training customers (median, share of value, or absolute amounts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import (
    CHURN_LOSS_MIN_P_RETAINED,
    DAYS_PER_TIME_UNIT,
    DEFAULT_QUADRANT_NAMES,
    DEFAULT_QUADRANT_VALUE_SHARE,
)

__all__ = [
    "QUADRANT_CELLS", "RETENTION_COLUMNS", "assign_quadrants", "churn_loss_value", "current_values",
    "quadrant_names", "quadrant_threshold", "retention_list", "value_if_retained",
]

#: Quadrant cells in the order of ``ScorerSettings.quadrant_names``: <current>_<future>.
QUADRANT_CELLS = ("high_high", "high_low", "low_high", "low_low")
DEFAULT_QUADRANT_NAME_TUPLE = tuple(DEFAULT_QUADRANT_NAMES[c] for c in QUADRANT_CELLS)


def value_if_retained(clv: np.ndarray, p_retained: np.ndarray) -> np.ndarray:
    """``clv / max(p_retained, CHURN_LOSS_MIN_P_RETAINED)``: future value given the customer is alive now."""
    floor = np.clip(np.nan_to_num(np.asarray(p_retained, dtype=float), nan=1.0), CHURN_LOSS_MIN_P_RETAINED, 1.0)
    return np.clip(np.asarray(clv, dtype=float), 0.0, None) / floor


def churn_loss_value(clv: np.ndarray, churn_probability: np.ndarray, p_alive: np.ndarray) -> np.ndarray:
    """P(loss) x value if retained = churn_probability x clv / max(P(alive), 0.05) (module docstring)."""
    churn = np.clip(np.asarray(churn_probability, dtype=float), 0.0, 1.0)
    return churn * value_if_retained(clv, p_alive)


def current_values(table: pd.DataFrame, margin: np.ndarray | float, *, time_unit: str, window_days: int,
                   value_per_purchase: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(current_value, current_value_trailing)`` per customer, or None when they cannot be known.

    From the feature table's columns when present. Otherwise (a minimal BTYD request, or a
    count-only log with ``clv.value_per_purchase``) an estimate, documented in the contract:
    lifetime = margin x (value per purchase, else ``monetary_value``) x purchases
    (``n_purchase_days``, else ``frequency + 1``); trailing = lifetime x min(1, window / tenure).
    """
    if schemas.CURRENT_VALUE in table.columns and schemas.CURRENT_VALUE_TRAILING in table.columns:
        lifetime = table[schemas.CURRENT_VALUE].to_numpy(dtype=float)
        trailing = table[schemas.CURRENT_VALUE_TRAILING].to_numpy(dtype=float)
        return _clean(lifetime), _clean(trailing)
    if value_per_purchase is not None:
        per_purchase = np.full(len(table), float(value_per_purchase))
    elif schemas.MONETARY_VALUE in table.columns and float(table[schemas.MONETARY_VALUE].abs().sum()) > 0:
        per_purchase = table[schemas.MONETARY_VALUE].to_numpy(dtype=float)
    else:
        return None
    if "n_purchase_days" in table.columns:
        purchases = table["n_purchase_days"].to_numpy(dtype=float)
    else:
        purchases = table[schemas.FREQUENCY].to_numpy(dtype=float) + 1.0
    lifetime = _clean(np.asarray(margin, dtype=float) * per_purchase * purchases)
    tenure_days = table[schemas.T].to_numpy(dtype=float) * DAYS_PER_TIME_UNIT[time_unit]
    share = np.clip(window_days / np.maximum(tenure_days, 1.0), 0.0, 1.0)
    return lifetime, lifetime * share


def _clean(values: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0), 0.0, None)


def quadrant_threshold(values: Sequence[float] | np.ndarray, method: str, *,
                       share: float = DEFAULT_QUADRANT_VALUE_SHARE, absolute: float | None = None) -> float:
    """Smallest "high" value, learnt on the training customers.

    ``median``: the median (values above it are high; the smallest positive value when the median is
    0); ``share``: the smallest value among the largest customers that together hold ``share`` of
    the total; ``absolute``: ``absolute``. A value of 0 is never high.
    """
    array = np.asarray(values, dtype=float)
    array = np.clip(array[np.isfinite(array)], 0.0, None)
    if method == "absolute":
        if absolute is None:
            raise ValueError("quadrant method 'absolute' needs a threshold (features.quadrant.*_threshold)")
        return float(absolute)
    positive = array[array > 0]
    if positive.size == 0:
        return float("inf")
    if method == "median":
        median = float(np.median(array))
        return float(np.nextafter(median, np.inf)) if median > 0 else float(positive.min())
    if method == "share":
        ordered = np.sort(positive)[::-1]
        before = (np.cumsum(ordered) - ordered) / ordered.sum()
        return float(ordered[before < share].min())
    raise ValueError(f"unknown quadrant method {method!r}; use median, share or absolute (features.quadrant.method)")


def assign_quadrants(current: np.ndarray, future: np.ndarray, thresholds: tuple[float, float],
                     names: Sequence[str] = DEFAULT_QUADRANT_NAME_TUPLE) -> np.ndarray:
    """Quadrant name per customer: high = value >= threshold and > 0 (``names`` in QUADRANT_CELLS order)."""
    high_now = (np.asarray(current, dtype=float) >= thresholds[0]) & (np.asarray(current) > 0)
    high_future = (np.asarray(future, dtype=float) >= thresholds[1]) & (np.asarray(future) > 0)
    cell = np.where(high_now, np.where(high_future, 0, 1), np.where(high_future, 2, 3))
    return np.asarray(list(names), dtype=object)[cell]


def quadrant_names(mapping: Mapping[str, str] | None) -> tuple[str, str, str, str]:
    """Names in QUADRANT_CELLS order from a cell -> name mapping (defaults for cells not given)."""
    merged = {**DEFAULT_QUADRANT_NAMES, **(mapping or {})}
    return tuple(str(merged[c]) for c in QUADRANT_CELLS)  # type: ignore[return-value]


#: Columns of the retention list, in order (those the scores hold; ``action`` when actions are known).
RETENTION_COLUMNS = (
    schemas.CUSTOMER_ID, "rank", schemas.CHURN_LOSS_VALUE, schemas.CURRENT_VALUE, schemas.CLV, schemas.CLV_P10,
    schemas.CLV_P90, schemas.VALUE_QUADRANT, "action", schemas.VALUE_TIER, schemas.RFM_SEGMENT, schemas.P_ALIVE,
    schemas.CHURN_PROBABILITY,
)


def retention_list(scores: pd.DataFrame, top: int, actions: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The ``top`` customers by churn-loss value (ties: larger clv, then customer id), ranked 1..top.

    ``scores`` has a ``customer_id`` column (or index); ``actions`` maps quadrant names to their
    one-line action (an ``action`` column). Retention goes first to the highest churn-loss value.
    """
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"--top must be a whole number of customers >= 1, got {top!r}")
    if schemas.CHURN_LOSS_VALUE not in scores.columns:
        raise ValueError(
            "the scores have no churn_loss_value (a count-only model without clv.value_per_purchase): "
            "no retention list can be ranked; retrain with clv.value_per_purchase set"
        )
    frame = scores.reset_index() if schemas.CUSTOMER_ID not in scores.columns else scores.copy()
    order = frame.sort_values([schemas.CHURN_LOSS_VALUE, schemas.CLV, schemas.CUSTOMER_ID],
                              ascending=[False, False, True], kind="stable").head(top)
    order.insert(1, "rank", np.arange(1, len(order) + 1))
    if actions and schemas.VALUE_QUADRANT in order.columns:
        order["action"] = order[schemas.VALUE_QUADRANT].map(dict(actions)).fillna("")
    return order[[c for c in RETENTION_COLUMNS if c in order.columns]].reset_index(drop=True)
