"""Checks on a score table before anything is written or registered (pure).

A score can never be NaN or infinite, a probability lies in [0, 1], and counts, spend and
values of the future cannot be negative. A table that breaks this is refused as a whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvkit.constants import MAX_EXAMPLE_ROWS
from clvkit.exceptions import UserInputError

#: Output columns that are probabilities.
PROBABILITY_COLUMNS: tuple[str, ...] = ("p_alive", "churn_probability")
#: Output columns that cannot be negative.
NON_NEGATIVE_COLUMNS: tuple[str, ...] = (
    "expected_purchases", "expected_order_value", "clv", "clv_p10", "clv_p90", "churn_loss_value", "value_at_risk",
)
#: Output columns that must be finite but may be negative (margin after returns and costs).
FINITE_COLUMNS: tuple[str, ...] = ("current_value", "current_value_trailing")


class InvalidScoresError(UserInputError):
    """Scores that cannot be: NaN, infinite, negative where impossible, probabilities outside [0, 1]."""


def check_scores(scores: pd.DataFrame, *, id_column: str = "customer_id", what: str = "the scores") -> None:
    """Raise :class:`InvalidScoresError` naming each bad column, its count and example customers."""
    ids = scores[id_column].astype(str).to_numpy() if id_column in scores else scores.index.astype(str).to_numpy()
    problems = []
    for column in (*PROBABILITY_COLUMNS, *NON_NEGATIVE_COLUMNS, *FINITE_COLUMNS):
        if column not in scores:
            continue
        values = pd.to_numeric(scores[column], errors="coerce").to_numpy(dtype="float64")
        checks = [("non-finite (NaN or infinite)", ~np.isfinite(values))]
        with np.errstate(invalid="ignore"):
            if column in PROBABILITY_COLUMNS:
                checks.append(("outside [0, 1]", np.isfinite(values) & ((values < 0) | (values > 1))))
            elif column in NON_NEGATIVE_COLUMNS:
                checks.append(("negative", np.isfinite(values) & (values < 0)))
        for problem, mask in checks:
            if mask.any():
                shown = ", ".join(repr(i) for i in ids[mask][:MAX_EXAMPLE_ROWS])
                more = ", ..." if mask.sum() > MAX_EXAMPLE_ROWS else ""
                problems.append(f"column {column!r}: {int(mask.sum()):,} {problem} value(s) (customers {shown}{more})")
    if problems:
        raise InvalidScoresError(
            f"{what} are not valid, so nothing was written:\n  " + "\n  ".join(problems) + "\n"
            "Check the input for implausible values (data.validation.max_abs_amount bounds amounts) and the "
            "scoring date (--as-of); if the input is sound, retrain the model with clvkit train."
        )
