"""The purchase models behind one interface, and a pure helper that compares them.

``PURCHASE_MODELS`` names the choices of ``models.purchase.model``:

* ``bgnbd`` -- BG/NBD (:class:`clvkit.models.bgnbd.BetaGeoModel`): dropout only after a repeat
  purchase, so P(alive) = 1 for customers without repeats;
* ``mbgnbd`` -- MBG/NBD (:class:`clvkit.models.mbgnbd.ModifiedBetaGeoModel`): dropout also
  right after the first purchase, P(alive) < 1 for one-time buyers;
* ``pnbd`` -- Pareto/NBD (:class:`clvkit.models.pareto_nbd.ParetoNBDModel`): dropout at any
  time (exponential lifetimes), P(alive) < 1 for one-time buyers.

All share the methods of :class:`clvkit.models._purchase_base.PurchaseModelBase`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from clvkit import schemas
from clvkit.exceptions import ClvkitError, UserInputError
from clvkit.models._purchase_base import PurchaseModelBase
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.mbgnbd import ModifiedBetaGeoModel
from clvkit.models.nbd import NBDModel
from clvkit.models.pareto_nbd import ParetoNBDModel

logger = logging.getLogger(__name__)

PURCHASE_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pnbd")
_CLASSES: dict[str, type[PurchaseModelBase]] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pnbd": ParetoNBDModel,
    "nbd": NBDModel,
}
#: What P(alive) means under each model (for documentation and run logs).
P_ALIVE_MEANING: dict[str, str] = {
    "bgnbd": "probability of not having dropped out; 1 for customers without repeat purchases "
    "(BG/NBD lets customers drop out only after a repeat purchase)",
    "mbgnbd": "probability of not having dropped out; below 1 for one-time buyers too (MBG/NBD lets "
    "customers drop out right after any purchase, including the first)",
    "pnbd": "probability that the customer's exponential lifetime has not ended by the cut-off; "
    "below 1 for every customer with a gap since the last purchase",
}

#: Columns of the comparison table of :func:`compare_purchase_models`.
COMPARISON_COLUMNS = (
    "log_likelihood", "n_params", "bic", "holdout_mae", "holdout_aggregate_error_pct",
    "holdout_expected", "holdout_actual", "degenerate", "error",
)


PurchaseModel = PurchaseModelBase


def make_purchase_model(name: str, *, penalizer: float = 0.0, random_state: int | None = None) -> PurchaseModelBase:
    """An unfitted purchase model by name (one of ``PURCHASE_MODELS``)."""
    if name not in PURCHASE_MODELS:
        raise UserInputError(
            f"models.purchase.model must be one of {list(PURCHASE_MODELS)} (or 'auto'), got {name!r}"
        )
    return _CLASSES[name](penalizer=penalizer, random_state=random_state)


def purchase_model_from_dict(state: Mapping[str, Any]) -> PurchaseModelBase:
    """Rebuild a fitted purchase model from its ``to_dict()`` (dispatch on the state's ``model``)."""
    kind = state.get("model")
    if kind not in _CLASSES:
        raise UserInputError(
            f"expected a serialised purchase model (one of {sorted(_CLASSES)}), got model={kind!r}"
        )
    return _CLASSES[kind].from_dict(state)


def compare_purchase_models(
    calibration_summary: pd.DataFrame,
    holdout_frequency: ArrayLike,
    duration_holdout: ArrayLike,
    candidates: Sequence[str] = PURCHASE_MODELS,
    *,
    penalizer: float = 0.0,
    sample_weight: ArrayLike | None = None,
    random_state: int | None = None,
) -> tuple[str, pd.DataFrame]:
    """Fit each candidate on a calibration summary and score it on the following window.

    Pass an INNER window of the training data (never the reported holdout). For each candidate
    the table reports the total log-likelihood, the number of parameters, BIC
    (``k ln n - 2 LL``), the holdout purchase MAE (mean over customers of |E[X] - actual|,
    weighted by ``sample_weight``) and the aggregate error (expected minus actual total
    purchases, % of actual). The best candidate has the lowest holdout MAE (ties: lower BIC).
    A candidate whose fit fails gets its error message and no figures.

    Parameters
    ----------
    calibration_summary : DataFrame
        ``frequency``, ``recency``, ``T`` at the inner cut-off.
    holdout_frequency : array_like
        Repeat purchases of each customer in the window after the cut-off.
    duration_holdout : float or array_like
        Length of that window in the summary's time unit (per customer or one for all).
    candidates : sequence of str
        Names from ``PURCHASE_MODELS``.

    Returns
    -------
    (str, DataFrame)
        The chosen name and one row per candidate (columns ``COMPARISON_COLUMNS``).
    """
    if not candidates:
        raise UserInputError("compare_purchase_models needs at least one candidate model")
    summary = calibration_summary
    actual = np.asarray(holdout_frequency, dtype=float)
    n = len(summary)
    if actual.shape != (n,) or not np.all(np.isfinite(actual)) or np.any(actual < 0):
        raise UserInputError(
            f"holdout_frequency must hold one finite count >= 0 per summary row ({n}), got shape {actual.shape}"
        )
    duration = np.broadcast_to(np.asarray(duration_holdout, dtype=float), (n,))
    if not np.all(np.isfinite(duration)) or np.any(duration <= 0):
        raise UserInputError("duration_holdout must be a positive length of the holdout window")
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))

    rows: dict[str, dict[str, Any]] = {}
    errors: list[ClvkitError] = []
    for name in candidates:
        model = make_purchase_model(name, penalizer=penalizer, random_state=random_state)
        row: dict[str, Any] = dict.fromkeys(COMPARISON_COLUMNS)
        try:
            model.fit(summary, sample_weight=sample_weight)
        except ClvkitError as exc:
            logger.warning("purchase model %s could not be fitted: %s", name, exc)
            row["error"] = str(exc)
            errors.append(exc)
            rows[name] = row
            continue
        expected = model.expected_purchases(duration, x, tx, T)
        total_weight = float(weights.sum())
        k = len(model.PARAM_NAMES)
        row.update(
            log_likelihood=model.log_likelihood_,
            n_params=k,
            bic=k * math.log(total_weight) - 2.0 * model.log_likelihood_,
            holdout_mae=float(np.dot(weights, np.abs(expected - actual)) / total_weight),
            holdout_expected=float(np.dot(weights, expected)),
            holdout_actual=float(np.dot(weights, actual)),
            degenerate=model.degenerate_,
        )
        row["holdout_aggregate_error_pct"] = (
            100.0 * (row["holdout_expected"] - row["holdout_actual"]) / row["holdout_actual"]
            if row["holdout_actual"] > 0 else float("nan")
        )
        rows[name] = row
        logger.info(
            "purchase model %s: log-likelihood %.2f, BIC %.2f, inner-holdout purchase MAE %.4f, "
            "aggregate error %.2f%%", name, row["log_likelihood"], row["bic"], row["holdout_mae"],
            row["holdout_aggregate_error_pct"],
        )
    table = pd.DataFrame.from_dict(rows, orient="index")[list(COMPARISON_COLUMNS)]
    table.index.name = "model"
    fitted = table[table["error"].isna()]
    if fitted.empty:
        raise errors[0]
    best = str(fitted.sort_values(["holdout_mae", "bic"], kind="stable").index[0])
    logger.info("purchase model chosen on the inner window: %s", best)
    return best, table
