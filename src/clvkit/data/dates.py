"""Strict timestamp parsing: one date format per column, detected on a sample, then one full parse.

A column whose values are written in more than one format (ISO 8601 next to 03/25/1997 next to
25/03/1997), or whose day/month order cannot be told, is refused with the formats seen, example
rows and the fix, instead of being read silently wrong. Year-first forms (``1997-03-25``,
``1997/03/25``, ``19970325``, with or without a time or UTC offset) are one family: they cannot be
misread.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from clvkit.constants import DATE_FORMAT_SAMPLE_ROWS, MAX_EXAMPLE_ROWS
from clvkit.exceptions import DataValidationError

#: A UTC offset after a time of day (a bare "-1997" ending "25-03-1997" is not one).
_OFFSET_PATTERN = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)? *(?:Z|[+-]\d{2}:?\d{2})$"
_TIME = r"(?:[ T].*)?$"
_YEAR_FIRST = rf"^(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{4}}/\d{{1,2}}/\d{{1,2}}|\d{{8}}){_TIME}"
_DAY_MONTH = rf"^(\d{{1,2}})([/.-])(\d{{1,2}})\2(\d{{4}}|\d{{2}}){_TIME}"
#: (matched on lower-cased text: inline flags and \s send pandas to a slow per-value regex path)
_MONTH_NAME = r"(?:^|[^a-z])(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*(?:[^a-z]|$)"
_MONTHS_PER_YEAR = 12

YEAR_FIRST = "year_first"
MONTH_DAY_YEAR = "month_day_year"
DAY_MONTH_YEAR = "day_month_year"
DAY_MONTH_AMBIGUOUS = "day_month_ambiguous"
MONTH_NAME = "month_name"
UNRECOGNISED = "unrecognised"

#: How each format family is named in messages.
FAMILY_LABELS: dict[str, str] = {
    YEAR_FIRST: "year-month-day (ISO 8601, e.g. 1997-03-25)",
    MONTH_DAY_YEAR: "month/day/year (e.g. 03/25/1997)",
    DAY_MONTH_YEAR: "day/month/year (e.g. 25/03/1997)",
    DAY_MONTH_AMBIGUOUS: "day and month both <= 12 (e.g. 03/04/1997: 4 March or 3 April?)",
    MONTH_NAME: "with a month name (e.g. 25 Mar 1997)",
    UNRECOGNISED: "not a recognised date",
}
_SLASH_FAMILIES = (MONTH_DAY_YEAR, DAY_MONTH_YEAR, DAY_MONTH_AMBIGUOUS)


@dataclass(frozen=True)
class _Choice:
    family: str | None
    dayfirst: bool


def parse_timestamps(
    values: pd.Series, timezone: str, date_format: str | None = None, dayfirst: bool | None = None
) -> pd.Series:
    """Parse to tz-naive local time in ``timezone``; UTC offsets are converted, naive values kept.

    With ``date_format`` every value is parsed with it; otherwise the column's format is detected
    (:func:`detect_format`). Values that do not parse become ``NaT`` (the ``invalid_timestamp`` class),
    unless they are dates in another format: then :class:`DataValidationError` names the formats.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(timezone).dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    column = str(values.name) if values.name is not None else "timestamp"
    choice = None if date_format else detect_format(text, column, dayfirst)
    with_offset = text.str.contains(_OFFSET_PATTERN, regex=True, na=False).to_numpy()
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if with_offset.any():
        offset_format = date_format or "ISO8601"
        aware = pd.to_datetime(text[with_offset], utc=True, errors="coerce", format=offset_format)
        result[with_offset] = aware.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[us]")
    naive = ~with_offset
    if naive.any():
        part = text[naive]
        result[naive] = (pd.to_datetime(part, errors="coerce", format=date_format) if date_format
                         else _parse_family(part, choice)).astype("datetime64[us]")
    if choice is not None:
        _check_failures(text, result, column, choice)
    return result


def detect_format(text: pd.Series, column: str, dayfirst: bool | None) -> _Choice:
    """The one format family of a column, detected on a sample of its values.

    Raises :class:`DataValidationError` when the sample holds more than one family, when
    day/month order contradicts ``dayfirst``, or when it cannot be told and ``dayfirst`` is None.
    """
    present = text.dropna()
    step = max(1, len(present) // DATE_FORMAT_SAMPLE_ROWS)
    sample = present.iloc[::step]
    families = set(classify_dates(sample).unique()) - {UNRECOGNISED}
    slash = families & set(_SLASH_FAMILIES)
    if {MONTH_DAY_YEAR, DAY_MONTH_YEAR} <= slash or len(families - slash) + bool(slash) > 1:
        raise mixed_formats_error(text, column)
    if not families:
        return _Choice(None, bool(dayfirst))
    if not slash:
        return _Choice(families.pop(), bool(dayfirst))
    if DAY_MONTH_AMBIGUOUS in slash and len(slash) == 1:
        # the sample cannot tell: look at the whole column once (rare: few distinct days)
        slash = set(classify_dates(present).unique()) & set(_SLASH_FAMILIES)
        if {MONTH_DAY_YEAR, DAY_MONTH_YEAR} <= slash:
            raise mixed_formats_error(text, column)
    if DAY_MONTH_YEAR in slash:
        if dayfirst is False:
            raise _order_error(text, column, DAY_MONTH_YEAR)
        return _Choice(DAY_MONTH_YEAR, True)
    if MONTH_DAY_YEAR in slash:
        if dayfirst is True:
            raise _order_error(text, column, MONTH_DAY_YEAR)
        return _Choice(MONTH_DAY_YEAR, False)
    if dayfirst is None:
        raise _ambiguous_error(text, column)
    return _Choice(DAY_MONTH_YEAR if dayfirst else MONTH_DAY_YEAR, dayfirst)


def classify_dates(text: pd.Series) -> pd.Series:
    """Format family of each value (see :data:`FAMILY_LABELS`); vectorised."""
    text = text.astype("string")
    family = np.full(len(text), UNRECOGNISED, dtype=object)
    family[text.str.lower().str.contains(_MONTH_NAME, regex=True, na=False).to_numpy()] = MONTH_NAME
    family[text.str.match(_YEAR_FIRST, na=False).to_numpy()] = YEAR_FIRST
    slash = text.str.match(_DAY_MONTH, na=False).to_numpy()
    if slash.any():
        parts = text[slash].str.extract(_DAY_MONTH)
        first = pd.to_numeric(parts[0]).to_numpy()
        second = pd.to_numeric(parts[2]).to_numpy()
        kind = np.where(first > _MONTHS_PER_YEAR, DAY_MONTH_YEAR,
                        np.where(second > _MONTHS_PER_YEAR, MONTH_DAY_YEAR, DAY_MONTH_AMBIGUOUS))
        family[slash] = kind
    return pd.Series(family, index=text.index)


def describe_formats(text: pd.Series, row_numbers: np.ndarray | None = None) -> str:
    """Lines '<family>: N row(s), e.g. rows ... ('...')' for the values in ``text``."""
    families = classify_dates(text).to_numpy()
    rows = np.arange(1, len(text) + 1) if row_numbers is None else row_numbers
    lines = []
    for family in FAMILY_LABELS:
        where = np.flatnonzero(families == family)
        if where.size == 0:
            continue
        shown = where[:MAX_EXAMPLE_ROWS]
        examples = ", ".join(f"{rows[i]} ({text.iloc[i]!r})" for i in shown)
        more = ", ..." if where.size > shown.size else ""
        lines.append(f"  {FAMILY_LABELS[family]}: {where.size:,} row(s), e.g. rows {examples}{more}")
    return "\n".join(lines)


def mixed_formats_error(text: pd.Series, column: str) -> DataValidationError:
    """The error of a column holding dates in more than one format."""
    present = text.notna().to_numpy()
    rows = np.flatnonzero(present) + 1
    return DataValidationError(
        f"[mixed_date_formats] column {column!r}: the dates are written in more than one format, so some "
        f"would be read wrongly (row = data row number, 1-based):\n{describe_formats(text[present], rows)}\n"
        f"{_FIX}"
    )


_FIX = (
    "Fix: write the column in one format (ISO 8601, YYYY-MM-DD, is safest); or set data.date_format "
    "(e.g. '%m/%d/%Y') to read one format and data.validation.invalid_timestamp: quarantine to set the "
    "other rows aside; for DD/MM/YYYY dates set data.dayfirst: true (false for MM/DD/YYYY)."
)


def _order_error(text: pd.Series, column: str, seen: str) -> DataValidationError:
    setting = "true" if seen == MONTH_DAY_YEAR else "false"
    present = text.notna().to_numpy()
    return DataValidationError(
        f"[mixed_date_formats] column {column!r}: data.dayfirst is {setting} but the dates are "
        f"{FAMILY_LABELS[seen]}:\n{describe_formats(text[present], np.flatnonzero(present) + 1)}\n"
        f"Fix: set data.dayfirst: {'false' if setting == 'true' else 'true'} (or remove it to detect the order)."
    )


def _ambiguous_error(text: pd.Series, column: str) -> DataValidationError:
    present = text.notna().to_numpy()
    return DataValidationError(
        f"[ambiguous_date_format] column {column!r}: every date has day and month both <= 12, so "
        f"03/04/1997 could be 4 March or 3 April:\n{describe_formats(text[present], np.flatnonzero(present) + 1)}\n"
        "Fix: set data.dayfirst: true for DD/MM/YYYY or false for MM/DD/YYYY (or data.date_format, "
        "e.g. '%d/%m/%Y')."
    )


def _parse_family(text: pd.Series, choice: _Choice | None) -> pd.Series:
    """Parse with the chosen family: ISO 8601 for year-first, exact formats per value shape otherwise."""
    if choice is not None and choice.family == YEAR_FIRST:
        return pd.to_datetime(text, errors="coerce", format="ISO8601")
    dayfirst = bool(choice and choice.dayfirst)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    remaining = text.notna().to_numpy().copy()
    for fmt in _formats_of_shapes(text, dayfirst):
        if not remaining.any():
            break
        part = pd.to_datetime(text[remaining], errors="coerce", format=fmt)
        parsed[remaining] = part.astype("datetime64[us]")
        remaining = remaining & parsed.isna().to_numpy()
    if remaining.any() and (choice is None or choice.family == MONTH_NAME):
        # values no exact format read (free-form text dates): dateutil, value by value
        parsed[remaining] = pd.to_datetime(
            text[remaining], errors="coerce", format="mixed", dayfirst=dayfirst
        ).astype("datetime64[us]")
    return parsed


def _formats_of_shapes(text: pd.Series, dayfirst: bool) -> list[str]:
    """One strftime format per distinct value shape (digits -> 9) seen in a sample."""
    present = text.dropna()
    sample = present.iloc[:: max(1, len(present) // DATE_FORMAT_SAMPLE_ROWS)]
    shapes = sample.str.replace(r"\d", "9", regex=True)
    examples = sample.groupby(shapes.to_numpy(), sort=False).first()
    formats: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for value in examples:
            fmt = _slash_format(str(value), dayfirst) or guess_datetime_format(str(value), dayfirst=dayfirst)
            if fmt and fmt not in formats:
                formats.append(fmt)
    return formats


def _slash_format(value: str, dayfirst: bool) -> str | None:
    """strftime format of a day/month/year value (two- or four-digit year, optional time)."""
    match = re.match(_DAY_MONTH, value)
    if match is None:
        return None
    sep, year = match.group(2), "%Y" if len(match.group(4)) == 4 else "%y"
    date_part = f"%d{sep}%m{sep}{year}" if dayfirst else f"%m{sep}%d{sep}{year}"
    rest = value[match.end(4):]
    if not rest:
        return date_part
    probe = guess_datetime_format(f"2000-01-01{rest}")
    return date_part + probe.removeprefix("%Y-%m-%d") if probe and probe.startswith("%Y-%m-%d") else None


def _check_failures(text: pd.Series, parsed: pd.Series, column: str, choice: _Choice) -> None:
    """Values that failed under the detected format but are dates in another format: refuse."""
    failed = (parsed.isna() & text.notna()).to_numpy()
    if not failed.any():
        return
    families = set(classify_dates(text[failed]).unique()) - {UNRECOGNISED}
    if choice.family in _SLASH_FAMILIES:
        families -= {choice.family, DAY_MONTH_AMBIGUOUS}
    else:
        families.discard(choice.family)
    if families:
        raise mixed_formats_error(text, column)
