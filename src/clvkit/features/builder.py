"""FeatureBuilder: one customer table (BTYD summary + RFM + value tier + behaviour) as of a day.

Follows the scikit-learn transformer contract: ``__init__`` stores hyperparameters verbatim,
``fit`` validates them and learns the RFM quantile edges and the value-tier thresholds from
the customers as of ``as_of``; ``transform`` applies them to any transactions and cut-off.
``to_dict``/``from_dict`` round-trip a fitted builder through JSON (no pickle).

Columns, in order: ``frequency, recency, T, monetary_value`` (:func:`btyd.summary`, in
``time_unit``), ``r_score, f_score, m_score, rfm_score, rfm_segment`` (:mod:`rfm`; R from
``days_since_last_purchase``, F from ``n_purchase_days``, M from ``spend_per_purchase_day``),
``historical_value_tier`` (A/B/C on ``total_spend`` with the thresholds learnt at fit), then
the behavioural features (:data:`behavioral.FEATURE_DEFINITIONS`), then the current value
(:mod:`clvkit.features.margin`): ``current_value`` (gross margin earned up to the cut-off) and
``current_value_trailing`` (gross margin earned in the last ``current_value_window_days``).

Count-only transactions (no ``amount`` column) keep ``monetary_value`` (all 0.0, so the BTYD
summary keeps its shape) but omit every spend-based column (:data:`SPEND_COLUMNS`), ``m_score``,
``historical_value_tier`` and the current value; ``rfm_score`` is then two digits (R, F) and the
segments use F alone. ``has_amount_`` tells which case was fitted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from clvkit import schemas
from clvkit.constants import (
    DEFAULT_CURRENT_VALUE_WINDOW_DAYS,
    DEFAULT_MARGIN,
    DEFAULT_TIER_A_SHARE,
    DEFAULT_TIER_B_SHARE,
    DEFAULT_TRAILING_WINDOWS_DAYS,
    RFM_RECENCY_CYCLE_MULTIPLES,
)
from clvkit.exceptions import FeatureMismatchError, NotFittedError
from clvkit.features._periods import (
    FeatureInputError,
    check_transactions,
    check_windows,
    customer_days,
    day_to_date,
    days_per_unit,
    sort_rows,
    to_day,
)
from clvkit.features.behavioral import FEATURE_SOURCES, behavioral_columns
from clvkit.features.btyd import summary_columns
from clvkit.features.margin import current_value_columns
from clvkit.features.rfm import (
    F_SCORE,
    M_SCORE,
    R_SCORE,
    RFM_SCORE,
    RFMEdges,
    SegmentPattern,
    fm_scores,
    purchase_cycle_days,
    score_strings,
    segment_table,
    tiers_from_thresholds,
    value_tier_thresholds,
)

logger = logging.getLogger(__name__)

__all__ = ["HISTORICAL_VALUE_TIER", "SPEND_COLUMNS", "FeatureBuilder", "build_customer_table"]

HISTORICAL_VALUE_TIER = "historical_value_tier"
_FORMAT = "clvkit.features.FeatureBuilder"
_FORMAT_VERSION = 1
_RFM_INPUTS = ("days_since_last_purchase", "n_purchase_days", "spend_per_purchase_day")
_TIER_INPUT = "total_spend"
_GAP_INPUT = "gap_mean_days"
#: Spend-based behavioural features, absent from count-only tables ({w}: per trailing window).
SPEND_COLUMNS = ("total_spend", "spend_per_purchase_day", "avg_order_value", "max_order_value",
                 "first_order_value", "returns_share", "spend_{w}d", "spend_trend_{w}d")


class _BuilderNotFittedError(NotFittedError, SklearnNotFittedError):
    """clvkit's ``NotFittedError`` that scikit-learn's checks also recognise as theirs."""


@dataclass(frozen=True)
class _Base:
    """Columns computed from the transactions before the learnt parts are applied."""

    ids: pd.Index
    btyd: dict[str, np.ndarray]
    behaviour: dict[str, np.ndarray]
    skipped: tuple[str, ...]
    has_amount: bool = True
    value: dict[str, np.ndarray] | None = None

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """BTYD and behavioural columns together."""
        return {**self.btyd, **self.behaviour}


class FeatureBuilder(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Customer feature table as of a cut-off day (scikit-learn transformer contract).

    ``get_params``/``set_params``/``repr``/``clone`` come from :class:`~sklearn.base.BaseEstimator`;
    ``check_is_fitted`` holds after ``fit`` (or :meth:`from_dict` on a fitted description).
    Output is one row per customer, not per transaction row, so ``set_output`` does not re-wrap
    it (``auto_wrap_output_keys=None``): ``transform`` always returns this DataFrame as is.

    Parameters
    ----------
    time_unit
        ``"D"``, ``"W"`` or ``"M"``: unit of the BTYD columns (behaviour is in days).
    trailing_windows_days
        Distinct positive trailing windows (days) of the behavioural features.
    rfm_segments
        (R, F) pattern -> segment name (see :mod:`clvkit.features.rfm`); None: defaults.
    tier_shares
        ``(a_share, b_share)`` of the historical value tiers, ``0 < a < b <= 1``.
    margin
        Gross-margin share of revenue of the current value where the transactions carry no
        ``cost``/``margin`` column (config ``clv.margin``).
    current_value_window_days
        Trailing window (days) of ``current_value_trailing`` (config
        ``features.current_value_window_days``).
    rfm_recency_days
        Four absolute recency edges (days) of R5..R2; None: ``rfm_cycle_multiples`` times the
        purchase cycle learnt at fit.
    rfm_cycle_multiples
        Four multiples of the purchase cycle giving the recency edges.

    Attributes (after ``fit``)
    --------------------------
    as_of_ : datetime.date
        Cut-off of the fit.
    rfm_edges_ : RFMEdges
        Learnt edges (recency in days, F and M on repeat customers).
    rfm_cycle_days_ : float
        Purchase cycle (days) learnt at fit: median mean gap of repeat customers.
    has_amount_ : bool
        False when fitted on count-only transactions (no ``amount`` column).
    tier_thresholds_ : tuple
        Smallest ``total_spend`` of tiers A and B (None: empty tier).
    feature_names_out_ : list of str
        Columns ``transform`` produces.
    skipped_features_ : tuple of str
        Behavioural features not built (source column absent at fit).
    n_customers_fit_ : int
        Customers in the fitting table.
    """

    def __init__(
        self,
        *,
        time_unit: str = "D",
        trailing_windows_days: Sequence[int] = DEFAULT_TRAILING_WINDOWS_DAYS,
        rfm_segments: Mapping[SegmentPattern, str] | None = None,
        tier_shares: tuple[float, float] = (DEFAULT_TIER_A_SHARE, DEFAULT_TIER_B_SHARE),
        margin: float = DEFAULT_MARGIN,
        current_value_window_days: int = DEFAULT_CURRENT_VALUE_WINDOW_DAYS,
        rfm_recency_days: Sequence[float] | None = None,
        rfm_cycle_multiples: Sequence[float] = RFM_RECENCY_CYCLE_MULTIPLES,
    ) -> None:
        self.time_unit = time_unit
        self.trailing_windows_days = trailing_windows_days
        self.rfm_segments = rfm_segments
        self.tier_shares = tier_shares
        self.margin = margin
        self.current_value_window_days = current_value_window_days
        self.rfm_recency_days = rfm_recency_days
        self.rfm_cycle_multiples = rfm_cycle_multiples

    # --- fit / transform ----------------------------------------------------------

    def fit(self, transactions: pd.DataFrame, as_of: object = None) -> FeatureBuilder:
        """Learn RFM edges and value-tier thresholds from the customers as of ``as_of``.

        ``as_of`` None: the last transaction date. Returns ``self``.
        """
        self.fit_transform(transactions, as_of)
        return self

    def fit_transform(self, transactions: pd.DataFrame, as_of: object = None) -> pd.DataFrame:
        """``fit`` then ``transform`` on the same data and cut-off, computing the base once."""
        self._check_params()
        end_day = _as_of_day(transactions, as_of)
        base = self._base(transactions, end_day)
        if base.ids.empty:
            raise FeatureInputError(
                f"no customer has a transaction on or before {day_to_date(end_day)}; "
                "cannot fit the feature builder (choose a later as_of)"
            )
        columns = base.columns
        repeat_gaps = columns[_GAP_INPUT]
        self.rfm_cycle_days_ = purchase_cycle_days(repeat_gaps)
        self.rfm_edges_ = RFMEdges.fit(
            columns["days_since_last_purchase"], columns["n_purchase_days"],
            columns.get("spend_per_purchase_day", np.zeros(base.ids.size)),
            cycle_days=self.rfm_cycle_days_, recency_days=self.rfm_recency_days,
            cycle_multiples=self.rfm_cycle_multiples,
        )
        self.has_amount_ = base.has_amount
        self.tier_thresholds_ = (
            value_tier_thresholds(columns[_TIER_INPUT], *self.tier_shares) if base.has_amount else (None, None)
        )
        self.as_of_ = day_to_date(end_day)
        self.skipped_features_ = base.skipped
        self.source_columns_ = _sources_present(transactions)
        self.n_customers_fit_ = int(base.ids.size)
        table = self._finish(base)
        self.feature_names_out_ = list(table.columns)
        logger.info("feature builder fitted as of %s: %d customers, %d features",
                    self.as_of_, len(table), len(self.feature_names_out_))
        return table

    def transform(self, transactions: pd.DataFrame, as_of: object = None) -> pd.DataFrame:
        """Customer table as of ``as_of`` (None: the last transaction date of ``transactions``).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        FeatureMismatchError
            When the columns produced differ from ``feature_names_out_`` (e.g. an optional
            source column present at fit is absent now).
        """
        self._check_fitted()
        end_day = _as_of_day(transactions, as_of)
        table = self._finish(self._base(transactions, end_day))
        self._check_columns(table, transactions)
        return table

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Output column names (scikit-learn API)."""
        self._check_fitted()
        return np.asarray(self.feature_names_out_, dtype=object)

    # --- persistence --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: hyperparameters and, when fitted, what was learnt."""
        data: dict[str, Any] = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": {
                "time_unit": self.time_unit,
                "trailing_windows_days": [int(w) for w in self.trailing_windows_days],
                "rfm_segments": _segments_to_json(self.rfm_segments),
                "tier_shares": [float(s) for s in self.tier_shares],
                "margin": float(self.margin),
                "current_value_window_days": int(self.current_value_window_days),
                "rfm_recency_days": (None if self.rfm_recency_days is None
                                     else [float(d) for d in self.rfm_recency_days]),
                "rfm_cycle_multiples": [float(m) for m in self.rfm_cycle_multiples],
            },
        }
        if _is_fitted(self):
            data["fitted"] = {
                "as_of": self.as_of_.isoformat(),
                "rfm_edges": self.rfm_edges_.to_dict(),
                "tier_thresholds": list(self.tier_thresholds_),
                "feature_names_out": list(self.feature_names_out_),
                "skipped_features": list(self.skipped_features_),
                "source_columns": list(self.source_columns_),
                "n_customers_fit": int(self.n_customers_fit_),
                "rfm_cycle_days": float(self.rfm_cycle_days_),
                "has_amount": bool(self.has_amount_),
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBuilder:
        """Rebuild a builder (fitted if ``data`` has a ``fitted`` block) from :meth:`to_dict`."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise FeatureInputError(f"not a FeatureBuilder description (expected format {_FORMAT!r})")
        if data.get("version") != _FORMAT_VERSION:
            raise FeatureInputError(
                f"FeatureBuilder description version {data.get('version')!r} is not supported "
                f"(this clvkit reads version {_FORMAT_VERSION})"
            )
        params = dict(data["params"])
        builder = cls(
            time_unit=params["time_unit"],
            trailing_windows_days=tuple(params["trailing_windows_days"]),
            rfm_segments=_segments_from_json(params["rfm_segments"]),
            tier_shares=tuple(params["tier_shares"]),  # type: ignore[arg-type]
            margin=float(params.get("margin", DEFAULT_MARGIN)),
            current_value_window_days=int(params.get("current_value_window_days",
                                                     DEFAULT_CURRENT_VALUE_WINDOW_DAYS)),
            rfm_recency_days=(None if params.get("rfm_recency_days") is None
                              else tuple(params["rfm_recency_days"])),
            rfm_cycle_multiples=tuple(params.get("rfm_cycle_multiples", RFM_RECENCY_CYCLE_MULTIPLES)),
        )
        fitted = data.get("fitted")
        if fitted is not None:
            builder._check_params()
            builder.as_of_ = dt.date.fromisoformat(fitted["as_of"])
            builder.rfm_edges_ = RFMEdges.from_dict(fitted["rfm_edges"])
            low_a, low_b = fitted["tier_thresholds"]
            builder.tier_thresholds_ = (low_a, low_b)
            builder.feature_names_out_ = list(fitted["feature_names_out"])
            builder.skipped_features_ = tuple(fitted["skipped_features"])
            builder.source_columns_ = tuple(fitted["source_columns"])
            builder.n_customers_fit_ = int(fitted["n_customers_fit"])
            builder.rfm_cycle_days_ = float(fitted.get("rfm_cycle_days", float("nan")))
            builder.has_amount_ = bool(fitted.get("has_amount", True))
        return builder

    # --- internals ----------------------------------------------------------------

    def _check_params(self) -> None:
        days_per_unit(self.time_unit)
        check_windows(self.trailing_windows_days)
        segment_table(self.rfm_segments)
        shares = self.tier_shares
        if not isinstance(shares, Sequence) or len(shares) != 2:
            raise FeatureInputError(
                f"tier_shares must be a pair (a_share, b_share), e.g. (0.80, 0.95); got {shares!r}"
            )
        value_tier_thresholds([], *shares)  # checks 0 < a < b <= 1
        margin = self.margin
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= 1:
            raise FeatureInputError(f"margin must be a gross-margin share between 0 and 1 (clv.margin), got {margin!r}")
        check_windows((self.current_value_window_days,))

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once ``feature_names_out_`` is set (the last step of ``fit``/``from_dict``)."""
        return _is_fitted(self)

    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self)
        except SklearnNotFittedError:
            raise _BuilderNotFittedError(
                "this FeatureBuilder is not fitted yet; call fit(transactions, as_of) first "
                "(or FeatureBuilder.from_dict on a saved fitted builder)"
            ) from None

    def _base(self, transactions: pd.DataFrame, end_day: int) -> _Base:
        """BTYD summary, behavioural and current-value columns from one sort of the rows."""
        has_amount = schemas.AMOUNT in getattr(transactions, "columns", ())
        if not has_amount and isinstance(transactions, pd.DataFrame):
            transactions = transactions.assign(**{schemas.AMOUNT: 0.0})  # a copy: count-only log
        rows = sort_rows(transactions)
        periods = customer_days(rows, end_day)
        columns = summary_columns(periods, days_per_unit(self.time_unit))
        windows = check_windows(self.trailing_windows_days)
        behaviour, skipped = behavioral_columns(transactions, rows, periods, windows)
        value = None
        if has_amount:
            value = current_value_columns(transactions, rows, periods, margin=float(self.margin),
                                          window_days=int(self.current_value_window_days))
        return _Base(periods.ids, columns, behaviour, skipped, has_amount, value)

    def _finish(self, base: _Base) -> pd.DataFrame:
        """One DataFrame: BTYD columns, RFM scores, segment and value tier, behaviour."""
        have = base.columns
        monetary = have.get("spend_per_purchase_day", np.zeros(base.ids.size))
        scores = self.rfm_edges_.score(*(have[c] if c in have else monetary for c in _RFM_INPUTS))
        segments = segment_table(self.rfm_segments)
        r, f, m = scores[R_SCORE], scores[F_SCORE], scores[M_SCORE]
        columns = dict(base.btyd)
        if base.has_amount:
            columns.update({
                R_SCORE: r,
                F_SCORE: f,
                M_SCORE: m,
                RFM_SCORE: score_strings(r, f, m),
                schemas.RFM_SEGMENT: segments[r - 1, fm_scores(f, m) - 1],
                HISTORICAL_VALUE_TIER: tiers_from_thresholds(have[_TIER_INPUT], self.tier_thresholds_),
            })
            columns.update(base.behaviour)
            columns.update(base.value or {})
        else:
            columns.update({
                R_SCORE: r,
                F_SCORE: f,
                RFM_SCORE: np.char.add(r.astype(str), f.astype(str)).astype(object),
                schemas.RFM_SEGMENT: segments[r - 1, f - 1],
            })
            spend = _spend_names(self.trailing_windows_days)
            columns.update({k: v for k, v in base.behaviour.items() if k not in spend})
        return pd.DataFrame(columns, index=base.ids, copy=False)

    def _check_columns(self, table: pd.DataFrame, transactions: pd.DataFrame) -> None:
        produced = list(table.columns)
        if produced == self.feature_names_out_:
            return
        missing = [c for c in self.feature_names_out_ if c not in produced]
        extra = [c for c in produced if c not in self.feature_names_out_]
        now = _sources_present(transactions)
        lost = sorted(set(self.source_columns_) - set(now))
        gained = sorted(set(now) - set(self.source_columns_))
        hint = []
        if lost:
            hint.append(f"transform data lacks column(s) {lost} that the fit data had")
        if gained:
            hint.append(f"transform data has column(s) {gained} that the fit data lacked")
        raise FeatureMismatchError(
            f"features differ from those at fit: missing {missing}, extra {extra}"
            + (f" ({'; '.join(hint)})" if hint else "")
            + ". Give transform the same optional columns as fit, or refit."
        )


def build_customer_table(
    transactions: pd.DataFrame, as_of: object = None, **params: Any
) -> pd.DataFrame:
    """One-shot ``FeatureBuilder(**params).fit_transform(transactions, as_of)``."""
    return FeatureBuilder(**params).fit_transform(transactions, as_of)


def _is_fitted(builder: FeatureBuilder) -> bool:
    return hasattr(builder, "feature_names_out_")


def _as_of_day(transactions: pd.DataFrame, as_of: object) -> int:
    if as_of is not None:
        return to_day(as_of, "as_of")
    if isinstance(transactions, pd.DataFrame) and schemas.AMOUNT not in transactions.columns:
        transactions = transactions.assign(**{schemas.AMOUNT: 0.0})  # a copy: count-only log, dates only
    frame = check_transactions(transactions)
    if frame.empty:
        raise FeatureInputError("as_of is None and there are no transactions to take a date from")
    return to_day(frame[schemas.TIMESTAMP].max(), "as_of")


def _spend_names(windows: Sequence[int]) -> set[str]:
    names = set()
    for template in SPEND_COLUMNS:
        names.update(template.format(w=w) for w in windows) if "{w}" in template else names.add(template)
    return names


def _sources_present(transactions: pd.DataFrame) -> tuple[str, ...]:
    sources = sorted(set(FEATURE_SOURCES.values()) | {schemas.AMOUNT, schemas.COST, schemas.MARGIN})
    return tuple(c for c in sources if c in transactions.columns)


def _segments_to_json(mapping: Mapping[SegmentPattern, str] | None) -> list[list[Any]] | None:
    """Pattern -> name as a list of [pattern, name]; tuple patterns become nested lists."""
    if mapping is None:
        return None
    return [[p if isinstance(p, str) else _listify(p), str(n)] for p, n in mapping.items()]


def _listify(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_listify(v) for v in value]
    return int(value)


def _segments_from_json(items: Sequence[Sequence[Any]] | None) -> dict[SegmentPattern, str] | None:
    if items is None:
        return None
    return {p if isinstance(p, str) else _tuplify(p): n for p, n in items}


def _tuplify(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuplify(v) for v in value)
    return value
