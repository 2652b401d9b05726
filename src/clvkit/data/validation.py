"""Validate raw transactions into canonical columns, with a policy per class of bad rows.

Every row read ends either in the canonical table (used) or in the quarantine table with
one reason, so that ``rows_read == rows_used + rows_quarantined``. Under an ``error``
policy all problems are collected and raised at once in one :class:`DataValidationError`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.config.models import ColumnMapping, ValidationPolicies
from clvkit.constants import MAX_EXAMPLE_ROWS, MAX_LISTED_COLUMNS
from clvkit.data.dates import describe_formats, parse_timestamps
from clvkit.exceptions import DataValidationError

__all__ = ["ROW_CLASSES", "ReconciliationReport", "ValidatedTransactions", "check_columns",
           "customer_id_categories", "duplicate_rows", "parse_timestamps", "validate_transactions"]

SOURCE_ROW = "source_row"
REASON = "reason"
UNMATCHED_RETURN = "unmatched_return"
AFTER_AS_OF = "after_as_of"
#: Text ids of up to this many bytes are hashed and sorted as one 64-bit integer.
_PACKED_ID_BYTES = 8
#: Odd 64-bit constant (2**64 / golden ratio) mixing the parts of a duplicate-row key.
_KEY_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class ReconciliationReport:
    """Row accounting of one ingestion: read = used + quarantined (by reason)."""

    rows_read: int
    rows_used: int
    quarantined: dict[str, int] = field(default_factory=dict)
    kept_flagged: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    first_date: str | None = None
    last_date: str | None = None

    @property
    def rows_quarantined(self) -> int:
        """Total rows set aside."""
        return sum(self.quarantined.values())

    @property
    def reconciles(self) -> bool:
        """True when every row read is accounted for."""
        return self.rows_read == self.rows_used + self.rows_quarantined

    def to_dict(self) -> dict[str, object]:
        """Plain dictionary, for JSON and MLflow."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_by_reason": dict(self.quarantined),
            "kept_flagged": dict(self.kept_flagged),
            "customers": self.customers,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "reconciles": self.reconciles,
        }

    def summary_lines(self) -> list[str]:
        """Human-readable reconciliation."""
        lines = [
            f"rows read {self.rows_read:,} = rows used {self.rows_used:,} "
            f"+ rows quarantined {self.rows_quarantined:,}"
        ]
        lines += [f"  quarantined, {reason}: {n:,}" for reason, n in sorted(self.quarantined.items())]
        lines += [f"  kept, {reason}: {n:,}" for reason, n in sorted(self.kept_flagged.items())]
        lines.append(f"customers {self.customers:,}, dates {self.first_date} to {self.last_date}")
        return lines


@dataclass(frozen=True)
class ValidatedTransactions:
    """The outcome of validation: canonical rows, quarantined rows and the accounting."""

    transactions: pd.DataFrame
    quarantine: pd.DataFrame
    report: ReconciliationReport


@dataclass(frozen=True)
class _RowClass:
    reason: str
    column: str
    problem: str
    mask: np.ndarray


def validate_transactions(
    raw: pd.DataFrame,
    columns: ColumnMapping,
    policies: ValidationPolicies,
    *,
    observation_end: object | None = None,
    timezone: str = "UTC",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    as_of: object | None = None,
) -> ValidatedTransactions:
    """Map, parse and check raw transactions; apply each class's policy.

    Classes (checked in this order; a row is counted under its first class): missing
    customer id, invalid timestamp, invalid amount (non-finite, or ``|amount|`` above
    ``policies.max_abs_amount``), exact duplicate row, after ``observation_end``, after
    ``as_of`` (the scoring date of ``clvkit predict``), zero amount, negative amount (returns).
    Without an amount column (``columns.has_amount`` false: a count-only log) the amount
    classes do not apply and the canonical table has no ``amount`` column.
    """
    check_columns(raw, columns)
    canonical = _canonical_frame(raw, columns, timezone, date_format, dayfirst)
    classes = _row_classes(raw, canonical, columns, policies, observation_end, as_of)
    assigned = np.zeros(len(raw), dtype=bool)
    reasons = np.zeros(len(raw), dtype=np.int8)  # index into REASONS; 0: the row is used
    errors: list[str] = []
    kept: dict[str, int] = {}
    for row_class in classes:
        mask = row_class.mask & ~assigned
        if not mask.any():
            continue
        policy = getattr(policies, row_class.reason)
        if policy == "net":
            continue
        if policy == "error":
            errors.append(_error_text(raw, row_class, mask, columns))
        elif policy == "keep":
            kept[row_class.reason] = int(mask.sum())
        else:
            reasons[mask] = REASONS.index(row_class.reason)
            assigned |= mask
    if errors:
        raise DataValidationError(
            f"{len(errors)} problem(s) in the transactions:\n\n" + "\n\n".join(errors)
        )
    if policies.negative_amount == "net" and schemas.AMOUNT in canonical:
        reasons, returns_netted = _net_returns(canonical, reasons)
        if returns_netted:
            kept["returns_netted"] = returns_netted
    return _assemble(raw, canonical, reasons, kept)


def check_columns(raw: pd.DataFrame, columns: ColumnMapping) -> None:
    """Raise naming every mapped column that the file lacks, and listing what it has."""
    problems = []
    for key, name in columns.model_dump().items():
        if name is not None and name not in raw.columns:
            close = difflib.get_close_matches(name, [str(c) for c in raw.columns], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if key == "amount" and not hint:
                hint = " (for a log without spend, a count-only log, set data.columns.amount: null)"
            problems.append(f"data.columns.{key} -> {name!r} is not in the file{hint}")
    if problems:
        existing = [str(c) for c in raw.columns]
        listed = ", ".join(repr(c) for c in existing[:MAX_LISTED_COLUMNS])
        more = f" and {len(existing) - MAX_LISTED_COLUMNS} more" if len(existing) > MAX_LISTED_COLUMNS else ""
        raise DataValidationError(
            "missing columns: " + "; ".join(problems) + f".\nThe file has columns: {listed}{more}.\n"
            "Fix: set data.columns.<name> to the file's column name (or null for optional columns)."
        )


def _canonical_frame(
    raw: pd.DataFrame, columns: ColumnMapping, timezone: str, date_format: str | None, dayfirst: bool | None
) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    out[schemas.CUSTOMER_ID] = customer_id_categories(raw[columns.customer_id])
    out[schemas.TIMESTAMP] = parse_timestamps(raw[columns.timestamp], timezone, date_format, dayfirst)
    if columns.has_amount:
        out[schemas.AMOUNT] = _amounts(raw, columns)
    for name in (schemas.QUANTITY, schemas.UNIT_PRICE, schemas.COST, schemas.MARGIN):
        source = getattr(columns, name)
        if source is not None:
            out[name] = pd.to_numeric(raw[source], errors="coerce").astype("float64")
    for name in (schemas.ORDER_ID, schemas.PRODUCT, schemas.CATEGORY, schemas.CHANNEL):
        source = getattr(columns, name)
        if source is not None:
            out[name] = raw[source].astype("string")
    return out


def customer_id_categories(ids: pd.Series) -> pd.Series:
    """Customer ids as text (stripped; blank = missing), factorised once into a ``category``.

    The categories are the distinct ids as ``str``, sorted, so that the codes order customers
    like the ids themselves; every later per-customer step reuses the codes instead of hashing
    the strings again. Ids keep their exact text (leading zeros included): the text of a
    value is what ``astype("string")`` gives it. The distinct values are converted and
    stripped, not every row; object columns (possibly mixed types, where ``1`` and ``1.0``
    hash alike) are converted row by row first.
    """
    if ids.dtype == object:
        ids = ids.astype("string")
    fixed = _fixed_width_factorize(ids)
    if fixed is not None:
        codes, uniques = fixed
        if not _has_blank_or_padding(uniques):  # distinct, sorted and stripped already: the categories
            dtype = pd.CategoricalDtype(pd.Index(uniques, dtype=str), ordered=False)
            row_codes = codes.astype(_code_dtype(len(uniques)), copy=False)
            return pd.Series(pd.Categorical.from_codes(row_codes, dtype=dtype, validate=False),
                             index=ids.index, name=ids.name)
    else:
        codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    text = pd.Series(uniques).astype("string").str.strip()
    text = text.mask(text == "").astype(str)
    final_codes, categories = pd.factorize(text, sort=True, use_na_sentinel=True)
    lookup = np.append(final_codes, -1).astype(_code_dtype(len(categories)))  # index -1 -> missing
    row_codes = lookup[codes]
    dtype = pd.CategoricalDtype(pd.Index(categories, dtype=str), ordered=False)
    return pd.Series(pd.Categorical.from_codes(row_codes, dtype=dtype, validate=False),
                     index=ids.index, name=ids.name)


def _fixed_width_factorize(ids: pd.Series) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray] | None:
    """Codes and sorted distinct values of Arrow-backed text ids that all have one byte length, else None.

    Such ids (``C0000001``, UUIDs: the common case) are fixed-width byte strings, which hash and
    sort as plain integers (up to 8 bytes: one big-endian ``uint64``, whose order is the bytes'
    order, which is the text's code-point order in UTF-8) or as fixed-size binary values: several
    times faster than hashing variable-length strings. Missing ids, mixed lengths, or another
    storage: None (the caller factorises the text itself).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not hasattr(ids.array, "__arrow_array__") or not len(ids):
        return None
    chunks = pa.chunked_array(ids.array.__arrow_array__()).chunks
    if not chunks or not all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks):
        return None
    if any(c.null_count for c in chunks):
        return None
    width, parts = None, []
    for chunk in chunks:
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)[chunk.offset:chunk.offset + len(chunk) + 1]
        lengths = np.diff(offsets)
        width = int(lengths[0]) if width is None else width
        if width == 0 or not (lengths == width).all():
            return None
        parts.append(np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]])
    data = parts[0] if len(parts) == 1 else np.concatenate(parts)
    n_rows = len(ids)
    if width <= _PACKED_ID_BYTES:
        padded = data.reshape(n_rows, width)
        if width < _PACKED_ID_BYTES:
            padded = np.zeros((n_rows, _PACKED_ID_BYTES), dtype=np.uint8)
            padded[:, :width] = data.reshape(n_rows, width)
        values = pa.array(padded.reshape(-1).view(">u8").astype(np.uint64))
    else:
        values = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n_rows, [None, pa.py_buffer(data)])
    encoded = pc.dictionary_encode(values)
    dictionary = encoded.dictionary
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    codes = rank[encoded.indices.to_numpy()]
    ordered = dictionary.take(pa.array(order))
    if width <= _PACKED_ID_BYTES:
        raw = ordered.to_numpy().astype(">u8").view(np.uint8).reshape(-1, _PACKED_ID_BYTES)[:, :width]
        ordered = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), order.size,
                                                       [None, pa.py_buffer(np.ascontiguousarray(raw))])
    text = ordered.cast(pa.binary()).cast(pa.string())  # the ids' own bytes: valid UTF-8
    return codes, pd.array(text, dtype=ids.dtype if isinstance(ids.dtype, pd.StringDtype) else "str")


def _has_blank_or_padding(uniques: pd.api.extensions.ExtensionArray) -> bool:
    """True when a value is empty or has leading/trailing whitespace (``str.strip`` would change it)."""
    text = pd.Series(uniques)
    return bool((text.str.strip() != text).any() or (text == "").any())


def _code_dtype(n_categories: int) -> type[np.signedinteger]:
    """The smallest signed integer type pandas uses for ``n_categories`` category codes."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_categories < np.iinfo(dtype).max:
            return dtype
    return np.int64


def _amounts(raw: pd.DataFrame, columns: ColumnMapping) -> pd.Series:
    if columns.amount is not None:
        return pd.to_numeric(raw[columns.amount], errors="coerce").astype("float64")
    quantity = pd.to_numeric(raw[columns.quantity], errors="coerce").astype("float64")
    price = pd.to_numeric(raw[columns.unit_price], errors="coerce").astype("float64")
    return quantity * price


def _row_classes(
    raw: pd.DataFrame, canonical: pd.DataFrame, columns: ColumnMapping, policies: ValidationPolicies,
    observation_end: object | None, as_of: object | None,
) -> list[_RowClass]:
    amount_col = columns.amount or f"{columns.quantity} × {columns.unit_price}"
    timestamps = canonical[schemas.TIMESTAMP]
    mapped = [c for c in columns.model_dump().values() if c is not None]
    classes = [
        _RowClass("missing_customer_id", columns.customer_id, "have no customer id",
                  canonical[schemas.CUSTOMER_ID].isna().to_numpy()),
        _RowClass("invalid_timestamp", columns.timestamp, "have a missing or unparseable timestamp",
                  timestamps.isna().to_numpy()),
    ]
    amount = canonical[schemas.AMOUNT].to_numpy() if schemas.AMOUNT in canonical else None
    if amount is not None:
        bound = policies.max_abs_amount
        with np.errstate(invalid="ignore"):
            implausible = ~np.isfinite(amount) | (np.abs(amount) > bound)
        classes.append(_RowClass(
            "invalid_amount", amount_col,
            f"have a non-numeric, NaN, infinite or implausible amount (|amount| > {bound:g}, "
            "data.validation.max_abs_amount)", implausible))
    classes.append(_RowClass("duplicate_rows", ", ".join(mapped), "are exact duplicates of an earlier row",
                             duplicate_rows(raw, canonical, mapped, columns.customer_id)))
    for reason, date, what in (("after_observation_end", observation_end, "data.observation_end"),
                               (AFTER_AS_OF, as_of, "the scoring date as_of")):
        if date is not None:
            limit = pd.Timestamp(date).normalize() + pd.Timedelta(days=1)
            classes.append(_RowClass(reason, columns.timestamp,
                                     f"are dated after {what} ({pd.Timestamp(date).date()})",
                                     (timestamps >= limit).to_numpy()))
    if amount is not None:
        classes.append(_RowClass("zero_amount", amount_col, "have a zero amount", amount == 0))
        classes.append(_RowClass("negative_amount", amount_col, "have a negative amount (returns)", amount < 0))
    return classes


def duplicate_rows(raw: pd.DataFrame, canonical: pd.DataFrame, mapped: list[str], id_column: str) -> np.ndarray:
    """``raw.duplicated(subset=mapped, keep="first")``, exactly, without hashing every raw column.

    Equal raw rows have equal canonical values, so a 64-bit key combining the canonical id
    codes, timestamps and numeric columns is equal for them: only rows whose key occurs more
    than once can be duplicates, and those few candidates are compared exactly on the raw
    columns (pandas ``duplicated``, original order, so the first of each group is kept). Raw
    ids of object dtype are keyed by their own codes: there ``1 == 1.0`` although their texts differ.
    """
    key = np.zeros(len(canonical), dtype=np.uint64)
    for column in canonical.columns:
        if column == schemas.CUSTOMER_ID and raw[id_column].dtype == object:
            part = pd.factorize(raw[id_column])[0].astype(np.int64).view(np.uint64)
        else:
            part = _key_part(canonical[column])
        if part is not None:
            key = (key * _KEY_MULTIPLIER) ^ part  # uint64 arithmetic wraps: a hash, not a value
    candidates = repeated_positions(key)
    duplicated = np.zeros(len(canonical), dtype=bool)
    if candidates.size:
        duplicated[candidates] = raw.iloc[candidates].duplicated(subset=mapped, keep="first").to_numpy()
    return duplicated


def repeated_positions(key: np.ndarray) -> np.ndarray:
    """Positions (ascending) of the entries of ``key`` whose value occurs more than once.

    One sort of the keys finds the repeated values (a vectorised sort is several times faster
    than a hash table over millions of random 64-bit keys); each key is then looked up among
    those few values by binary search.
    """
    ordered = np.sort(key)
    equal = ordered[1:] == ordered[:-1]
    if not equal.any():
        return np.empty(0, dtype=np.intp)
    repeated = np.unique(ordered[1:][equal])
    where = np.searchsorted(repeated, key)
    np.minimum(where, repeated.size - 1, out=where)
    return np.flatnonzero(repeated[where] == key)


def _key_part(column: pd.Series) -> np.ndarray | None:
    """uint64 values equal for equal entries (categorical codes, datetimes, floats); None for text."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64).view(np.uint64)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.to_numpy().view(np.int64).view(np.uint64)
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64) + 0.0  # -0.0 -> 0.0: equal floats, equal bits
        values[np.isnan(values)] = np.nan  # one NaN bit pattern
        return values.view(np.uint64)
    return None


def _net_returns(canonical: pd.DataFrame, reasons: np.ndarray) -> tuple[np.ndarray, int]:
    """Net returns against same-customer same-day spend; quarantine those that cannot be netted."""
    amount = canonical[schemas.AMOUNT].to_numpy()
    usable = reasons == 0
    negative = (amount < 0) & usable
    if not negative.any():
        return reasons, 0
    reasons = reasons.copy()
    unmatched = _unmatched_returns(canonical, usable, negative) & negative
    reasons[unmatched] = REASONS.index(UNMATCHED_RETURN)
    return reasons, int(negative.sum() - unmatched.sum())


def _unmatched_returns(canonical: pd.DataFrame, usable: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Returns whose customer-day has no positive spend, or whose day nets below zero.

    Only the customer-days holding a return are grouped (by an int64 key of customer code and
    day number; rows set aside count 0). Their sums are pandas' group sums over the same rows in
    the same order as a full-frame groupby, so the signs tested are the same.
    """
    codes = canonical[schemas.CUSTOMER_ID].cat.codes.to_numpy().astype(np.int64)
    stamps = canonical[schemas.TIMESTAMP].to_numpy()
    rows = np.flatnonzero((codes >= 0) & ~np.isnat(stamps))
    days = stamps[rows].astype("datetime64[D]").view(np.int64)
    first_day = int(days.min())
    key = codes[rows] * (int(days.max()) - first_day + 1) + (days - first_day)
    in_return_day = pd.Series(key, copy=False).isin(key[negative[rows]]).to_numpy()
    group_rows = rows[in_return_day]
    amount = pd.Series(np.where(usable[group_rows], canonical[schemas.AMOUNT].to_numpy()[group_rows], 0.0))
    groups = pd.factorize(key[in_return_day])[0]
    day_positive = amount.clip(lower=0).groupby(groups, sort=False).transform("sum").to_numpy()
    day_total = amount.groupby(groups, sort=False).transform("sum").to_numpy()
    unmatched = np.zeros(len(canonical), dtype=bool)
    unmatched[group_rows] = (day_positive <= 0) | (day_total < 0)
    return unmatched


def _assemble(
    raw: pd.DataFrame, canonical: pd.DataFrame, reasons: np.ndarray, kept: dict[str, int]
) -> ValidatedTransactions:
    used = reasons == 0
    set_aside = np.flatnonzero(~used)
    quarantine = raw.iloc[set_aside].astype("string")
    quarantine.insert(0, SOURCE_ROW, set_aside + 1)
    reason_names = np.asarray(REASONS, dtype=object)[reasons[set_aside]]
    quarantine[REASON] = reason_names
    clean = canonical if not set_aside.size else canonical.iloc[np.flatnonzero(used)]
    clean = clean.reset_index(drop=True)
    if set_aside.size:  # otherwise every category has a row: they are the distinct ids of the rows
        clean[schemas.CUSTOMER_ID] = _used_categories(clean[schemas.CUSTOMER_ID])
    counts = pd.Series(reason_names, dtype=object).value_counts()
    stamps = clean[schemas.TIMESTAMP]
    report = ReconciliationReport(
        rows_read=len(raw),
        rows_used=int(used.sum()),
        quarantined={str(k): int(v) for k, v in counts.items()},
        kept_flagged=kept,
        customers=len(clean[schemas.CUSTOMER_ID].cat.categories),
        first_date=str(stamps.min().date()) if len(clean) else None,
        last_date=str(stamps.max().date()) if len(clean) else None,
    )
    return ValidatedTransactions(clean, quarantine.reset_index(drop=True), report)


def _used_categories(ids: pd.Series) -> pd.Series:
    """The ids with only the categories that occur (customers whose rows were all set aside go)."""
    codes = ids.cat.codes.to_numpy()
    categories = ids.cat.categories
    present = np.bincount(codes.astype(np.intp), minlength=len(categories)) > 0  # no missing ids here
    if present.all():
        return ids
    lookup = (np.cumsum(present) - 1).astype(codes.dtype)
    dtype = pd.CategoricalDtype(categories[present], ordered=False)
    return pd.Series(pd.Categorical.from_codes(lookup[codes], dtype=dtype, validate=False),
                     index=ids.index, name=ids.name)


def _error_text(raw: pd.DataFrame, row_class: _RowClass, mask: np.ndarray, columns: ColumnMapping) -> str:
    rows = np.flatnonzero(mask)
    shown = rows[:MAX_EXAMPLE_ROWS]
    mapped = [c for c in columns.model_dump().values() if c is not None]
    examples = raw.iloc[shown][mapped].copy()
    examples.index = pd.Index(shown + 1, name="row")
    row_list = ", ".join(str(r + 1) for r in shown) + (", ..." if rows.size > shown.size else "")
    formats = ""
    if row_class.reason == "invalid_timestamp":
        values = raw[columns.timestamp].iloc[rows].astype("string").str.strip()
        formats = f"Their formats:\n{describe_formats(values, rows + 1)}\n"
    return (
        f"[{row_class.reason}] column {row_class.column!r}: {rows.size:,} row(s) {row_class.problem} "
        f"(rows {row_list}; row = data row number, 1-based):\n{examples.to_string()}\n{formats}"
        f"Fix the data, or set data.validation.{row_class.reason}: quarantine to set these rows "
        f"aside in the quarantine file."
    )


#: For tests and docs: the classes in the order they are checked.
ROW_CLASSES: tuple[str, ...] = (
    "missing_customer_id", "invalid_timestamp", "invalid_amount", "duplicate_rows",
    "after_observation_end", AFTER_AS_OF, "zero_amount", "negative_amount",
)
#: Reason codes of the validation (index 0: the row is used).
REASONS: tuple[str, ...] = ("", *ROW_CLASSES, UNMATCHED_RETURN)

