"""The training recipe: every model fitted as of one cut-off ``as_of`` (an evaluation origin or the served fit).

Time design (see the README, "What a training run does")::

    first purchase ........ c_K ... c_2 ......... c_1 ............ as_of
                            |<- w ->|   ...       |<-- window -->|
    BTYD models: fitted on the history up to as_of (served) and up to each inner cut-off c_k;
    supervised examples: features at c_k, labels from (c_k, c_k + window], stacked over k;
    inner validation: a share of the customers at c_1 (never trained on); every choice —
    purchase model (auto), CLV candidate, blend weights, total calibration, churn source — is
    made there. Nothing after ``as_of`` is read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from clvkit import constants, schemas
from clvkit.config.models import ClvkitConfig
from clvkit.constants import DAYS_PER_TIME_UNIT
from clvkit.evaluation import metrics
from clvkit.exceptions import ConvergenceError, UserInputError
from clvkit.features.builder import FeatureBuilder
from clvkit.features.labels import SPEND_WINDOW, future_value, future_values
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.blend import (
    BLEND_MAX_SEARCH_CUSTOMERS,
    BTYD_WINDOW_VALUE,
    HISTORICAL_WINDOW_VALUE,
    ValueBlend,
    describe_weights,
    tenure_normalised_features,
    window_components,
)
from clvkit.models.churn import ChurnClassifier
from clvkit.models.customer_value import assign_quadrants, quadrant_names, quadrant_threshold
from clvkit.models.gamma_gamma import GammaGammaModel
from clvkit.models.scorer import (
    ORDER_VALUE_FEATURE,
    ClvScorer,
    ScorerSettings,
    assign_tiers,
    btyd_model_features,
    churn_probability,
    closed_form_churn,
    supervised_frame,
    tier_thresholds,
)
from clvkit.models.value_regressor import ValueRegressor
from clvkit.pipelines.features import customer_table, fit_customer_table, make_builder

logger = logging.getLogger(__name__)

#: Supervised labels need at least this many days of history before an inner cut-off.
MIN_INNER_HISTORY_DAYS = 28
#: The value label window is at most this share of the history before ``as_of``.
VALUE_WINDOW_HISTORY_SHARE = 1 / 2
#: CLV candidates that are models (the historical formula is the baseline they must beat).
MODEL_CANDIDATES = ("btyd", "ml", "blend")
#: The two components every value table has; ``btyd_all`` (spend exists) and ``ml`` (value model) are
#: blend components only: the blend's weight grid holds each alone as a vertex.
FORMULA_PAIR = ("btyd", "historical")
#: Inner-validation figures summed to compare candidates and blend weights when the primary metric is
#: the normalized Gini: value ranking and customer ranking, so neither is given up.
GINI_CHOICE_METRICS = ("gini_norm", "spearman")
#: The functions behind those figures, for the blend's weight search (which scores thousands of weight vectors).
CHOICE_METRIC_FUNCTIONS = {"gini_norm": metrics.normalized_gini, "spearman": metrics.spearman}
BASELINE_CANDIDATE = "historical"
#: Old policy names accepted for ``models.value.clv_policy``.
CHOOSING_POLICIES = ("best_inner", "best_on_holdout")
#: Folds of the cross-fitted blend weights on the inner validation customers.
BLEND_FOLDS = 5
#: Folds above ``BLEND_MAX_SEARCH_CUSTOMERS`` validation customers (each fold is then large; the search is sampled).
LARGE_BLEND_FOLDS = 2
#: Customers needed at the latest inner cut-off: at least two to train on and two to validate every choice.
MIN_RECIPE_CUSTOMERS = 4


@dataclass
class InnerExamples:
    """Supervised examples at one inner cut-off: features, window components, labels."""

    cutoff: dt.date
    table: pd.DataFrame
    btyd: pd.DataFrame
    components: pd.DataFrame
    value_inputs: pd.DataFrame
    churn_inputs: pd.DataFrame
    spend_window: np.ndarray
    purchase_days: np.ndarray
    churned: np.ndarray
    closed_form_churn: np.ndarray

    def drop_customer_frames(self) -> None:
        """Release the customer table, BTYD outputs and window components (memory of an older cut-off);
        the stacked inputs and labels stay."""
        self.table, self.btyd, self.components = self.table.iloc[:0], self.btyd.iloc[:0], self.components.iloc[:0]


@dataclass
class StageModels:
    """Everything the recipe fitted as of one cut-off, and the choices it made on inner validation."""

    as_of: dt.date
    inner_cutoff: dt.date
    builder: FeatureBuilder
    table: pd.DataFrame
    bgnbd: Any
    gamma_gamma: GammaGammaModel
    churn: ChurnClassifier | None  # None: one-class labels, churn served in closed form
    value_ml: ValueRegressor | None
    value_blend: ValueBlend
    value_window_days: int
    churn_window_days: int
    clv_source: str = "btyd"
    clv_reason: str = ""
    churn_source: str = "classifier"
    churn_reason: str = ""
    purchase_model: str = "bgnbd"
    purchase_reason: str = ""
    churn_window_reason: str = "configured"
    inner_cutoffs: tuple[dt.date, ...] = ()
    inner_metrics: dict[str, float] = field(default_factory=dict)
    clv_available: bool = True
    clv_absent_reason: str = ""
    inner_validation: pd.DataFrame | None = None

    @property
    def purchase(self) -> Any:
        """The fitted purchase model."""
        return self.bgnbd

    def supervised_features(self, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """Numeric features + BTYD outputs of ``table`` (default: the stage's own table)."""
        table = self.table if table is None else table
        return supervised_frame(table, self.btyd_features(table))

    def btyd_features(self, table: pd.DataFrame) -> pd.DataFrame:
        """BTYD-derived features of ``table`` from this stage's BTYD models."""
        return btyd_model_features(table, self.bgnbd, self.gamma_gamma, self.churn_window_days,
                                   self.builder.time_unit)


def scorer_for(stage: StageModels, config: ClvkitConfig, clv_source: str | None = None) -> ClvScorer:
    """The scorer a recipe fit serves: its purchase model, CLV candidate/blend and churn source.

    Tier thresholds are learned on the stage's own customers.
    """
    return scorer_and_scores(stage, config, clv_source)[0]


def scorer_and_scores(
    stage: StageModels, config: ClvkitConfig, clv_source: str | None = None, *, revenue_window_days: int | None = None,
) -> tuple[ClvScorer, pd.DataFrame | None, np.ndarray | None]:
    """:func:`scorer_for`, its scores of the stage's own customers (no intervals) and, for
    ``revenue_window_days``, their expected revenue in that window; ``None`` for both without CLV.

    The thresholds are learnt from these scores; only ``value_tier`` and ``value_quadrant`` depend on
    them, so they are re-assigned here and the frame equals ``scorer.score(stage.table, intervals=False)``
    (the revenue equals ``scorer.expected_revenue(stage.table, revenue_window_days)``).
    """
    settings = ScorerSettings(
        time_unit=config.data.time_unit, horizon_months=config.clv.horizon_months,
        discount_rate_annual=config.clv.discount_rate_annual, margin=config.clv.margin,
        churn_window_days=stage.churn_window_days, value_window_days=stage.value_window_days,
        cutoff=str(stage.as_of), clv_source=clv_source or stage.clv_source,
        tier_thresholds=(float("inf"), float("inf")), churn_source=stage.churn_source,
        purchase_model=stage.purchase_model, value_per_purchase=config.clv.value_per_purchase,
        clv_available=stage.clv_available,
        quadrant_names=quadrant_names(config.features.quadrant.names),
        interval_levels=tuple(config.clv.interval_levels), interval_draws=config.clv.interval_draws,
        interval_seed=config.seed, current_value_window_days=config.features.current_value_window_days,
    )
    scorer = ClvScorer(stage.bgnbd, stage.gamma_gamma, stage.churn, settings, stage.value_ml,
                       tuple(stage.table.columns), value_blend=stage.value_blend)
    if not stage.clv_available:
        return scorer, None, None
    revenue = None
    if revenue_window_days is None:
        scores = scorer.score(stage.table, intervals=False)
    else:  # one pass: the purchase model and the value model are evaluated once
        scores, revenue = scorer.score_with_revenue(stage.table, revenue_window_days)
    clv = scores[schemas.CLV].to_numpy()
    a_share, b_share = config.features.tier_shares
    scorer.settings = replace(settings, tier_thresholds=tier_thresholds(clv, a_share, b_share),
                              quadrant_thresholds=learn_quadrant_thresholds(scores, config))
    return scorer, _with_learnt_segments(scores, scorer.settings), revenue


def _with_learnt_segments(scores: pd.DataFrame, settings: ScorerSettings) -> pd.DataFrame:
    """``scores`` with value tier and quadrant assigned from ``settings``' thresholds."""
    clv = scores[schemas.CLV].to_numpy(dtype=float)
    columns = {schemas.VALUE_TIER: assign_tiers(clv, settings.tier_thresholds)}
    if schemas.VALUE_QUADRANT in scores:
        current = scores[schemas.CURRENT_VALUE].to_numpy(dtype=float)
        columns[schemas.VALUE_QUADRANT] = assign_quadrants(current, clv, settings.quadrant_thresholds,
                                                           settings.quadrant_names)
    return scores.assign(**columns)


def learn_quadrant_thresholds(scores: pd.DataFrame, config: ClvkitConfig) -> tuple[float, float]:
    """(current value, future value) thresholds of the value quadrant, learnt on the training scores."""
    q = config.features.quadrant
    current = scores.get(schemas.CURRENT_VALUE, pd.Series(dtype=float)).to_numpy(dtype=float)
    future = scores[schemas.CLV].to_numpy(dtype=float)
    return (quadrant_threshold(current, q.method, share=q.share, absolute=q.current_threshold),
            quadrant_threshold(future, q.method, share=q.share, absolute=q.future_threshold))


def value_window_days(first_date: dt.date, as_of: dt.date, horizon_days: int) -> int:
    """Label window of the value models: the horizon, at most a third of the history before ``as_of``."""
    return max(1, min(horizon_days, int((as_of - first_date).days * VALUE_WINDOW_HISTORY_SHARE)))


def churn_window_days(config: ClvkitConfig, transactions: pd.DataFrame, first_date: dt.date,
                      as_of: dt.date) -> tuple[int, str]:
    """The churn window: configured, or a high quantile of the inter-purchase gaps before ``as_of``."""
    if config.churn.window_days is not None:
        return int(config.churn.window_days), "configured (churn.window_days)"
    stamps = transactions.loc[transactions[schemas.TIMESTAMP].dt.date <= as_of]
    day_rows = pd.DataFrame({"id": stamps[schemas.CUSTOMER_ID].to_numpy(),
                             "day": stamps[schemas.TIMESTAMP].dt.floor("D").to_numpy()}).drop_duplicates()
    day_rows = day_rows.sort_values(["id", "day"])
    gaps = day_rows.groupby("id")["day"].diff().dt.days.dropna().to_numpy()
    cap = max(constants.MIN_DERIVED_CHURN_WINDOW_DAYS,
              int((as_of - first_date).days * constants.DERIVED_CHURN_WINDOW_MAX_HISTORY_SHARE))
    q = constants.CHURN_WINDOW_GAP_QUANTILE
    if gaps.size == 0:
        return cap, f"derived: no repeat purchases, so a third of the history ({cap} days)"
    quantile = float(np.quantile(gaps, q))
    window = int(np.clip(round(quantile), constants.MIN_DERIVED_CHURN_WINDOW_DAYS, cap))
    return window, (f"derived: {q:.0%} quantile of {gaps.size:,} inter-purchase gaps = {quantile:.0f} days"
                    f"{'' if window == round(quantile) else f', bounded to {window}'}; set churn.window_days to fix it")


def inner_cutoffs(config: ClvkitConfig, first_date: dt.date, as_of: dt.date, step_days: int) -> list[dt.date]:
    """Inner cut-offs ``as_of - k * step`` (k = 1, 2, ...) with enough history before them, latest first."""
    out: list[dt.date] = []
    for k in range(1, config.models.recipe.max_inner_cutoffs + 1):
        cutoff = as_of - dt.timedelta(days=k * step_days)
        if (cutoff - first_date).days < MIN_INNER_HISTORY_DAYS:
            break
        out.append(cutoff)
    if not out:
        raise UserInputError(
            f"history too short for supervised training as of {as_of}: an inner cut-off needs "
            f"{MIN_INNER_HISTORY_DAYS}+ days of history after the first purchase ({first_date}) and a "
            f"{step_days}-day label window before {as_of}. Shorten churn.window_days or clv.horizon_months, "
            "or move data.calibration_end later."
        )
    return out


def make_purchase_model(name: str, config: ClvkitConfig) -> Any:
    """An unfitted purchase model by name (``clvkit.models.purchase`` when installed, else BG/NBD)."""
    penalizer = config.models.bgnbd.penalizer
    try:
        from clvkit.models import purchase
    except ImportError:
        if name != "bgnbd":
            raise UserInputError(
                f"models.purchase.model={name!r} is not available in this build; use 'bgnbd'") from None
        return BetaGeoModel(penalizer=penalizer)
    return purchase.make_purchase_model(name, penalizer=penalizer, random_state=config.seed)


def purchase_candidates(config: ClvkitConfig) -> tuple[str, ...]:
    """The purchase models the recipe fits: the configured one, or every one for ``auto``."""
    name = config.models.purchase.model
    if name != "auto":
        return (name,)
    try:
        from clvkit.models.purchase import PURCHASE_MODELS
    except ImportError:
        return ("bgnbd",)
    return tuple(PURCHASE_MODELS)


def fit_btyd(table: pd.DataFrame, config: ClvkitConfig, purchase_model: str = "bgnbd",
             has_amount: bool = True) -> tuple[Any, GammaGammaModel]:
    """Purchase model and Gamma-Gamma fitted on a customer table's BTYD columns.

    A count-only log (no amounts) gets Gamma-Gamma's documented fallback: every order is worth
    ``clv.value_per_purchase`` (0 when unset; the run then serves no CLV).
    """
    summary = table[list(schemas.BTYD_COLUMNS)]
    purchase = make_purchase_model(purchase_model, config).fit(summary)
    fallback = None if has_amount else float(config.clv.value_per_purchase or 0.0)
    gamma_gamma = GammaGammaModel(penalizer=config.models.gamma_gamma.penalizer).fit(
        summary, fallback_order_value=fallback)
    return purchase, gamma_gamma


def fit_btyd_ranked(table: pd.DataFrame, config: ClvkitConfig, ranked: Sequence[str],
                    has_amount: bool = True) -> tuple[Any, GammaGammaModel, str, str]:
    """:func:`fit_btyd` with the first purchase model in ``ranked`` that converges on this table.

    ``auto`` ranks the models on the inner window; a model chosen there can still fail on
    another cut-off's history, and then the next one in the ranking serves. Returns the models,
    the name used and why a fallback happened ("" when the first model fitted). When every model
    fails the first model's error is raised.
    """
    first_error: ConvergenceError | None = None
    for name in ranked:
        try:
            purchase, gamma_gamma = fit_btyd(table, config, name, has_amount)
        except ConvergenceError as exc:
            logger.warning("purchase model %s failed on %d customers: %s", name, len(table), exc)
            first_error = first_error or exc
            continue
        why = "" if first_error is None else (
            f"{ranked[0]} failed on this history ({first_error}); the next model in the inner ranking, "
            f"{name}, serves")
        return purchase, gamma_gamma, name, why
    raise first_error or UserInputError("no purchase model to fit: models.purchase.model names none")


def fit_stage(
    transactions: pd.DataFrame, as_of: dt.date, first_date: dt.date, horizon_days: int, config: ClvkitConfig
) -> StageModels:
    """Apply the whole recipe to the history up to ``as_of``; see the module docstring."""
    unit = config.data.time_unit
    value_window = value_window_days(first_date, as_of, horizon_days)
    churn_window, churn_window_reason = churn_window_days(config, transactions, first_date, as_of)
    cutoffs = inner_cutoffs(config, first_date, as_of, max(value_window, churn_window))
    logger.info("recipe as of %s: inner cut-offs %s; value window %d days; churn window %d days (%s)",
                as_of, ", ".join(map(str, cutoffs)), value_window, churn_window, churn_window_reason)
    history = transactions.loc[transactions[schemas.TIMESTAMP] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    check_recipe_customers(history, cutoffs[0], as_of)

    ranked, purchase_reason, inner_purchase = _choose_purchase_model(history, cutoffs[0], value_window, config)
    builder, table = fit_customer_table(config, history, as_of)  # one pass: fit and table
    has_amount = schemas.AMOUNT in history.columns
    purchase, gamma_gamma, purchase_name, fallback = fit_btyd_ranked(table, config, ranked, has_amount)
    if fallback:
        purchase_reason = f"{purchase_reason}; {fallback}"
    logger.info("as of %s: %d customers; %s %s", as_of, len(table), purchase_name, purchase.params_)

    ranked = (purchase_name, *(n for n in ranked if n != purchase_name))
    examples = [_inner_examples(history, c, value_window, churn_window, config, ranked, has_amount)
                for c in cutoffs]
    for older in examples[1:]:  # only the latest cut-off's customer frames are read after this
        older.drop_customer_frames()
    validation = _validation_mask(examples[0], config)
    train_x = _stack([e.value_inputs for e in examples], validation)
    train_spend = _stack_values([e.spend_window for e in examples], validation)
    valid = examples[0]
    inner: dict[str, float] = {"inner_n_cutoffs": float(len(cutoffs)),
                               "inner_validation_customers": float(validation.sum()), **inner_purchase}

    # the churn classifier trains on a second core meanwhile (each booster on one thread; XGBoost
    # releases the interpreter lock while it trains, so the two fits overlap)
    churn_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clvkit-churn")
    churn_fit = churn_pool.submit(_fit_churn_or_none, examples, validation, churn_window, config)
    churn_pool.shutdown(wait=False)
    value_ml = None
    candidates = {name: valid.components[name].to_numpy()[validation] for name in valid.components.columns}
    if config.models.value.enabled and has_amount:
        value_ml = _value_model(config).fit(train_x, train_spend)
        candidates["ml"] = value_ml.predict(valid.value_inputs.loc[validation])
    components = pd.DataFrame(candidates, index=valid.table.index[validation])
    actual = valid.spend_window[validation]
    if len(components.columns) > len(FORMULA_PAIR):  # a model component beside btyd and historical
        candidates["blend"] = _cross_fitted_blend(components, actual, config)
    if has_amount:
        clv_source, clv_reason, scores = _choose_clv(candidates, actual, config)
        inner.update(scores)
    else:
        clv_source, clv_reason = "btyd", "count-only log: expected purchases x clv.value_per_purchase"
        actual = valid.purchase_days[validation] * float(config.clv.value_per_purchase or 0.0)
    blend = ValueBlend(source=clv_source).fit(components, actual, _blend_score(config))
    if value_ml is not None and blend.uses_ml and _refit_adds_rows(len(train_x), config.models.value.max_train_rows,
                                                                   "value"):
        all_x = _stack([e.value_inputs for e in examples], None)
        value_ml = _value_model(config).fit(all_x, _stack_values([e.spend_window for e in examples], None))
    if clv_source in ("ml", "blend"):
        btyd_calibration = _total_ratio(actual, components["btyd"].to_numpy())
        served = _window_components(table, purchase, gamma_gamma, value_window, churn_window, unit, value_ml)
        blend.anchor_total(served, btyd_calibration * float(served["btyd"].sum()))
        inner["inner_btyd_total_calibration"] = btyd_calibration
    logger.info("served CLV: %s (%s); weights %s, total calibration %.3f", clv_source, clv_reason,
                describe_weights(blend.weights_), blend.calibration_)

    churn, one_class = churn_fit.result()
    if churn is None:
        churn_source, churn_reason = "closed_form", (
            f"{one_class}; the churn classifier cannot learn from one class, so the run serves the purchase "
            "model's closed-form P(no purchase in the window) (churn.window_days sets the window)")
    else:
        churn_source, churn_reason, churn_scores = _choose_churn(churn, valid, validation)
        inner.update(churn_scores)
    if churn_source == "classifier" and _refit_adds_rows(len(train_x), config.churn.max_train_rows, "churn"):
        churn = _churn_model(config).fit(_stack([e.churn_inputs for e in examples], None),
                                         _stack_values([e.churned for e in examples], None).astype(int))
    logger.info("served churn: %s (%s)", churn_source, churn_reason)
    clv_available = has_amount or config.clv.value_per_purchase is not None
    absent = "" if clv_available else (
        "no amount column and clv.value_per_purchase is not set: CLV needs a value per purchase, so the scorer "
        "serves purchases, P(alive), churn and RFM only; set clv.value_per_purchase to get CLV")
    if absent:
        logger.warning(absent)
    return StageModels(
        as_of=as_of, inner_cutoff=cutoffs[0], builder=builder, table=table, bgnbd=purchase,
        gamma_gamma=gamma_gamma, churn=churn, value_ml=value_ml, value_blend=blend,
        value_window_days=value_window, churn_window_days=churn_window, clv_source=clv_source,
        clv_reason=clv_reason, churn_source=churn_source, churn_reason=churn_reason,
        purchase_model=purchase_name, purchase_reason=purchase_reason,
        churn_window_reason=churn_window_reason, inner_cutoffs=tuple(cutoffs), inner_metrics=inner,
        inner_validation=components.assign(actual=actual), clv_available=clv_available,
        clv_absent_reason=absent,
    )


def _refit_adds_rows(n_train: int, max_train_rows: int | None, model: str) -> bool:
    """Whether refitting a chosen booster on every example (validation customers included) trains it on more rows.

    Above ``max_train_rows`` both fits train on a seeded sample of that size, so the refit would
    spend a second fit on a model of the same data size: the first one serves.
    """
    if max_train_rows is None or n_train < max_train_rows:
        return True
    logger.info("%s booster: not refitted with the validation customers: its %d training rows already reach "
                "max_train_rows %d, so a refit would train on a sample of the same size", model, n_train,
                max_train_rows)
    return False


def check_recipe_customers(history: pd.DataFrame, cutoff: dt.date, as_of: dt.date) -> None:
    """Enough customers at the latest inner cut-off to train on some and validate the choices on others."""
    known = history.loc[history[schemas.TIMESTAMP] < pd.Timestamp(cutoff) + pd.Timedelta(days=1), schemas.CUSTOMER_ID]
    n = int(known.nunique())
    if n < MIN_RECIPE_CUSTOMERS:
        examples = ", ".join(repr(str(c)) for c in known.drop_duplicates().head(constants.MAX_EXAMPLE_ROWS))
        raise UserInputError(
            f"only {n} customer{'' if n == 1 else 's'} ({examples or 'none'}) had bought by the inner cut-off "
            f"{cutoff} of the recipe fitted as of {as_of}: the recipe trains on some customers and validates every "
            f"choice on the others, so it needs at least {MIN_RECIPE_CUSTOMERS} customers (and a few repeat "
            "buyers). Point data.source at the full transaction log, or move data.calibration_end later"
        )


def _fit_churn_or_none(examples: list[InnerExamples], validation: np.ndarray, window_days: int,
                       config: ClvkitConfig) -> tuple[ChurnClassifier | None, str]:
    """The churn classifier on the training customers, or ``None`` and why when the labels hold (nearly) one class."""
    y = _stack_values([e.churned for e in examples], validation).astype(int)
    churned, active = int(y.sum()), int(y.size - y.sum())
    why = (f"churn labels of the {y.size} training examples hold {active} active and {churned} churned customers "
           f"within the {window_days}-day churn window")
    if min(churned, active) < constants.MIN_CHURN_CLASS_COUNT:
        logger.warning("%s: fewer than %d of a class", why, constants.MIN_CHURN_CLASS_COUNT)
        return None, f"{why} (fewer than {constants.MIN_CHURN_CLASS_COUNT} of a class)"
    try:
        return _churn_model(config).fit(_stack([e.churn_inputs for e in examples], validation), y), ""
    except UserInputError as err:  # e.g. too few of a class for the stratified early-stopping split
        logger.warning("churn classifier not fitted: %s", err)
        return None, f"{why}; the classifier could not be fitted: {err}"


def _inner_examples(history: pd.DataFrame, cutoff: dt.date, value_window: int, churn_window: int,
                    config: ClvkitConfig, ranked: Sequence[str], has_amount: bool = True) -> InnerExamples:
    unit = config.data.time_unit
    _, table = fit_customer_table(config, history, cutoff)  # one pass: fit and table
    purchase, gamma_gamma, _, _ = fit_btyd_ranked(table, config, ranked, has_amount)
    btyd = btyd_model_features(table, purchase, gamma_gamma, churn_window, unit)
    f, r, t = (table[c].to_numpy(dtype=float) for c in (schemas.FREQUENCY, schemas.RECENCY, schemas.T))
    components = _window_components(table, purchase, gamma_gamma, value_window, churn_window, unit, None, btyd)
    value_inputs = _value_inputs(table, components, btyd, unit)
    window, churn_window_labels = future_values(history, cutoff, (value_window, churn_window))  # one pass
    window = window.reindex(table.index).fillna(0.0)
    spend = window[SPEND_WINDOW]
    churned = (churn_window_labels["purchase_days_window"].reindex(table.index).fillna(0) == 0).astype(int)
    return InnerExamples(
        cutoff=cutoff, table=table, btyd=btyd, components=components, value_inputs=value_inputs,
        churn_inputs=supervised_frame(table, btyd), spend_window=np.clip(spend.to_numpy(dtype=float), 0.0, None),
        purchase_days=window["purchase_days_window"].to_numpy(dtype=float),
        churned=churned.to_numpy(), closed_form_churn=closed_form_churn(
            purchase, churn_window / DAYS_PER_TIME_UNIT[unit], f, r, t),
    )


def _window_components(table: pd.DataFrame, purchase: Any, gamma_gamma: GammaGammaModel, value_window: int,
                       churn_window: int, unit: str, value_ml: ValueRegressor | None,
                       btyd: pd.DataFrame | None = None) -> pd.DataFrame:
    """Window-value components of a customer table (btyd, historical, and ml when a model is given)."""
    if btyd is None:
        btyd = btyd_model_features(table, purchase, gamma_gamma, churn_window, unit)
    components = window_components(table, purchase, gamma_gamma, btyd[ORDER_VALUE_FEATURE].to_numpy(),
                                   value_window, unit)
    if value_ml is not None:
        inputs = _value_inputs(table, components, btyd, unit)
        components["ml"] = value_ml.predict(inputs[list(value_ml.feature_names_in_)])
    return components


def _value_inputs(table: pd.DataFrame, components: pd.DataFrame, btyd: pd.DataFrame, unit: str) -> pd.DataFrame:
    named = components[["btyd", "historical"]].set_axis([BTYD_WINDOW_VALUE, HISTORICAL_WINDOW_VALUE], axis=1)
    return tenure_normalised_features(table, named.join(btyd), unit)


def _total_ratio(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Σ actual / Σ predicted (1.0 when undefined)."""
    total = float(np.sum(predicted))
    return float(np.sum(actual) / total) if total > 0 and np.sum(actual) > 0 else 1.0


def _validation_mask(examples: InnerExamples, config: ClvkitConfig) -> np.ndarray:
    """Seeded share of the latest cut-off's customers held out for every inner choice."""
    n = len(examples.table)
    rng = np.random.default_rng(config.seed)
    mask = rng.random(n) < config.models.recipe.validation_share
    if mask.all() or not mask.any():
        mask = np.arange(n) % 2 == 0
    return mask


def _stack(frames: list[pd.DataFrame], validation: np.ndarray | None) -> pd.DataFrame:
    """Stack the examples of every cut-off; the latest cut-off's validation customers left out."""
    first = frames[0] if validation is None else frames[0].loc[~validation]
    return pd.concat([first, *frames[1:]], axis=0, ignore_index=True)


def _stack_values(values: list[np.ndarray], validation: np.ndarray | None) -> np.ndarray:
    first = values[0] if validation is None else values[0][~validation]
    return np.concatenate([first, *values[1:]])


def _cross_fitted_blend(components: pd.DataFrame, actual: np.ndarray, config: ClvkitConfig) -> np.ndarray:
    """Blend predictions on the validation customers, each from weights fitted on the other fold."""
    n_folds = BLEND_FOLDS if len(actual) <= BLEND_MAX_SEARCH_CUSTOMERS else LARGE_BLEND_FOLDS
    folds = np.random.default_rng(config.seed).integers(0, n_folds, len(actual))
    score = _blend_score(config)
    out = np.zeros(len(actual))
    for k in range(n_folds):
        held = folds == k
        if held.all() or not held.any():
            return ValueBlend(source="blend").fit(components, actual, score).predict(components)
        blend = ValueBlend(source="blend").fit(components.loc[~held], actual[~held], score)
        out[held] = blend.predict(components.loc[held])
    return out


def _blend_score(config: ClvkitConfig) -> Callable[[np.ndarray, np.ndarray], float]:
    """Higher-is-better score of a blend's weights: the choice metric (Gini, Spearman or a capture share)."""
    suffix, higher = _choice_metric(config)
    sign = 1.0 if higher else -1.0

    def score(actual: np.ndarray, predicted: np.ndarray) -> float:
        return sign * metrics.value_metrics(actual, predicted, "m").get(f"m_{suffix}", np.nan)

    if suffix == "gini_norm":  # ranking by value and ranking of customers: both, so neither is given up
        parts = [CHOICE_METRIC_FUNCTIONS[name] for name in GINI_CHOICE_METRICS]
        return lambda actual, predicted: float(sum(part(actual, predicted) for part in parts))
    if suffix == "spearman":
        return lambda actual, predicted: float(metrics.spearman(actual, predicted))
    return score


def _choose_clv(candidates: dict[str, np.ndarray], actual: np.ndarray,
                config: ClvkitConfig) -> tuple[str, str, dict[str, float]]:
    """The CLV candidate best on the inner validation window; the historical formula if no model beats it."""
    scores: dict[str, float] = {}
    for name, predicted in candidates.items():
        scores.update(metrics.value_metrics(actual, predicted, f"inner_clv_{name}"))
    policy = config.models.value.clv_policy
    if policy not in CHOOSING_POLICIES:
        source = "ml" if policy == "hybrid" else policy
        if source not in candidates:
            raise UserInputError(f"models.value.clv_policy={policy!r} needs models.value.enabled: true")
        return source, f"fixed by models.value.clv_policy={policy}", scores
    suffix, higher = _choice_metric(config)
    sign = 1.0 if higher else -1.0
    label = "gini_norm + spearman" if suffix == "gini_norm" else suffix

    def score(name: str) -> float:
        if suffix == "gini_norm":  # as the blend's weights: value ranking and customer ranking together
            value = sum(scores.get(f"inner_clv_{name}_{m}", float("nan")) for m in GINI_CHOICE_METRICS)
        else:
            value = scores.get(f"inner_clv_{name}_{suffix}", float("nan"))
        return sign * value if np.isfinite(value) else -np.inf

    models = [n for n in MODEL_CANDIDATES if n in candidates]
    best = max(models, key=lambda n: (score(n), -models.index(n)))
    ranking = ", ".join(f"{n} {sign * score(n):.4f}{'' if n in (*MODEL_CANDIDATES, BASELINE_CANDIDATE) else ' (in the blend)'}"
                        for n in sorted(candidates, key=score, reverse=True))
    if score(best) <= score(BASELINE_CANDIDATE):
        return BASELINE_CANDIDATE, (f"no model beats the historical-spend formula on the inner validation "
                                    f"{label} ({ranking}); serving the historical formula"), scores
    return best, f"best inner-validation {label} ({ranking})", scores


def _choice_metric(config: ClvkitConfig) -> tuple[str, bool]:
    """The value metric candidates are compared on: the primary metric when it is a CLV one, else Gini."""
    primary = config.evaluation.primary_metric
    if primary.startswith("clv_"):
        return primary.removeprefix("clv_"), config.evaluation.primary_metric_higher_is_better
    return "gini_norm", True


def _choose_churn(churn: ChurnClassifier, valid: InnerExamples,
                  validation: np.ndarray) -> tuple[str, str, dict[str, float]]:
    """Classifier only if it beats the best honest baseline on inner validation (ROC AUC and Brier)."""
    y = valid.churned[validation]
    classifier = churn_probability(churn, valid.churn_inputs.loc[validation])
    closed = valid.closed_form_churn[validation]
    days = valid.table["days_since_last_purchase"].to_numpy(dtype=float)[validation] \
        if "days_since_last_purchase" in valid.table.columns else closed
    scores = {
        **metrics.churn_metrics(y, classifier, "inner_churn_classifier"),
        **metrics.churn_metrics(y, closed, "inner_churn_closed_form"),
        "inner_churn_recency_roc_auc": metrics.roc_auc(y, days),
        "inner_churn_recency_pr_auc": metrics.average_precision(y, days),
    }
    auc = scores["inner_churn_classifier_roc_auc"]
    baseline_aucs = [a for a in (scores["inner_churn_closed_form_roc_auc"], scores["inner_churn_recency_roc_auc"])
                     if np.isfinite(a)]
    best_auc = max(baseline_aucs) if baseline_aucs else float("nan")  # NaN: one class among validation customers
    brier, closed_brier = scores["inner_churn_classifier_brier"], scores["inner_churn_closed_form_brier"]
    figures = (f"ROC AUC {auc:.4f} vs best baseline {best_auc:.4f}; "
               f"Brier {brier:.4f} vs closed form {closed_brier:.4f}")
    if np.isfinite(auc) and auc > best_auc and brier <= closed_brier:
        return "classifier", f"classifier beats the baselines on inner validation ({figures})", scores
    return "closed_form", (f"classifier does not beat the baselines on inner validation ({figures}); "
                           "serving the purchase model's P(no purchase in the window)"), scores


def _choose_purchase_model(history: pd.DataFrame, cutoff: dt.date, window_days: int,
                           config: ClvkitConfig) -> tuple[tuple[str, ...], str, dict[str, float]]:
    """The configured purchase model, or for ``auto`` the models ranked on the inner window after ``cutoff``.

    ``auto`` fits every model on the history up to the latest inner cut-off and ranks them by
    purchase MAE over the window after it (``clvkit.models.purchase.compare_purchase_models``;
    models that failed there come last); the first serves, the next ones are fallbacks. Each
    candidate's log-likelihood and window figures are returned as ``inner_purchase_*`` metrics.
    """
    names = purchase_candidates(config)
    if len(names) == 1:
        how = "configured" if config.models.purchase.model != "auto" else "auto with one model available"
        return names, f"{how} (models.purchase.model)", {}
    from clvkit.models.purchase import compare_purchase_models

    builder = make_builder(config).fit(history, as_of=cutoff)
    table = customer_table(builder, history, cutoff)
    actual = future_value(history, cutoff, window_days)["purchase_days_window"].reindex(table.index).fillna(0)
    best, comparison = compare_purchase_models(
        table[list(schemas.BTYD_COLUMNS)], actual.to_numpy(dtype=float),
        window_days / DAYS_PER_TIME_UNIT[config.data.time_unit], names,
        penalizer=config.models.bgnbd.penalizer, random_state=config.seed)
    scores: dict[str, float] = {}
    for name, row in comparison.iterrows():
        for column in ("log_likelihood", "bic", "holdout_mae", "holdout_aggregate_error_pct"):
            value = pd.to_numeric(row.get(column), errors="coerce")
            if pd.notna(value):
                scores[f"inner_purchase_{name}_{column}"] = float(value)
    ranking = ", ".join(f"{n} {scores.get(f'inner_purchase_{n}_holdout_mae', float('nan')):.4f}"
                        for n in comparison.index)
    mae = {str(n): scores.get(f"inner_purchase_{n}_holdout_mae", np.inf) for n in comparison.index}
    ranked = (str(best), *sorted((n for n in mae if n != best), key=lambda n: mae[n]))
    return ranked, f"auto: lowest purchase MAE on the inner window after {cutoff} ({ranking})", scores


def _churn_model(config: ClvkitConfig) -> ChurnClassifier:
    c = config.churn
    return ChurnClassifier(
        n_estimators=c.n_estimators, max_depth=c.max_depth, learning_rate=c.learning_rate,
        early_stopping_rounds=c.early_stopping_rounds, validation_fraction=c.validation_fraction,
        calibration=c.calibration, random_state=config.seed, n_jobs=constants.RECIPE_BOOSTER_THREADS,
        max_train_rows=c.max_train_rows,
    )


def _value_model(config: ClvkitConfig) -> ValueRegressor:
    v = config.models.value
    return ValueRegressor(
        tweedie_variance_power=v.tweedie_variance_power, n_estimators=v.n_estimators,
        max_depth=v.max_depth, learning_rate=v.learning_rate, random_state=config.seed,
        n_jobs=constants.RECIPE_BOOSTER_THREADS, max_train_rows=v.max_train_rows,
    )
