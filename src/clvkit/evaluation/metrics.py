"""Holdout metrics of purchases, spend, value ranking and churn, with stable names.

Every function takes aligned one-dimensional arrays (one value per customer, same order).
Assemblers (:func:`purchase_metrics`, :func:`spend_metrics`, :func:`value_metrics`,
:func:`churn_metrics`) return ``dict[str, float]`` whose keys never change between runs, so
that tracked runs line up; :mod:`clvkit.evaluation.registry` defines each key and says
whether higher or lower is better.

Standard metrics are thin wrappers of scikit-learn (ROC/PR curves, ROC AUC, average
precision, Brier, MAE, RMSE); Spearman is scipy's definition computed here (the blend's
weight search calls it thousands of times, and scipy's per-call overhead dominated). The
wrappers validate the inputs once and turn "undefined on these data" into ``NaN``. What neither library has (normalized Gini, top-k
capture, decile table, ECE, top-decile lift, the BTYD calibration table) is written here.

Conventions
-----------
* Ranking metrics sort customers by *descending* prediction. Customers with tied predictions
  share the mean of their realised values (the expectation over all orders of the tie), so a
  result never depends on row order and a constant predictor scores exactly a random ranking.
  The decile table is the exception: it splits the stable descending order (ties kept in row
  order) into ``N_DECILES`` groups of near-equal size.
* A metric that is undefined on the data (no positive total, one class only, constant input)
  is ``NaN`` and logged as a warning rather than raised, so a whole evaluation still completes.
* ``*_pct`` metrics and MAPEs are percentages (``PERCENT`` = 100).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn import metrics as skm

from clvkit.constants import (
    DEFAULT_CALIBRATION_MAX_FREQUENCY,
    ECE_BINS,
    MAX_EXAMPLE_ROWS,
    N_DECILES,
    PERCENT,
    TOP10_FRACTION,
    TOP20_FRACTION,
    TOP_DECILE_FRACTION,
)
from clvkit.evaluation import registry

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

# --- metric directions (the registry is the one source; re-exported for callers) -------
HIGHER: Final = registry.HIGHER
LOWER: Final = registry.LOWER
CLOSER_TO_ZERO: Final = registry.CLOSER_TO_ZERO
DIRECTIONS: Final = registry.DIRECTIONS

# --- table columns ------------------------------------------------------------------
FREQUENCY_BIN: Final = "frequency_cal"
BIN_LABEL: Final = "label"
N_CUSTOMERS: Final = "n_customers"
ACTUAL_MEAN: Final = "actual_mean"
PREDICTED_MEAN: Final = "predicted_mean"
DECILE: Final = "decile"
ACTUAL_SUM: Final = "actual_sum"
PREDICTED_SUM: Final = "predicted_sum"
ABS_PCT_ERROR: Final = "abs_pct_error"
BIN_LOWER: Final = "bin_lower"
BIN_UPPER: Final = "bin_upper"
MEAN_PREDICTED: Final = "mean_predicted"
OBSERVED_RATE: Final = "observed_rate"


#: How the message about non-finite inputs of a metric ends.
EVALUATION_FILL_ADVICE: Final = "drop or fill them before evaluating"


# --- input validation -------------------------------------------------------------


def as_vector(
    values: ArrayLike,
    name: str,
    *,
    finite: bool = True,
    allow_empty: bool = False,
    advice: str = EVALUATION_FILL_ADVICE,
) -> FloatArray:
    """One-dimensional float copy of ``values``; non-empty and finite unless told otherwise.

    ``advice`` ends the message about non-finite values.
    """
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from error
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per customer), got shape {array.shape}")
    if not allow_empty and array.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to evaluate")
    if finite:
        _check_finite(array, name, advice)
    return array


def _check_finite(array: FloatArray, name: str, advice: str = EVALUATION_FILL_ADVICE) -> None:
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{name} has {bad.size} non-finite value(s) (NaN or inf), e.g. at positions "
            f"{bad[:MAX_EXAMPLE_ROWS].tolist()}; {advice}"
        )


def _check_lengths(arrays: Mapping[str, FloatArray]) -> None:
    lengths = {name: array.size for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"arrays must be aligned (one value per customer), got lengths {listed}")


def _aligned(**arrays: ArrayLike) -> list[FloatArray]:
    """Validated, finite, equal-length float copies, in argument order."""
    vectors = {name: as_vector(values, name) for name, values in arrays.items()}
    _check_lengths(vectors)
    return list(vectors.values())


def _check_binary(y: FloatArray, name: str) -> None:
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold 0/1 outcomes only, got values {np.unique(y)[:MAX_EXAMPLE_ROWS].tolist()}")


def _check_probability(p: FloatArray, name: str) -> None:
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"{name} must be probabilities in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]")


def _check_fraction(fraction: float, name: str) -> float:
    if isinstance(fraction, bool) or not (isinstance(fraction, int | float) and 0.0 < fraction <= 1.0):
        raise ValueError(f"{name} must be a number in (0, 1], got {fraction!r}")
    return float(fraction)


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix or prefix != prefix.strip():
        raise ValueError(f"prefix must be a non-empty string without surrounding spaces, got {prefix!r}")
    return prefix


def _undefined(metric: str, reason: str) -> float:
    logger.warning("%s is undefined (NaN): %s", metric, reason)
    return math.nan


# --- shared building blocks -------------------------------------------------------


def _ranked_actual(actual: FloatArray, predicted: FloatArray) -> FloatArray:
    """``actual`` sorted by descending ``predicted``, each tie group replaced by its mean.

    The mean is the expectation over all orders within the tie, because every statistic
    built on it (cumulative sums, top-k sums) is linear in the positions.
    """
    order = np.argsort(-predicted)  # any order within ties: each tie group is replaced by its mean
    sorted_pred, sorted_actual = predicted[order], actual[order]
    starts = np.flatnonzero(np.r_[True, sorted_pred[1:] != sorted_pred[:-1]])
    sizes = np.diff(np.r_[starts, sorted_pred.size])
    return np.repeat(np.add.reduceat(sorted_actual, starts) / sizes, sizes)


def _top_sum(actual: FloatArray, predicted: FloatArray, k: int) -> float:
    """``_ranked_actual(actual, predicted)[:k].sum()`` in linear time (a partition, not a sort).

    The customers above the k-th highest prediction count in full; the tie group at the k-th
    prediction contributes its mean value for each of the places it fills.
    """
    threshold = np.partition(predicted, predicted.size - k)[predicted.size - k]
    above = predicted > threshold
    at = predicted == threshold
    return float(actual[above].sum() + (k - np.count_nonzero(above)) * actual[at].mean())


def _average_ranks(x: FloatArray, descending: NDArray[np.intp] | None = None) -> FloatArray:
    """1-based ranks, tie groups given their average rank (scipy's ``rankdata(method="average")``).

    ``descending``: an order sorting ``x`` from the highest value, when the caller has one (the
    ranks depend only on the tie groups, so they are the same, exactly).
    """
    order = np.argsort(x) if descending is None else descending
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, x.size])
    ranks = np.empty(x.size)
    # ascending: a group starting at s holds ranks s+1 .. s+k; descending: n-s-k+1 .. n-s
    group_ranks = starts + (sizes + 1) / 2 if descending is None else x.size - starts - (sizes - 1) / 2
    ranks[order] = np.repeat(group_ranks, sizes)
    return ranks


def _top_count(n: int, fraction: float) -> int:
    """Customers in the top ``fraction`` of ``n``: rounded half up, at least one."""
    return max(1, math.floor(fraction * n + 0.5))


def _relative_total_error(actual: FloatArray, predicted: FloatArray, metric: str) -> float:
    total = float(actual.sum())
    if total <= 0:
        return _undefined(metric, f"the actual total is {total:g}, not positive")
    return PERCENT * (float(predicted.sum()) - total) / total


# --- purchases --------------------------------------------------------------------


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute error ``mean(|predicted - actual|)``."""
    a, p = _aligned(actual=actual, predicted=predicted)
    return float(skm.mean_absolute_error(a, p))


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Root mean squared error ``sqrt(mean((predicted - actual)^2))``."""
    a, p = _aligned(actual=actual, predicted=predicted)
    return float(skm.root_mean_squared_error(a, p))


def purchases_calibration_table(
    frequency_cal: ArrayLike,
    actual_holdout: ArrayLike,
    predicted_holdout: ArrayLike,
    max_frequency: int = DEFAULT_CALIBRATION_MAX_FREQUENCY,
) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration frequency.

    The "conditional expectations" table of lifetimes'
    ``plot_calibration_purchases_vs_holdout_purchases``: one row per calibration frequency
    ``0 .. max_frequency``, the last bin holding every frequency ``>= max_frequency`` (label
    ``"7+"``). Every bin is present; an empty one has ``n_customers = 0`` and NaN means.

    Returns
    -------
    DataFrame with columns ``frequency_cal`` (bin, int), ``label``, ``n_customers``,
    ``actual_mean`` and ``predicted_mean``.
    """
    max_frequency = _check_count(max_frequency, "max_frequency", 1)
    f, a, p = _aligned(
        frequency_cal=frequency_cal, actual_holdout=actual_holdout, predicted_holdout=predicted_holdout
    )
    if f.min() < 0:
        raise ValueError(f"frequency_cal must be non-negative, got minimum {f.min():g}")
    bins = np.minimum(np.floor(f), max_frequency).astype(int)
    counts = np.bincount(bins, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        actual_mean = np.bincount(bins, weights=a, minlength=max_frequency + 1) / counts
        predicted_mean = np.bincount(bins, weights=p, minlength=max_frequency + 1) / counts
    labels = [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]
    return pd.DataFrame(
        {
            FREQUENCY_BIN: np.arange(max_frequency + 1),
            BIN_LABEL: labels,
            N_CUSTOMERS: counts,
            ACTUAL_MEAN: actual_mean,
            PREDICTED_MEAN: predicted_mean,
        }
    )


def calibration_mae(table: pd.DataFrame) -> float:
    """Customer-weighted mean ``|actual_mean - predicted_mean|`` of a calibration table."""
    filled = table[table[N_CUSTOMERS] > 0]
    gaps = (filled[ACTUAL_MEAN] - filled[PREDICTED_MEAN]).abs().to_numpy()
    weights = filled[N_CUSTOMERS].to_numpy(dtype=float)
    return float(np.sum(weights * gaps) / np.sum(weights))


def purchase_metrics(
    actual: ArrayLike, predicted: ArrayLike, actual_cal_frequency: ArrayLike
) -> dict[str, float]:
    """Holdout purchase metrics: ``purchases_mae, _rmse, _cum_error_pct, _calibration_mae``.

    Parameters
    ----------
    actual, predicted : array-like
        Actual (``frequency_holdout``) and predicted holdout purchases per customer.
    actual_cal_frequency : array-like
        Calibration frequency (``frequency_cal``), for the conditional-expectations bins.
    """
    a, p, f = _aligned(actual=actual, predicted=predicted, actual_cal_frequency=actual_cal_frequency)
    table = purchases_calibration_table(f, a, p)
    return {
        "purchases_mae": mae(a, p),
        "purchases_rmse": rmse(a, p),
        "purchases_cum_error_pct": _relative_total_error(a, p, "purchases_cum_error_pct"),
        "purchases_calibration_mae": calibration_mae(table),
    }


# --- spend ------------------------------------------------------------------------


def spend_mae(
    actual_order_value: ArrayLike,
    predicted_order_value: ArrayLike,
    frequency_cal: ArrayLike,
    frequency_holdout: ArrayLike,
) -> float:
    """MAE of predicted expected order value vs realised mean holdout spend per purchase.

    Only customers with ``frequency_cal > 0`` (Gamma-Gamma conditions on repeat spend) and at
    least one holdout purchase (otherwise no realised order value) count; elsewhere
    ``actual_order_value`` (``monetary_value_holdout``) and the prediction may be NaN. NaN
    when no customer qualifies.
    """
    actual = as_vector(actual_order_value, "actual_order_value", finite=False)
    predicted = as_vector(predicted_order_value, "predicted_order_value", finite=False)
    f_cal = as_vector(frequency_cal, "frequency_cal")
    f_hold = as_vector(frequency_holdout, "frequency_holdout")
    _check_lengths(
        {"actual_order_value": actual, "predicted_order_value": predicted,
         "frequency_cal": f_cal, "frequency_holdout": f_hold}
    )
    eligible = (f_cal > 0) & (f_hold >= 1)
    if not eligible.any():
        return _undefined("spend_mae", "no customer has frequency_cal > 0 and a holdout purchase")
    _check_finite(actual[eligible], "actual_order_value (customers with repeat and holdout purchases)")
    _check_finite(predicted[eligible], "predicted_order_value (customers with repeat and holdout purchases)")
    return float(np.mean(np.abs(predicted[eligible] - actual[eligible])))


def spend_metrics(
    actual_order_value: ArrayLike,
    predicted_order_value: ArrayLike,
    frequency_cal: ArrayLike,
    frequency_holdout: ArrayLike,
) -> dict[str, float]:
    """Holdout spend metrics: ``spend_mae`` (see :func:`spend_mae`)."""
    return {"spend_mae": spend_mae(actual_order_value, predicted_order_value, frequency_cal, frequency_holdout)}


# --- value ranking ----------------------------------------------------------------


def gain_curve(actual: ArrayLike, predicted: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Lorenz (gain) curve: cumulative share of value vs share of customers, by prediction.

    Returns ``(share_of_customers, share_of_value)``, both starting at 0 and ending at 1;
    tied predictions share their mean value.
    """
    a, p = _aligned(actual=actual, predicted=predicted)
    total = float(a.sum())
    if total <= 0:
        raise ValueError(f"actual must have a positive total for a gain curve, got {total:g}")
    ranked = _ranked_actual(a, p)
    share_customers = np.arange(a.size + 1) / a.size
    return share_customers, np.r_[0.0, np.cumsum(ranked)] / total


def _gini(actual: FloatArray, predicted: FloatArray, total: float) -> float:
    """``mean_i(L_i - i/n)``, ``L_i`` the value share of the top ``i`` customers."""
    return _gini_of_lorenz(np.cumsum(_ranked_actual(actual, predicted)) / total)


def _gini_of_lorenz(lorenz: FloatArray) -> float:
    """``mean_i(L_i - i/n)`` of a Lorenz curve ``L_1 .. L_n`` (without the leading 0)."""
    return float(np.mean(lorenz - np.arange(1, lorenz.size + 1) / lorenz.size))


def _perfect_gini(actual: FloatArray, total: float) -> float:
    """``G(actual)``: the Gini of ranking by the actual values themselves (ties hold equal values)."""
    return _gini_of_lorenz(np.cumsum(np.sort(actual)[::-1]) / total)


def normalized_gini(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Normalized Gini of a value ranking (as in google/lifetime_value and Kaggle).

    ``G(pred) / G(actual)`` with ``G(s) = (1/n) sum_i (L_i(s) - i/n)``, where ``L_i(s)`` is the
    share of total actual value held by the top ``i`` customers sorted by descending ``s``.
    Tied predictions share their mean value (the expectation over tie orders), so a constant
    prediction gives exactly 0 and the result does not depend on row order. 1 = perfect,
    -1 = reversed. NaN when the actual total is not positive or all actual values are equal.
    """
    a, p = _aligned(actual=actual, predicted=predicted)
    return _ActualSide(a).normalized_gini(p)


def spearman(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks, as scipy's ``spearmanr``); NaN if constant."""
    a, p = _aligned(actual=actual, predicted=predicted)
    return _ActualSide(a).spearman(p)


class _ActualSide:
    """What the value metrics compute from the realised values alone, once for every prediction scored against them."""

    def __init__(self, actual: FloatArray) -> None:
        self.actual = actual
        self.total = float(actual.sum())
        self._perfect: float | None = None
        self._centred_ranks: FloatArray | None = None

    @property
    def perfect_gini(self) -> float:
        if self._perfect is None:
            self._perfect = _perfect_gini(self.actual, self.total)
        return self._perfect

    def normalized_gini(self, predicted: FloatArray) -> float:
        if self.total <= 0:
            return _undefined("normalized Gini", f"the actual total is {self.total:g}, not positive")
        if self.perfect_gini <= 0:
            return _undefined("normalized Gini", "all actual values are equal")
        return _gini(self.actual, predicted, self.total) / self.perfect_gini

    def spearman(self, predicted: FloatArray, descending: NDArray[np.intp] | None = None) -> float:
        if np.ptp(self.actual) == 0 or np.ptp(predicted) == 0:
            return _undefined("Spearman correlation", "actual or predicted is constant")
        if self._centred_ranks is None:
            ranks = _average_ranks(self.actual)
            ranks -= ranks.mean()
            self._centred_ranks = ranks
        ra = self._centred_ranks
        rp = _average_ranks(predicted, descending)
        rp -= rp.mean()
        # plain sums, not BLAS dot products: BLAS threads spin-wait on a busy machine
        return float(np.clip(np.sum(ra * rp) / math.sqrt(float(np.sum(ra * ra)) * float(np.sum(rp * rp))), -1.0, 1.0))


def gain_curves(actual: ArrayLike, predictions: Mapping[str, ArrayLike]) -> dict[str, tuple[FloatArray, FloatArray, float]]:
    """:func:`gain_curve` and :func:`normalized_gini` of each prediction, the Gini read off its curve.

    The realised-value side (total, the perfect ranking's Gini) is computed once for all of them.
    """
    a = as_vector(actual, "actual")
    side = _ActualSide(a)
    out = {}
    for name, predicted in predictions.items():
        x, y = gain_curve(a, predicted)
        if side.perfect_gini <= 0:
            gini = _undefined("normalized Gini", "all actual values are equal")
        else:  # the curve's points after 0 are the Lorenz curve _gini builds
            gini = _gini_of_lorenz(y[1:]) / side.perfect_gini
        out[name] = (x, y, gini)
    return out


def decile_table(actual: ArrayLike, predicted: ArrayLike, n_bins: int = N_DECILES) -> pd.DataFrame:
    """Sums and means of predicted and actual value per prediction decile.

    Customers sorted by descending prediction (stable: ties in row order) are split into
    ``n_bins`` groups of near-equal size (``numpy.array_split``); decile 1 holds the highest
    predictions. ``abs_pct_error = 100 * |predicted_sum - actual_sum| / |actual_sum|`` (NaN
    where ``actual_sum`` is 0).
    """
    n_bins = _check_count(n_bins, "n_bins", 1)
    a, p = _aligned(actual=actual, predicted=predicted)
    if a.size < n_bins:
        raise ValueError(f"a decile table needs at least n_bins={n_bins} customers, got {a.size}")
    return _decile_table(a, p, n_bins, _stable_descending(p))


def _stable_descending(predicted: FloatArray) -> NDArray[np.intp]:
    """Row order by descending prediction, ties in row order."""
    return np.argsort(-predicted, kind="stable")


def _decile_table(a: FloatArray, p: FloatArray, n_bins: int, descending: NDArray[np.intp]) -> pd.DataFrame:
    """:func:`decile_table` of validated arrays, given ``_stable_descending(p)``."""
    groups = np.array_split(descending, n_bins)
    actual_sum = np.array([a[g].sum() for g in groups])
    predicted_sum = np.array([p[g].sum() for g in groups])
    sizes = np.array([g.size for g in groups])
    with np.errstate(invalid="ignore", divide="ignore"):
        ape = np.where(actual_sum != 0, PERCENT * np.abs(predicted_sum - actual_sum) / np.abs(actual_sum), np.nan)
    return pd.DataFrame(
        {
            DECILE: np.arange(1, n_bins + 1),
            N_CUSTOMERS: sizes,
            PREDICTED_SUM: predicted_sum,
            ACTUAL_SUM: actual_sum,
            PREDICTED_MEAN: predicted_sum / sizes,
            ACTUAL_MEAN: actual_sum / sizes,
            ABS_PCT_ERROR: ape,
        }
    )


def decile_mape(actual: ArrayLike, predicted: ArrayLike, n_bins: int = N_DECILES) -> float:
    """Mean absolute percentage error of the decile sums (see :func:`decile_table`).

    Deciles whose actual sum is zero have no percentage error and are left out; NaN when
    every decile is left out or there are fewer customers than deciles.
    """
    n_bins = _check_count(n_bins, "n_bins", 1)
    a, p = _aligned(actual=actual, predicted=predicted)
    return _decile_mape(a, p, n_bins)


def _decile_mape(a: FloatArray, p: FloatArray, n_bins: int, descending: NDArray[np.intp] | None = None) -> float:
    """:func:`decile_mape` of validated arrays (``descending``: ``_stable_descending(p)`` when known)."""
    if a.size < n_bins:
        return _undefined("decile MAPE", f"{a.size} customer(s) cannot fill n_bins={n_bins} groups")
    order = _stable_descending(p) if descending is None else descending
    errors = _decile_table(a, p, n_bins, order)[ABS_PCT_ERROR].to_numpy()
    if np.isnan(errors).all():
        return _undefined("decile MAPE", "every decile has an actual sum of zero")
    return float(np.nanmean(errors))


def top_share_captured(actual: ArrayLike, predicted: ArrayLike, top_fraction: float) -> float:
    """Share of total actual value held by the top ``top_fraction`` of customers by prediction.

    The top group has ``round_half_up(top_fraction * n)`` (at least one) customers; tied
    predictions share their mean value. NaN when the actual total is not positive.
    """
    fraction = _check_fraction(top_fraction, "top_fraction")
    a, p = _aligned(actual=actual, predicted=predicted)
    total = float(a.sum())
    if total <= 0:
        return _undefined("top share captured", f"the actual total is {total:g}, not positive")
    k = _top_count(a.size, fraction)
    return _top_sum(a, p, k) / total


def aggregate_error_pct(actual: ArrayLike, predicted: ArrayLike) -> float:
    """``100 * (sum(predicted) - sum(actual)) / sum(actual)``; NaN when ``sum(actual) <= 0``."""
    a, p = _aligned(actual=actual, predicted=predicted)
    return _relative_total_error(a, p, "aggregate error")


def value_metrics(actual: ArrayLike, predicted: ArrayLike, prefix: str) -> dict[str, float]:
    """Value-ranking metrics of predicted vs realised holdout value.

    Keys: ``{prefix}_gini_norm, _spearman, _decile_mape, _top10_capture, _top20_capture,
    _aggregate_error_pct`` (definitions in :mod:`clvkit.evaluation.registry`).
    """
    return value_metrics_by_prefix(actual, {prefix: predicted})


def value_metrics_by_prefix(actual: ArrayLike, predictions: Mapping[str, ArrayLike]) -> dict[str, float]:
    """:func:`value_metrics` of several predictions of the same realised values, keyed by prefix.

    Same values; what depends on the realised values alone (their ranks, the perfect Gini) is
    computed once.
    """
    a = as_vector(actual, "actual")
    side = _ActualSide(a)
    out: dict[str, float] = {}
    for prefix, predicted in predictions.items():
        prefix = _check_prefix(prefix)
        a, p = _aligned(actual=a, predicted=predicted)
        descending = _stable_descending(p)  # one sort for the deciles and the Spearman ranks
        out.update({
            f"{prefix}_gini_norm": side.normalized_gini(p),
            f"{prefix}_spearman": side.spearman(p, descending),
            f"{prefix}_decile_mape": _decile_mape(a, p, N_DECILES, descending),
            f"{prefix}_top10_capture": top_share_captured(a, p, TOP10_FRACTION),
            f"{prefix}_top20_capture": top_share_captured(a, p, TOP20_FRACTION),
            f"{prefix}_aggregate_error_pct": aggregate_error_pct(a, p),
        })
    return out


# --- churn ------------------------------------------------------------------------


def _binary_inputs(y_true: ArrayLike, p: ArrayLike) -> tuple[FloatArray, FloatArray]:
    y, s = _aligned(y_true=y_true, p=p)
    _check_binary(y, "y_true")
    return y, s


def roc_curve(y_true: ArrayLike, score: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ROC curve ``(fpr, tpr, thresholds)``, one point per distinct score plus the origin.

    scikit-learn's ``roc_curve`` (``drop_intermediate=False``); both classes must be present.
    """
    y, s = _binary_inputs(y_true, score)
    if np.unique(y).size < 2:
        raise ValueError("y_true must hold both classes for a ROC curve, got one class only")
    fpr, tpr, thresholds = skm.roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, thresholds


def precision_recall_curve(
    y_true: ArrayLike, score: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Precision-recall curve ``(precision, recall, thresholds)``, highest threshold first.

    scikit-learn's ``precision_recall_curve`` in the order of :func:`roc_curve`: the first
    point is ``(recall 0, precision 1)`` at threshold ``inf``.
    """
    y, s = _binary_inputs(y_true, score)
    if y.sum() == 0:
        raise ValueError("y_true has no positive outcome: precision and recall are undefined")
    precision, recall, thresholds = skm.precision_recall_curve(y, s)
    return precision[::-1], recall[::-1], np.r_[np.inf, thresholds[::-1]]


def roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve (``roc_auc_score``; tied scores count one half); NaN with one class."""
    y, s = _binary_inputs(y_true, score)
    if np.unique(y).size < 2:
        return _undefined("ROC AUC", "y_true holds one class only")
    return float(skm.roc_auc_score(y, s))


def average_precision(y_true: ArrayLike, score: ArrayLike) -> float:
    """Average precision ``sum_k (R_k - R_{k-1}) P_k`` (``average_precision_score``); NaN without positives."""
    y, s = _binary_inputs(y_true, score)
    if y.sum() == 0:
        return _undefined("average precision", "y_true has no positive outcome")
    return float(skm.average_precision_score(y, s))


class BinaryCurves(NamedTuple):
    """ROC and precision-recall curves of one score with their areas (see :func:`binary_curves`)."""

    fpr: FloatArray
    tpr: FloatArray
    roc_thresholds: FloatArray
    precision: FloatArray
    recall: FloatArray
    pr_thresholds: FloatArray
    roc_auc: float
    average_precision: float


def binary_curves(y_true: ArrayLike, score: ArrayLike) -> BinaryCurves:
    """:func:`roc_curve`, :func:`precision_recall_curve`, :func:`roc_auc` and :func:`average_precision` from one sort.

    The four come from the same confusion counts per distinct threshold (scikit-learn's
    ``confusion_matrix_at_thresholds``, one stable sort of the scores); each value is the one
    the separate function returns, computed the way scikit-learn computes it (ROC AUC: trapezoids
    over the curve without collinear points; AP: ``sum_k (R_k - R_{k-1}) P_k``). Both classes
    must be present.
    """
    y, s = _binary_inputs(y_true, score)
    if y.min() == y.max():
        raise ValueError("y_true must hold both classes for ROC and precision-recall curves, got one class only")
    _, fps, _, tps, thresholds = skm.confusion_matrix_at_thresholds(y, s)
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    corners = np.arange(fps.size)
    if fps.size > 2:  # roc_auc_score's curve drops points on straight segments (drop_intermediate)
        corners = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
    kept_fps, kept_tps = np.r_[0.0, fps[corners]], np.r_[0.0, tps[corners]]
    area = skm.auc(kept_fps / kept_fps[-1], kept_tps / kept_tps[-1])
    positives = tps + fps
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(positives != 0, tps / positives, 0.0)
    recall = tps / tps[-1]
    precision_sk, recall_sk = np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]
    ap = float(max(0.0, -np.sum(np.diff(recall_sk) * precision_sk[:-1])))
    return BinaryCurves(fpr, tpr, np.r_[np.inf, thresholds.astype(np.float64)], np.r_[1.0, precision],
                        np.r_[0.0, recall], np.r_[np.inf, thresholds], float(area), ap)


def brier_score(y_true: ArrayLike, p: ArrayLike) -> float:
    """Brier score ``mean((p - y)^2)`` (``brier_score_loss``)."""
    y, prob = _binary_inputs(y_true, p)
    _check_probability(prob, "p")
    return float(skm.brier_score_loss(y.astype(int), prob, labels=[0, 1]))


def reliability_table(y_true: ArrayLike, p: ArrayLike, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Observed outcome rate vs mean probability in equal-width probability bins.

    Bin ``k`` covers ``[k/n_bins, (k+1)/n_bins)``, the last one closed at 1. Every bin is
    present; an empty one has ``n_customers = 0`` and NaN means.

    Returns
    -------
    DataFrame with columns ``bin_lower, bin_upper, n_customers, mean_predicted, observed_rate``.
    """
    n_bins = _check_count(n_bins, "n_bins", 1)
    y, prob = _binary_inputs(y_true, p)
    _check_probability(prob, "p")
    bins = np.minimum(np.floor(prob * n_bins), n_bins - 1).astype(int)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, weights=prob, minlength=n_bins) / counts
        observed = np.bincount(bins, weights=y, minlength=n_bins) / counts
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            BIN_LOWER: edges[:-1],
            BIN_UPPER: edges[1:],
            N_CUSTOMERS: counts,
            MEAN_PREDICTED: mean_predicted,
            OBSERVED_RATE: observed,
        }
    )


def expected_calibration_error(y_true: ArrayLike, p: ArrayLike, n_bins: int = ECE_BINS) -> float:
    """ECE: ``sum_bins (n_bin / n) |observed_rate - mean_predicted|`` (see :func:`reliability_table`)."""
    table = reliability_table(y_true, p, n_bins)
    filled = table[table[N_CUSTOMERS] > 0]
    gaps = (filled[OBSERVED_RATE] - filled[MEAN_PREDICTED]).abs().to_numpy()
    return float(np.sum(filled[N_CUSTOMERS].to_numpy() * gaps) / table[N_CUSTOMERS].sum())


def top_decile_lift(y_true: ArrayLike, score: ArrayLike, top_fraction: float = TOP_DECILE_FRACTION) -> float:
    """Outcome rate in the top ``top_fraction`` by score divided by the overall rate.

    Tied scores share their mean outcome; NaN when no outcome is positive.
    """
    fraction = _check_fraction(top_fraction, "top_fraction")
    y, s = _binary_inputs(y_true, score)
    base_rate = float(y.mean())
    if base_rate == 0:
        return _undefined("top-decile lift", "y_true has no positive outcome")
    k = _top_count(y.size, fraction)
    return _top_sum(y, s, k) / k / base_rate


def ranking_areas(y_true: ArrayLike, score: ArrayLike) -> tuple[float, float]:
    """``(roc_auc, average_precision)`` from one sort (:func:`binary_curves`); NaN where undefined, as there."""
    y, s = _binary_inputs(y_true, score)
    if y.min() == y.max():
        return roc_auc(y, s), average_precision(y, s)
    curves = binary_curves(y, s)
    return curves.roc_auc, curves.average_precision


def churn_metrics(y_true: ArrayLike, p: ArrayLike, prefix: str) -> dict[str, float]:
    """Churn metrics: ``{prefix}_roc_auc, _pr_auc, _brier, _ece, _top_decile_lift``.

    ``y_true`` is 1 for a churned customer; ``p`` the predicted churn probability.
    """
    prefix = _check_prefix(prefix)
    y, prob = _binary_inputs(y_true, p)
    _check_probability(prob, "p")
    auc, ap = ranking_areas(y, prob)
    return {
        f"{prefix}_roc_auc": auc,
        f"{prefix}_pr_auc": ap,
        f"{prefix}_brier": brier_score(y, prob),
        f"{prefix}_ece": expected_calibration_error(y, prob),
        f"{prefix}_top_decile_lift": top_decile_lift(y, prob),
    }


# --- comparison with baselines --------------------------------------------------------


def metric_direction(name: str) -> str:
    """``higher``, ``lower`` or ``closer_to_zero`` for a metric name (see :mod:`clvkit.evaluation.registry`)."""
    return registry.metric_direction(name)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction


def relative_lift(model: float, baseline: float, direction: str) -> float:
    """Relative improvement of ``model`` over ``baseline``; positive = model better.

    ``higher``: ``(m - b) / |b|``; ``lower``: ``(b - m) / |b|``; ``closer_to_zero``:
    ``(|b| - |m|) / |b|``. NaN when either is NaN or the baseline is 0.
    """
    direction = _check_direction(direction)
    m, b = float(model), float(baseline)
    if not (math.isfinite(m) and math.isfinite(b)) or b == 0:
        return math.nan
    if direction == HIGHER:
        return (m - b) / abs(b)
    if direction == LOWER:
        return (b - m) / abs(b)
    return (abs(b) - abs(m)) / abs(b)


def loses_to_baseline(model: float, baseline: float, direction: str) -> bool:
    """True when ``model`` is strictly worse than ``baseline``; False when either is NaN."""
    direction = _check_direction(direction)
    m, b = float(model), float(baseline)
    if not (math.isfinite(m) and math.isfinite(b)):
        return False
    if direction == HIGHER:
        return m < b
    if direction == LOWER:
        return m > b
    return abs(m) > abs(b)
