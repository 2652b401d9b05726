"""``clvkit.CLVModel``: transactions DataFrame in, one row of scores per customer out.

The high-level estimator a notebook uses. ``fit`` runs the same training composition as
``clvkit train`` (:func:`clvkit.pipelines.train.fit_and_evaluate`: validate, evaluate on the
holdout, refit on all history, build the served scorer) on an in-memory DataFrame;
``predict`` builds features as of a cut-off and scores; ``save``/``load`` write and read the
JSON artifact the MLflow model holds; ``log_to_mlflow`` logs and registers a fitted model
(MLflow is imported only there).
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Self

import pandas as pd

from clvkit import schemas
from clvkit.config.models import ClvkitConfig
from clvkit.exceptions import ConfigError, NotFittedError, UserInputError

logger = logging.getLogger(__name__)

#: Columns of :meth:`CLVModel.evaluate`'s table besides the value.
METRIC_TABLE_COLUMNS: Final = ("value", "group", "direction", "label", "definition")
QUARANTINE_FILE: Final = "quarantine.csv"
#: ``data.source`` recorded in MLflow for a model fitted on a DataFrame.
LOGGED_SOURCE: Final = "in-memory DataFrame (CLVModel)"
_DIRECTION_KEY: Final = "evaluation.primary_metric_higher_is_better"
_PRIMARY_KEY: Final = "evaluation.primary_metric"


class CLVModel:
    """Customer lifetime value from a transactions log: fit, predict, evaluate, save, log.

    Parameters
    ----------
    config : ClvkitConfig, mapping, path to a YAML file, or None
        The settings (``clvkit config schema`` lists them); defaults when None.
    **overrides
        Settings on top of ``config``, by leaf name when it is unique (``horizon_months=12``,
        ``window_days=60``), dotted (``**{"clv.horizon_months": 12}``) or scikit-learn style
        (``clv__horizon_months=12``); a section name takes a mapping (``churn={"window_days": 60}``).
        ``data.source`` is ignored: :meth:`fit` takes the DataFrame.

    Attributes (after ``fit``)
    --------------------------
    scorer_ : ClvScorer
        The served scorer (fitted on all history up to ``cutoff_``).
    feature_builder_ : FeatureBuilder
        Builds the customer table from transactions as of a cut-off.
    cutoff_ : datetime.date
        End of the history the served models saw.
    metrics_ : dict[str, float]
        Holdout metrics of the recipe (names in :mod:`clvkit.evaluation.registry`).
    clv_source_ : str
        Which model produces ``clv`` and why is in ``clv_source_reason_``.
    figures_ : dict[str, matplotlib.figure.Figure]
        Evaluation plots (only after ``fit`` in this session, not after ``load``).
    reconciliation_ : dict
        Rows read, used and quarantined; ``quarantine_`` holds the quarantined rows.
    """

    def __init__(self, config: ClvkitConfig | Mapping[str, Any] | str | Path | None = None, /,
                 **overrides: Any) -> None:
        self.config = resolve_config(config, overrides)

    def __repr__(self) -> str:
        c = self.config
        fitted = f", cutoff={self.cutoff_}" if hasattr(self, "cutoff_") else ""
        return (f"CLVModel(horizon_months={c.clv.horizon_months}, discount_rate_annual={c.clv.discount_rate_annual}, "
                f"time_unit={c.data.time_unit!r}{fitted})")

    # --- fitting --------------------------------------------------------------------

    def fit(self, transactions: pd.DataFrame, *, cutoff: dt.date | str | pd.Timestamp | None = None) -> Self:
        """Fit on a transactions DataFrame (columns named by ``config.data.columns``).

        ``cutoff`` ends the history the models see (``data.observation_end``; the last
        transaction date when None). Runs the same composition as ``clvkit train`` without
        MLflow: holdout evaluation, refit on all history, served scorer.
        """
        from clvkit.pipelines.ingest import dataframe_source
        from clvkit.pipelines.train import fit_and_evaluate

        end = _as_date(cutoff, "cutoff") if cutoff is not None else self.config.data.observation_end
        with tempfile.TemporaryDirectory() as tmp, dataframe_source(transactions) as source:
            config = _with_data(self.config, source=source, observation_end=end,
                                quarantine_path=str(Path(tmp) / QUARANTINE_FILE))
            outcome = fit_and_evaluate(config)
            self.quarantine_ = _read_quarantine(Path(tmp) / QUARANTINE_FILE)
        self._outcome, self._fit_config = outcome, config
        self._set_fitted(_training_state(outcome, config), outcome.scorer.boosters())
        self.metrics_ = dict(outcome.evaluation.metrics)
        self.clv_source_reason_ = outcome.evaluation.choice_reason
        self.figures_ = dict(outcome.figures)
        self.reconciliation_ = dict(outcome.reconciliation)
        return self

    def _set_fitted(self, state: dict[str, Any], boosters: dict[str, str]) -> None:
        from clvkit.features.builder import FeatureBuilder
        from clvkit.models.scorer import ClvScorer

        self._state, self._boosters = state, boosters
        self.scorer_ = ClvScorer.from_dict(state["scorer"], boosters)
        self.feature_builder_ = FeatureBuilder.from_dict(state["feature_builder"])
        self.cutoff_ = dt.date.fromisoformat(state["cutoff"])
        self.clv_source_ = self.scorer_.settings.clv_source

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "scorer_"):
            raise NotFittedError(f"this CLVModel is not fitted yet; call fit(transactions) or CLVModel.load(path) "
                                 f"before {what}()")

    # --- scoring --------------------------------------------------------------------

    def predict(self, transactions: pd.DataFrame, *, as_of: dt.date | str | pd.Timestamp | None = None) -> pd.DataFrame:
        """Scores, one row per customer: ``customer_id`` and the columns listed in the README.

        Features are built from ``transactions`` (validated with the settings recorded at fit)
        as of ``as_of``, whole day included; by default the last transaction date on or before
        today, as ``clvkit predict`` does. Rows dated later are left out (and counted in the log).
        """
        from clvkit.pipelines.features import customer_table
        from clvkit.pipelines.ingest import dataframe_source, ingest

        self._check_fitted("predict")
        end = _as_date(as_of, "as_of") if as_of is not None else None
        with dataframe_source(transactions) as source:
            ingested = ingest(self._input_data_config(source), as_of=end or dt.date.today(), write_quarantine=False)
        validated = ingested.validated
        if len(validated.quarantine):
            logger.warning("%s input row(s) quarantined and not scored: %s", f"{len(validated.quarantine):,}",
                           dict(validated.report.quarantined))
        if validated.transactions.empty:
            raise UserInputError("nothing to score: no valid transaction on or before the scoring date; "
                                 "check the dates and columns of the input (see the warnings above)")
        end = end or validated.transactions[schemas.TIMESTAMP].max().date()
        table = customer_table(self.feature_builder_, validated.transactions, end)
        return self.scorer_.score(table).rename_axis(schemas.CUSTOMER_ID).reset_index()

    def _input_data_config(self, source: str) -> Any:
        """How to read scoring input: the column mapping and validation recorded at fit."""
        from clvkit.config.models import ColumnMapping, DataConfig, ValidationPolicies

        recorded = self._state["data"]
        return DataConfig(
            source=source, columns=ColumnMapping(**recorded["columns"]),
            validation=ValidationPolicies(**recorded["validation"]), timezone=recorded["timezone"],
            date_format=recorded["date_format"], time_unit=recorded["time_unit"],
        )

    # --- evaluation -----------------------------------------------------------------

    def evaluate(self, transactions: pd.DataFrame | None = None, *,
                 cutoff: dt.date | str | pd.Timestamp | None = None) -> pd.DataFrame:
        """Holdout metrics as a table indexed by metric: value, group, direction, label, definition.

        Without arguments: the metrics measured when this model was fitted. With
        ``transactions``: the same recipe (this config) fitted and evaluated on them; this
        model is left unchanged.
        """
        if transactions is not None:
            return CLVModel(self.config).fit(transactions, cutoff=cutoff).evaluate()
        self._check_fitted("evaluate")
        return metrics_table(self.metrics_)

    # --- persistence ----------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model as a directory of JSON files (the artifact the MLflow model holds)."""
        from clvkit.io.artifact import save_scorer_state

        self._check_fitted("save")
        state = {**self._state, "config": self.config.model_dump(mode="json"),  # the settings, not the temporary source
                 "metrics": self.metrics_, "clv_source_reason": self.clv_source_reason_}
        return save_scorer_state(Path(path), state, self._boosters)

    @classmethod
    def load(cls, path: str | Path) -> CLVModel:
        """A model written by :meth:`save` (or the ``scorer`` directory of a logged MLflow model)."""
        from clvkit.io.artifact import load_scorer_state

        state, boosters = load_scorer_state(Path(path))
        model = cls(state["config"]) if "config" in state else cls()
        model._set_fitted({k: v for k, v in state.items() if k not in ("versions", "boosters")}, boosters)
        model.metrics_ = {k: float(v) for k, v in state.get("metrics", {}).items()}
        model.clv_source_reason_ = state.get("clv_source_reason", "")
        return model

    def log_to_mlflow(self, *, experiment: str | None = None, registered_model: str | None = None) -> Any:
        """Log this fit as an MLflow run and register the scorer, as ``clvkit train`` does.

        Uses ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``). Returns the
        :class:`~clvkit.pipelines.train.TrainResult` (run id, model URI, version, alias).
        """
        if not hasattr(self, "_outcome"):
            raise NotFittedError("log_to_mlflow needs the training outcome of fit() in this session "
                                 "(a loaded model has no metrics history or plots to log); call fit() first")
        from clvkit.io import tracking
        from clvkit.pipelines.train import log_training

        mlflow_settings = self.config.mlflow.model_copy(update={
            k: v for k, v in (("experiment", experiment), ("registered_model", registered_model)) if v is not None
        })
        data = self._fit_config.data.model_copy(update={"source": LOGGED_SOURCE})  # not the temporary memory: name
        config = self._fit_config.model_copy(update={"mlflow": mlflow_settings, "data": data})
        tracking.configure_tracking()
        return log_training(config, None, self._outcome)


# --- helpers ------------------------------------------------------------------------


def metrics_table(metrics: Mapping[str, float]) -> pd.DataFrame:
    """Registered metrics with their group, direction, label and definition (others left out)."""
    from clvkit.evaluation import registry

    rows = {}
    for name, value in metrics.items():
        spec = registry.find_metric(name)
        if spec is not None and not name.startswith("lift_"):
            rows[name] = (float(value), spec.group, spec.direction, spec.label, spec.definition)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_TABLE_COLUMNS))
    return table.rename_axis("metric")


def resolve_config(config: ClvkitConfig | Mapping[str, Any] | str | Path | None,
                   overrides: Mapping[str, Any]) -> ClvkitConfig:
    """A validated config from a config/mapping/YAML path and keyword overrides (see :class:`CLVModel`)."""
    from clvkit.config.loading import config_from_dict, load_config

    if config is None:
        raw: dict[str, Any] = {}
    elif isinstance(config, ClvkitConfig):
        raw = config.model_dump(mode="json", exclude_unset=True)
    elif isinstance(config, Mapping):
        raw = _plain(config)
    elif isinstance(config, str | Path):
        raw = load_config(config).model_dump(mode="json", exclude_unset=True)
    else:
        raise UserInputError(f"config must be a ClvkitConfig, a mapping, a YAML path or None, got {type(config).__name__}")
    paths = {".".join(_override_path(key, value)): value for key, value in overrides.items()}
    if _PRIMARY_KEY in paths and _DIRECTION_KEY not in paths:
        raw.get("evaluation", {}).pop("primary_metric_higher_is_better", None)  # follows the new metric
    for path, value in paths.items():
        _set(raw, tuple(path.split(".")), value)
    return config_from_dict(raw, source="CLVModel settings")


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def _leaf_paths() -> dict[str, list[tuple[str, ...]]]:
    """Leaf setting name -> every dotted path with that name (one level of sections and nested models)."""
    from pydantic import BaseModel

    paths: dict[str, list[tuple[str, ...]]] = {}

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, (*prefix, name))
            else:
                paths.setdefault(name, []).append((*prefix, name))

    walk(ClvkitConfig, ())
    return paths


def _override_path(key: str, value: Any) -> tuple[str, ...]:
    if "." in key:
        return tuple(key.split("."))
    if "__" in key:
        return tuple(key.split("__"))
    if key in ClvkitConfig.model_fields:
        return (key,)
    leaves = _leaf_paths()
    found = leaves.get(key, [])
    if len(found) == 1:
        return found[0]
    if found:
        options = ", ".join(".".join(p) for p in found)
        raise ConfigError(f"setting {key!r} is ambiguous: it could be {options}; pass the dotted name, "
                          f"e.g. CLVModel(**{{{'.'.join(found[0])!r}: {value!r}}})")
    close = difflib.get_close_matches(key, list(leaves) + list(ClvkitConfig.model_fields), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"unknown setting {key!r}{hint}; `clvkit config schema` lists every setting")


def _set(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"setting {'.'.join(path)!r}: {part!r} holds a value, not a section")
        node = child
    leaf = path[-1]
    if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
        node[leaf] = {**node[leaf], **_plain(value)}
    else:
        node[leaf] = _plain(value) if isinstance(value, Mapping) else value


def _with_data(config: ClvkitConfig, **data: Any) -> ClvkitConfig:
    """``config`` with some ``data`` settings replaced, validated again (dates stay ordered)."""
    raw = config.model_dump(exclude_unset=True)
    raw["data"] = {**raw.get("data", {}), **data}
    return ClvkitConfig.model_validate(raw)


def _as_date(value: dt.date | str | pd.Timestamp, name: str) -> dt.date:
    """One type for a cut-off: ``datetime.date`` (a timestamp keeps its calendar day)."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise UserInputError(f"{name} must be a date such as '2024-06-30' (or a datetime.date/Timestamp), got {value!r}")


def _read_quarantine(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _training_state(outcome: Any, config: ClvkitConfig) -> dict[str, Any]:
    from clvkit.pipelines.artifact import scorer_artifact_state

    return scorer_artifact_state(outcome.scorer, outcome.served, config, outcome.fingerprint.content_hash)
