"""What the served scorer accepts, checked and completed before :meth:`ClvScorer.score`.

Three input forms, told apart by their columns (``customer_id`` as a column, or as the index
in-process):

``features``
    The customer table exactly as ``clvkit features`` writes it and ``FeatureBuilder`` returns
    it (integer or float columns; the text columns ``rfm_score``, ``rfm_segment``,
    ``historical_value_tier``).
``btyd``
    A minimal BTYD row: ``customer_id, frequency, recency, T`` (in the model's time unit) and
    ``monetary_value`` (mean spend per repeat purchase day; 0 for one-time buyers). Every other
    feature is optional. Missing ones are completed as documented in :data:`DERIVED_FROM_BTYD`
    (exact relations of the BTYD summary) and the rest are left missing, which the XGBoost
    churn and value models handle natively (the branch learnt for missing values). P(alive),
    expected purchases, order value and BTYD CLV depend only on the four BTYD columns, so they
    equal the ``features`` form's scores exactly; churn and ML CLV use fewer features.
``transactions``
    Raw transactions ``customer_id, timestamp, amount`` (optional ``quantity``, ``order_id``,
    ``product``, ``category``, ``channel``, ``cost``, ``margin``) with ``as_of`` (YYYY-MM-DD) as
    an MLflow params field: features are built inside the scorer with the FeatureBuilder state
    saved at training, so with the same columns the scores equal those of the ``features`` form
    built as of that day. Features of an optional column the request leaves out (e.g.
    ``avg_basket_quantity`` without ``quantity``) are missing, as in the ``btyd`` form. Rows
    after ``as_of`` are refused (400), not silently dropped.

Every check raises :class:`ScorerInputError` (a UserInputError) naming the column, a few
offending rows with their count, and the fix; the REST server answers it with HTTP 400.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import DAYS_PER_TIME_UNIT, MAX_EXAMPLE_ROWS
from clvkit.exceptions import UserInputError

logger = logging.getLogger(__name__)

#: Input form names.
FORM_FEATURES = "features"
FORM_BTYD = "btyd"
FORM_TRANSACTIONS = "transactions"
#: MLflow params field: the cut-off day of the transactions form.
AS_OF_PARAM = "as_of"
#: Largest absolute amount (currency units) accepted in a request.
MAX_REQUEST_AMOUNT = 1e12
#: Tolerance (model time units) when checking recency <= T.
RECENCY_TOLERANCE_UNITS = 1e-9

BTYD_REQUIRED = (schemas.FREQUENCY, schemas.RECENCY, schemas.T)
#: Feature-table columns that are text, never numbers.
TEXT_FEATURES = ("rfm_score", schemas.RFM_SEGMENT, "historical_value_tier")
#: Counts and amounts that cannot be negative (checked when present).
NON_NEGATIVE_FEATURES = (
    schemas.FREQUENCY, schemas.RECENCY, schemas.T, schemas.MONETARY_VALUE, "tenure_days",
    "days_since_last_purchase", "n_purchase_days", "n_lines", "spend_per_purchase_day",
    "avg_order_value", "max_order_value", "avg_basket_quantity",
)
#: Numeric features that cannot be missing in a request.
NOT_MISSING_FEATURES = (schemas.FREQUENCY, schemas.RECENCY, schemas.T)
#: How the ``btyd`` form completes features it lacks (d = days per model time unit):
#: days_since_last_purchase = (T − recency)·d, tenure_days = T·d, n_purchase_days = frequency + 1
#: (frequency counts repeat purchase days), spend_per_purchase_day = monetary_value (one-time
#: buyers: the spend model's expected order value), total_spend = spend_per_purchase_day·(frequency + 1), then r/f/m scores, rfm_score, rfm_segment and
#: historical_value_tier with the edges and thresholds learnt at training; purchase_days_<w>d and
#: spend_<w>d = 0 when the last purchase is older than the window w. Others stay missing.
DERIVED_FROM_BTYD = (
    "days_since_last_purchase", "tenure_days", "n_purchase_days", "spend_per_purchase_day", "total_spend",
    "r_score", "f_score", "m_score", "rfm_score", schemas.RFM_SEGMENT, "historical_value_tier",
)
#: Columns the FeatureBuilder assigns from its learnt RFM edges and value-tier thresholds.
RFM_COLUMNS = ("r_score", "f_score", "m_score", "rfm_score", schemas.RFM_SEGMENT, "historical_value_tier")
TRANSACTION_TEXT = (schemas.ORDER_ID, schemas.PRODUCT, schemas.CATEGORY, schemas.CHANNEL)
TRANSACTION_NUMBERS = (schemas.AMOUNT, schemas.QUANTITY, schemas.UNIT_PRICE, schemas.COST, schemas.MARGIN)


#: ``(frequency, monetary_value) -> expected order value``: the spend model's estimate.
OrderValue = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ScorerInputError(UserInputError):
    """A scoring request the scorer cannot answer (HTTP 400 over REST)."""


def request_columns(input_columns: Sequence[str]) -> tuple[str, ...]:
    """The columns a request may send, in order: ``customer_id``, the customer table's features
    (``input_columns``), then the transaction columns. Others are ignored."""
    names = [schemas.CUSTOMER_ID, *(str(c) for c in input_columns if c != schemas.CUSTOMER_ID)]
    names += [c for c in (schemas.TIMESTAMP, *TRANSACTION_NUMBERS, *TRANSACTION_TEXT) if c not in names]
    return tuple(names)


def known_columns(frame: pd.DataFrame, input_columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with only the :func:`request_columns`, in their order (the frame itself when it
    already is); what MLflow's enforcement of the declared input columns used to do."""
    names = request_columns(input_columns)
    wanted = set(names)
    given = [c for c in frame.columns if c in wanted]
    if len(given) == len(frame.columns) and given == [c for c in names if c in frame.columns]:
        return frame
    return frame[[c for c in names if c in frame.columns]]


def input_form(frame: pd.DataFrame) -> str:
    """``transactions`` when a ``timestamp`` column is sent, else ``features`` or ``btyd``."""
    if schemas.TIMESTAMP in frame.columns:
        return FORM_TRANSACTIONS
    return FORM_BTYD if set(BTYD_REQUIRED) <= set(frame.columns) else FORM_FEATURES


def with_customer_index(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy indexed by ``customer_id`` as text (a column over REST, maybe the index locally)."""
    if not isinstance(frame, pd.DataFrame):
        raise ScorerInputError(f"the scorer takes a table (pandas DataFrame), got {type(frame).__name__}")
    if schemas.CUSTOMER_ID in frame.columns:
        table = frame.set_index(schemas.CUSTOMER_ID)
    elif frame.index.name == schemas.CUSTOMER_ID:
        table = frame.copy()
    else:
        raise ScorerInputError(
            f"the request needs a {schemas.CUSTOMER_ID!r} column (one row per customer, or one row per "
            f"transaction with 'timestamp' and 'amount'); got columns {[str(c) for c in frame.columns][:10]}"
        )
    missing = table.index.isna()
    if missing.any():
        raise ScorerInputError(
            f"column {schemas.CUSTOMER_ID!r} is empty in {int(missing.sum())} row(s) "
            f"(rows {_positions(np.flatnonzero(missing))}); give every row a customer id"
        )
    table.index = _id_index(table.index)
    return table


def customer_table_from_request(frame: pd.DataFrame, *, builder: Any, input_columns: Sequence[str],
                                time_unit: str, params: dict[str, Any] | None = None,
                                timezone: str | None = None,
                                order_value: OrderValue | None = None) -> tuple[pd.DataFrame, str]:
    """The checked customer table (indexed by customer id) the scorer takes, and the form it came in."""
    if isinstance(frame, pd.DataFrame):
        frame = known_columns(frame, input_columns)
    form = input_form(frame)
    table = with_customer_index(frame)
    if form == FORM_TRANSACTIONS:
        as_of = _as_of(params)
        table = _features_from_transactions(table, builder, as_of, timezone)
    else:
        missing = [c for c in BTYD_REQUIRED if c not in table.columns]
        if missing:
            raise ScorerInputError(
                f"the request lacks column(s) {missing}: send the customer table of `clvkit features`, "
                "a BTYD row (customer_id, frequency, recency, T, monetary_value), or transactions "
                f"(customer_id, timestamp, amount) with params {{\"{AS_OF_PARAM}\": \"YYYY-MM-DD\"}}"
            )
    if schemas.MONETARY_VALUE not in table.columns and schemas.MONETARY_VALUE in input_columns:
        if getattr(builder, "has_amount_", True):
            raise ScorerInputError(
                f"the request lacks {schemas.MONETARY_VALUE!r} (mean spend per repeat purchase day, 0 for "
                "one-time buyers): the spend model needs it"
            )
        table = table.assign(**{schemas.MONETARY_VALUE: 0.0})
    if table.index.duplicated().any():
        dupes = table.index[table.index.duplicated()].unique()
        raise ScorerInputError(
            f"column {schemas.CUSTOMER_ID!r} repeats {len(dupes)} id(s) ({_examples(dupes)}); "
            "send one row per customer"
        )
    table = _coerce_features(table, input_columns)
    check_customer_table(table)
    if form != FORM_TRANSACTIONS:
        form = FORM_FEATURES if all(c in table.columns for c in input_columns) else FORM_BTYD
    return complete_from_btyd(table, builder, input_columns, time_unit, order_value), form


def check_customer_table(table: pd.DataFrame) -> None:
    """Finite numbers; counts and amounts non-negative; BTYD columns present; recency ≤ T.

    The numeric columns are checked together as one float matrix; the first column (in table
    order) that breaks its rule is reported.
    """
    names = [c for c, dtype in table.dtypes.items() if c not in TEXT_FEATURES and pd.api.types.is_numeric_dtype(dtype)]
    matrix = table[names].to_numpy(dtype="float64", na_value=np.nan)
    money = np.array([c == schemas.MONETARY_VALUE for c in names])
    not_missing = np.array([c in NOT_MISSING_FEATURES for c in names]) | money
    non_negative = np.array([c in NON_NEGATIVE_FEATURES for c in names])
    with np.errstate(invalid="ignore"):
        bad = (np.isinf(matrix) | (np.isnan(matrix) & not_missing) | ((matrix < 0) & non_negative)
               | ((np.abs(matrix) > MAX_REQUEST_AMOUNT) & money))
    broken = np.flatnonzero(bad.any(axis=0))
    if broken.size:
        column = names[broken[0]]
        rule = "finite"
        if column in NON_NEGATIVE_FEATURES:
            rule = "a finite, non-negative number"
        if column == schemas.MONETARY_VALUE:
            rule = f"a finite, non-negative amount up to {MAX_REQUEST_AMOUNT:.0e}"
        _raise_rows(table, bad[:, broken[0]], column, f"must be {rule}")
    f, r, t = (matrix[:, names.index(c)] for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))
    _raise_rows(table, f != np.round(f), schemas.FREQUENCY, "must be a whole number (repeat purchase days)")
    _raise_rows(table, r > t + RECENCY_TOLERANCE_UNITS, schemas.RECENCY,
                "must not exceed T (the last purchase cannot come after the cut-off)", extra=schemas.T)
    _raise_rows(table, (f == 0) & (r > RECENCY_TOLERANCE_UNITS), schemas.RECENCY,
                "must be 0 when frequency is 0 (no repeat purchase)", extra=schemas.FREQUENCY)


def complete_from_btyd(table: pd.DataFrame, builder: Any, input_columns: Sequence[str],
                       time_unit: str, order_value: OrderValue | None = None) -> pd.DataFrame:
    """Add the features a minimal BTYD request lacks (see :data:`DERIVED_FROM_BTYD`).

    ``order_value(frequency, monetary_value)`` (the spend model's expected order value) stands in
    for the unknown spend of one-time buyers, whose ``monetary_value`` is 0 by definition.
    """
    missing = [c for c in input_columns if c not in table.columns]
    if not missing:
        return table[list(input_columns) + [c for c in table.columns if c not in input_columns]]
    days = DAYS_PER_TIME_UNIT[time_unit]
    f = table[schemas.FREQUENCY].to_numpy(dtype=float)
    r = table[schemas.RECENCY].to_numpy(dtype=float)
    t = table[schemas.T].to_numpy(dtype=float)
    spend = (table[schemas.MONETARY_VALUE].to_numpy(dtype=float) if schemas.MONETARY_VALUE in table
             else np.zeros(len(table)))
    given = {c: table[c].to_numpy() for c in table.columns}
    one_off = np.full(len(table), np.nan) if order_value is None else np.asarray(order_value(f, spend), dtype=float)
    per_day = np.where(f > 0, spend, one_off)
    derived: dict[str, np.ndarray] = {
        "days_since_last_purchase": np.round((t - r) * days),
        "tenure_days": np.round(t * days),
        "n_purchase_days": f + 1.0,
        "spend_per_purchase_day": per_day,
        "total_spend": per_day * (f + 1.0),
    }
    since = np.asarray(given.get("days_since_last_purchase", derived["days_since_last_purchase"]), dtype=float)
    for window in getattr(builder, "trailing_windows_days", ()):
        quiet = np.where(since > window, 0.0, np.nan)
        derived[f"purchase_days_{int(window)}d"] = quiet
        derived[f"spend_{int(window)}d"] = quiet
    source = {k: np.asarray(given.get(k, v), dtype=float) for k, v in derived.items()
              if k in ("days_since_last_purchase", "tenure_days", "n_purchase_days", "spend_per_purchase_day",
                       "total_spend")}
    out = {c: v for c, v in derived.items() if c not in given}
    if builder is not None and hasattr(builder, "feature_names_out_"):
        btyd = {schemas.FREQUENCY: f, schemas.RECENCY: r, schemas.T: t, schemas.MONETARY_VALUE: spend}
        out.update({k: v for k, v in _rfm_columns(builder, btyd, source, table.index).items() if k not in given})
    n = len(table)
    columns = {c: given[c] if c in given else out.get(c, np.full(n, np.nan)) for c in input_columns}
    columns.update({c: given[c] for c in table.columns if c not in columns})
    return pd.DataFrame(columns, index=table.index)


def _rfm_columns(builder: Any, btyd: dict[str, np.ndarray], source: dict[str, np.ndarray],
                 index: pd.Index) -> dict[str, np.ndarray]:
    """RFM scores, segment and historical tier exactly as the training FeatureBuilder assigns them."""
    from clvkit.features.builder import _Base

    behaviour = {c: np.full(len(index), np.nan) for c in builder.feature_names_out_
                 if c not in btyd and c not in RFM_COLUMNS}
    behaviour.update({k: np.nan_to_num(v, nan=0.0) for k, v in source.items()})
    try:
        finished = builder._finish(_Base(index, btyd, behaviour, ()))
    except Exception:  # a builder that cannot score these values: leave the columns missing
        logger.debug("could not derive RFM columns from the BTYD request", exc_info=True)
        return {}
    return {c: finished[c].to_numpy() for c in RFM_COLUMNS if c in finished.columns}


def _coerce_features(table: pd.DataFrame, input_columns: Sequence[str]) -> pd.DataFrame:
    """Numbers (int or float, JSON numbers or numeric text) as float64, the text features as text.

    Columns already numeric become one float matrix in a single conversion; only columns sent
    as text or mixed values are parsed one by one.
    """
    wanted = set(input_columns) | {*BTYD_REQUIRED, schemas.MONETARY_VALUE}
    dtypes = table.dtypes
    numeric = [c for c in table.columns if c not in TEXT_FEATURES and c in wanted
               and (pd.api.types.is_numeric_dtype(dtypes[c]) or pd.api.types.is_bool_dtype(dtypes[c]))]
    matrix = table[numeric].to_numpy(dtype="float64", na_value=np.nan)
    position = {c: j for j, c in enumerate(numeric)}
    out: dict[str, Any] = {}
    for column in table.columns:
        if column in position:
            out[column] = matrix[:, position[column]]
        elif column in TEXT_FEATURES and isinstance(dtypes[column], pd.StringDtype):
            out[column] = table[column]  # text already: nothing to convert
        elif column in TEXT_FEATURES:
            out[column] = table[column].map(lambda v: v if isinstance(v, str) else (None if pd.isna(v) else _id_text(v)))
        elif column in wanted:
            out[column] = _numbers(table[column], column, table.index)
        else:
            out[column] = table[column]
    return pd.DataFrame(out, index=table.index)


def _numbers(values: pd.Series, column: str, index: pd.Index) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna().to_numpy() & values.notna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"{index[i]}: {values.iloc[i]!r}" for i in rows[:MAX_EXAMPLE_ROWS])
        raise ScorerInputError(f"column {column!r} must hold numbers; {len(rows)} row(s) do not ({shown})")
    return parsed.astype("float64")


def _features_from_transactions(rows: pd.DataFrame, builder: Any, as_of: dt.date,
                                timezone: str | None) -> pd.DataFrame:
    """The customer table of the transactions as of ``as_of`` with the training FeatureBuilder."""
    from clvkit.features.margin import customer_margin_share

    if builder is None:
        raise ScorerInputError("this model was saved without its feature builder; send the customer table instead")
    if schemas.AMOUNT not in rows.columns:
        raise ScorerInputError(
            f"transactions need an {schemas.AMOUNT!r} column (revenue of the line); got {list(rows.columns)}"
        )
    transactions = rows.reset_index()
    transactions[schemas.TIMESTAMP] = _timestamps(transactions, timezone)
    for column in TRANSACTION_NUMBERS:
        if column in transactions.columns:
            values = _numbers(transactions[column], column, transactions.index)
            bad = ~np.isfinite(values.to_numpy()) | (values.abs().to_numpy() > MAX_REQUEST_AMOUNT)
            _raise_rows(transactions, bad, column, f"must be a finite number up to {MAX_REQUEST_AMOUNT:.0e} in size")
            transactions[column] = values
    for column in TRANSACTION_TEXT:
        if column in transactions.columns:
            transactions[column] = transactions[column].astype(str)
    limit = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    _raise_rows(transactions, (transactions[schemas.TIMESTAMP] >= limit).to_numpy(), schemas.TIMESTAMP,
                f"is after {AS_OF_PARAM}={as_of}; send only transactions up to the cut-off or a later {AS_OF_PARAM}")
    table = _lenient_builder(builder, transactions).transform(transactions, as_of=as_of)
    share = customer_margin_share(transactions, as_of)
    if share is not None:
        table = table.join(share.reindex(table.index).rename(schemas.MARGIN_SHARE))
    table.index = _id_index(table.index)
    return table


def _lenient_builder(builder: Any, transactions: pd.DataFrame) -> Any:
    """The builder, or a copy that leaves out the features of optional source columns (e.g. ``quantity``)
    the request does not send: those features are then missing, like in the ``btyd`` form."""
    from clvkit.features.behavioral import FEATURE_SOURCES

    absent = {c for c in getattr(builder, "source_columns_", ()) if c not in transactions.columns}
    if not absent:
        return builder
    lenient = copy.copy(builder)
    lenient.source_columns_ = tuple(c for c in builder.source_columns_ if c not in absent)
    lenient.feature_names_out_ = [c for c in builder.feature_names_out_ if FEATURE_SOURCES.get(c) not in absent]
    logger.debug("request lacks optional column(s) %s: their features are left missing", sorted(absent))
    return lenient


def _timestamps(transactions: pd.DataFrame, timezone: str | None) -> pd.Series:
    raw = transactions[schemas.TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = raw
    else:
        parsed = pd.to_datetime(raw.astype(str), format="ISO8601", errors="coerce", utc=True)
        parsed = parsed.dt.tz_convert(timezone or "UTC") if timezone else parsed
        parsed = parsed.dt.tz_localize(None)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(timezone or "UTC").dt.tz_localize(None)
    _raise_rows(transactions, parsed.isna().to_numpy(), schemas.TIMESTAMP,
                "must be an ISO date or date-time such as 1998-06-30 or 1998-06-30T14:05:00")
    return parsed.astype("datetime64[ns]")


def _as_of(params: dict[str, Any] | None) -> dt.date:
    value = (params or {}).get(AS_OF_PARAM)
    if value in (None, ""):
        raise ScorerInputError(
            f"transactions need the cut-off day: send params {{\"{AS_OF_PARAM}\": \"YYYY-MM-DD\"}} beside "
            "dataframe_split (features are built as of that day, whole day included)"
        )
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ScorerInputError(f"params {AS_OF_PARAM}={value!r} is not a date; use YYYY-MM-DD") from None


def _raise_rows(table: pd.DataFrame, bad: np.ndarray, column: str, rule: str, extra: str | None = None) -> None:
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    shown = []
    for i in rows[:MAX_EXAMPLE_ROWS]:
        key = table.index[i] if table.index.name == schemas.CUSTOMER_ID else table[schemas.CUSTOMER_ID].iloc[i]
        value = f"{column}={_fmt(table[column].iloc[i])}"
        if extra is not None:
            value += f", {extra}={_fmt(table[extra].iloc[i])}"
        shown.append(f"row {int(i)} (customer_id {key!s}): {value}")
    more = " ..." if len(rows) > MAX_EXAMPLE_ROWS else ""
    raise ScorerInputError(f"column {column!r} {rule}; {len(rows)} row(s) do not: {'; '.join(shown)}{more}")


def _positions(rows: np.ndarray) -> str:
    text = ", ".join(str(int(i)) for i in rows[:MAX_EXAMPLE_ROWS])
    return text + (" ..." if len(rows) > MAX_EXAMPLE_ROWS else "")


def _examples(values: Sequence[Any]) -> str:
    return ", ".join(repr(str(v)) for v in list(values)[:MAX_EXAMPLE_ROWS]) + (" ..." if len(values) > MAX_EXAMPLE_ROWS else "")


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float | np.floating) else repr(value)


def _id_index(index: pd.Index) -> pd.Index:
    """Customer ids as a text index (see :func:`_id_text`): whole columns of integers or text at once."""
    if pd.api.types.is_integer_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype):
        texts = np.asarray(index.astype(str), dtype=object)
    elif pd.api.types.infer_dtype(index, skipna=False) == "string":
        texts = np.asarray(index, dtype=object)
    else:
        texts = np.array([_id_text(v) for v in index], dtype=object)
    return pd.Index(texts, name=schemas.CUSTOMER_ID, dtype=object)


def _id_text(value: Any) -> str:
    """Customer ids as text; integral floats (JSON numbers) lose their '.0'."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
