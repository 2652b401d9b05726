"""The MLflow pyfunc adapter of the combined scorer: it only loads state and delegates.

The artifact is a directory of JSON files (fitted parameters as numbers, XGBoost models in
XGBoost's JSON format, the feature builder's fitted state): no pickled lifetimes objects and
no training data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from clvkit import schemas
from clvkit.constants import MAX_EXAMPLE_ROWS
from clvkit.exceptions import FeatureMismatchError, UserInputError
from clvkit.io.artifact import (  # noqa: F401  (re-exported: the artifact lives in io.artifact, without MLflow)
    STATE_FILE,
    VERSIONED_PACKAGES,
    check_versions,
    installed_versions,
    load_scorer_state,
    save_scorer_state,
)
from clvkit.io.scorer_input import FORM_BTYD, ScorerInputError, customer_table_from_request

logger = logging.getLogger(__name__)

ARTIFACT_KEY = "scorer"


class ClvScorerModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper. Input: the customer table, a minimal BTYD row or raw transactions with
    ``params={"as_of": "YYYY-MM-DD"}`` (see :mod:`clvkit.io.scorer_input`); output: ``customer_id``
    + the scorer's columns. A request the scorer cannot answer raises an MlflowException with
    INVALID_PARAMETER_VALUE (HTTP 400) whose message names the column and rows."""

    def load_context(self, context: Any) -> None:
        """Rebuild the pure scorer (and the feature builder) from the artifact directory."""
        from clvkit.features.builder import FeatureBuilder
        from clvkit.models.scorer import ClvScorer

        state, boosters = load_scorer_state(Path(context.artifacts[ARTIFACT_KEY]))
        self._scorer = ClvScorer.from_dict(state["scorer"], boosters)
        builder_state = state.get("feature_builder")
        self._builder = FeatureBuilder.from_dict(builder_state) if builder_state else None
        self.metadata = {k: v for k, v in state.items() if k not in {"scorer", "boosters"}}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Scores per customer: ``customer_id`` + the scorer's output columns."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

        try:
            return self.score_request(model_input, params)
        except UserInputError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        except Exception as exc:  # the server's last line of defence: no stack trace to the client
            logger.exception("scoring failed")
            raise MlflowException(f"internal error while scoring ({type(exc).__name__}); see the server log",
                                  error_code=INTERNAL_ERROR) from None

    def score_request(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Check and complete the request, then score (raises UserInputError on a bad request)."""
        data = self.metadata.get("data", {})
        spend_model = getattr(self._scorer, "gamma_gamma", None)
        table, form = customer_table_from_request(
            model_input, builder=self._builder, input_columns=self._scorer.input_columns,
            time_unit=self._scorer.settings.time_unit, params=params, timezone=data.get("timezone"),
            order_value=spend_model.expected_order_value if spend_model is not None else None,
        )
        logger.debug("scoring %d customer(s) sent as %s", len(table), form)
        scores = self._scorer.score(table)
        check_finite_scores(scores, form)
        return scores.rename_axis(schemas.CUSTOMER_ID).reset_index()


def check_finite_scores(scores: pd.DataFrame, form: str) -> None:
    """No NaN or infinite score leaves the scorer: from a minimal request it is a 400 saying what to
    send; from a full customer table or transactions it is a fault (500, details in the server log)."""
    numeric = scores.select_dtypes(include="number")
    bad = ~np.isfinite(numeric.to_numpy(dtype=float))
    if not bad.any():
        return
    rows = np.flatnonzero(bad.any(axis=1))
    columns = [str(c) for c in numeric.columns[bad.any(axis=0)]]
    ids = ", ".join(str(i) for i in scores.index[rows[:MAX_EXAMPLE_ROWS]])
    if form == FORM_BTYD:
        raise ScorerInputError(
            f"{len(rows)} customer(s) ({ids}) cannot be scored from frequency, recency, T and monetary_value "
            f"alone: {columns} would be undefined; add the missing feature columns (the table of "
            "`clvkit features`) or send their transactions with params {\"as_of\": \"YYYY-MM-DD\"}"
        )
    raise RuntimeError(f"non-finite scores {columns} for {len(rows)} customer(s) ({ids})")


def scorer_signature(input_table: pd.DataFrame, output_example: pd.DataFrame) -> Any:
    """The signature: the output columns and the ``as_of`` param (YYYY-MM-DD, transactions form).

    No input schema is declared. Every input column would have to be optional and of MLflow's
    ``Any`` type (MLflow refuses JSON integers for a double column, and a missing optional
    column is the point of the minimal forms), and MLflow enforces ``Any`` columns value by
    value: ~8 ms of a 1-row request and ~120 ms of a 1,000-row one (``bench/bench_serving.py``)
    for no check the scorer does not make itself. The columns a request may send are
    :func:`clvkit.io.scorer_input.request_columns` of ``input_table``'s columns (``customer_id``,
    the features, the transaction columns; see :mod:`clvkit.io.scorer_input`); the scorer
    ignores any other column, as MLflow's enforcement did.
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import DataType, ParamSchema, ParamSpec

    from clvkit.io.scorer_input import AS_OF_PARAM

    outputs = infer_signature(output_example).inputs
    params = ParamSchema([ParamSpec(AS_OF_PARAM, DataType.string, "")])
    return ModelSignature(inputs=None, outputs=outputs, params=params)


def signature_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float64: the signature's types, which accept missing values and JSON numbers."""
    numeric = table.select_dtypes(include=["number", "bool"]).columns
    return table.astype(dict.fromkeys(numeric, "float64"))


def to_scorer_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Index a customer table by ``customer_id`` (a column over REST, maybe the index locally)."""
    if schemas.CUSTOMER_ID in frame.columns:
        table = frame.set_index(schemas.CUSTOMER_ID)
    elif frame.index.name == schemas.CUSTOMER_ID:
        table = frame
    else:
        raise FeatureMismatchError(
            f"the customer table needs a {schemas.CUSTOMER_ID!r} column (one row per customer); "
            f"got columns {list(frame.columns)[:10]}"
        )
    table.index = table.index.astype(str)
    return table
