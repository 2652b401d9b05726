"""Pydantic models of a clvkit configuration: frozen, unknown keys rejected.

The MLflow tracking URI is not part of the config: it comes from the environment
(``MLFLOW_TRACKING_URI``), defaulting to MLflow's own default (``sqlite:///mlflow.db``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clvkit import constants

RowPolicy = Literal["error", "quarantine"]
KeepablePolicy = Literal["error", "quarantine", "keep"]
ReturnsPolicy = Literal["net", "error", "quarantine"]
TimeUnit = Literal["D", "W", "M"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnMapping(_Frozen):
    """clvkit column name -> column in the source file (``null`` when absent)."""

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str | None = Field("amount", description="Line revenue; or give quantity + unit_price.")
    quantity: str | None = None
    unit_price: str | None = None
    order_id: str | None = None
    cost: str | None = Field(None, description="Cost of goods of the line (currency).")
    margin: str | None = Field(None, description="Gross-margin share of the line's revenue, 0..1.")
    product: str | None = None
    category: str | None = None
    channel: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _price_without_amount_key(cls, data: object) -> object:
        """quantity + unit_price mapped and no ``amount`` key: amount = quantity × unit_price."""
        if isinstance(data, dict) and "amount" not in data and data.get("quantity") and data.get("unit_price"):
            return {**data, "amount": None}
        return data

    @model_validator(mode="after")
    def _amount_or_price(self) -> ColumnMapping:
        # amount null and not both quantity and unit_price: a count-only log (no spend column).
        if self.cost is not None and self.margin is not None:
            raise ValueError("map 'cost' or 'margin', not both")
        return self

    @property
    def has_amount(self) -> bool:
        """True when the transactions carry spend (an amount, or quantity × unit_price)."""
        return self.amount is not None or (self.quantity is not None and self.unit_price is not None)


class ValidationPolicies(_Frozen):
    """What to do with each class of bad rows: stop with an error, or quarantine them."""

    missing_customer_id: RowPolicy = "error"
    invalid_timestamp: RowPolicy = "error"
    invalid_amount: RowPolicy = Field(
        "error", description="Non-numeric, NaN or infinite amounts, and amounts beyond max_abs_amount."
    )
    max_abs_amount: float = Field(
        constants.DEFAULT_MAX_ABS_AMOUNT, gt=0,
        description="Plausibility bound: a line whose |amount| exceeds it is an invalid_amount row.",
    )
    duplicate_rows: KeepablePolicy = Field(
        "quarantine", description="Exact duplicate lines; 'keep' where identical lines are real orders."
    )
    after_observation_end: RowPolicy = Field(
        "quarantine", description="Rows dated after data.observation_end."
    )
    after_as_of: RowPolicy = Field(
        "quarantine", description="clvkit predict: rows dated after the scoring date (--as-of, or today)."
    )
    zero_amount: KeepablePolicy = Field(
        "keep", description="Zero-amount lines: a purchase event with no spend (kept and counted)."
    )
    negative_amount: ReturnsPolicy = Field(
        "net",
        description="Returns: 'net' against the same customer's same-day spend "
        "(unmatched returns are quarantined), or 'error' / 'quarantine'.",
    )


class DataConfig(_Frozen):
    """Where the transactions come from and the time frame the models see."""

    source: str = Field("cdnow_sample", description="Built-in dataset name or a .csv/.parquet path.")
    columns: ColumnMapping = ColumnMapping()
    time_unit: TimeUnit = Field("W", description="Unit of recency, T and horizons inside the models.")
    timezone: str = Field(constants.DEFAULT_TIMEZONE, description="Time zone of day boundaries.")
    date_format: str | None = Field(
        None, description="strftime format of timestamps; None to detect it (one format per column, or an error)."
    )
    dayfirst: bool | None = Field(
        None, description="Slash dates such as 03/04/2024: true = day first (DD/MM), false = month first "
        "(MM/DD); None = decide from the data (values above 12) or stop with an error when it cannot.",
    )
    encoding: str | None = Field(None, description="Text encoding of CSV files, e.g. latin-1; None = UTF-8.")
    delimiter: str | None = Field(
        None, description="CSV field delimiter, e.g. ';'; None = detect from the header line."
    )
    calibration_end: dt.date | None = Field(
        None, description="End of the calibration period; derived (and reported) when absent."
    )
    observation_end: dt.date | None = Field(
        None, description="End of the history the model may see; the last transaction date when absent."
    )
    validation: ValidationPolicies = ValidationPolicies()
    quarantine_path: str = Field(
        "outputs/quarantine.csv", description="Where quarantined rows go, with a 'reason' column."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        import zoneinfo

        if value not in zoneinfo.available_timezones():
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        import codecs

        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown text encoding {value!r}; use e.g. 'utf-8', 'latin-1' or 'cp1252'") from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"the delimiter must be one character, e.g. ';' or '\\t' (got {value!r})")
        return value

    @model_validator(mode="after")
    def _ordered_dates(self) -> DataConfig:
        if self.calibration_end and self.observation_end and self.calibration_end >= self.observation_end:
            raise ValueError(
                f"calibration_end ({self.calibration_end}) must be before observation_end ({self.observation_end})"
            )
        return self


QuadrantCell = Literal["high_high", "high_low", "low_high", "low_low"]


class QuadrantConfig(_Frozen):
    """Value quadrant: current value high/low x future value (clv) high/low, thresholds learnt at training.

    Cells are named ``<current>_<future>``: ``high_low`` = high current value, low future value.
    """

    method: Literal["median", "share", "absolute"] = Field(
        "median", description="median: above the training median; share: the customers holding `share` of the "
        "total value (largest first); absolute: `current_threshold` / `future_threshold` amounts.",
    )
    share: float = Field(constants.DEFAULT_QUADRANT_VALUE_SHARE, gt=0, le=1)
    current_threshold: float | None = Field(None, ge=0, description="Gross margin (currency); method absolute.")
    future_threshold: float | None = Field(None, ge=0, description="CLV (currency); method absolute.")
    names: dict[QuadrantCell, str] = Field(
        default_factory=lambda: dict(constants.DEFAULT_QUADRANT_NAMES), description="Cell -> name."
    )
    actions: dict[QuadrantCell, str] = Field(
        default_factory=lambda: dict(constants.DEFAULT_QUADRANT_ACTIONS), description="Cell -> one-line action."
    )

    @field_validator("names", "actions", mode="before")
    @classmethod
    def _over_defaults(cls, value: object, info: Any) -> object:
        """A partial mapping renames only the cells it gives."""
        defaults = constants.DEFAULT_QUADRANT_NAMES if info.field_name == "names" else constants.DEFAULT_QUADRANT_ACTIONS
        return {**defaults, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _complete(self) -> QuadrantConfig:
        if self.method == "absolute" and (self.current_threshold is None or self.future_threshold is None):
            raise ValueError("features.quadrant.method 'absolute' needs current_threshold and future_threshold")
        cells = set(constants.DEFAULT_QUADRANT_NAMES)
        for key in ("names", "actions"):
            missing = cells - set(getattr(self, key))
            if missing:
                raise ValueError(f"features.quadrant.{key} must name all four cells; missing {sorted(missing)}")
        if len(set(self.names.values())) != len(cells):
            raise ValueError("features.quadrant.names must be four different names")
        return self


class FeaturesConfig(_Frozen):
    """Feature-table options."""

    trailing_windows_days: tuple[int, ...] = (30, 90, 180)
    tier_shares: tuple[float, float] = (constants.DEFAULT_TIER_A_SHARE, constants.DEFAULT_TIER_B_SHARE)
    rfm_segments: dict[str, str] | None = Field(
        None, description="Pattern of R and FM scores (e.g. '[4-5][4-5]') -> segment name; defaults when null. "
        "FM = min(ceil((F + M) / 2), F + 1)."
    )
    rfm_recency_days: tuple[float, float, float, float] | None = Field(
        None, description="Absolute recency edges in days (R5 <= first ... R1 > last); null: derived from the "
        "purchase cycle (median gap of repeat customers) x rfm_recency_cycle_multiples.",
    )
    rfm_recency_cycle_multiples: tuple[float, float, float, float] = Field(
        constants.RFM_RECENCY_CYCLE_MULTIPLES, description="Recency edges in purchase cycles."
    )
    current_value_window_days: int = Field(
        constants.DEFAULT_CURRENT_VALUE_WINDOW_DAYS, gt=0,
        description="Trailing window of current_value_trailing (gross margin earned in the last N days).",
    )
    quadrant: QuadrantConfig = QuadrantConfig()

    @field_validator("trailing_windows_days")
    @classmethod
    def _positive_windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w <= 0 for w in value):
            raise ValueError("trailing windows must be a non-empty list of positive day counts")
        return value

    @field_validator("tier_shares")
    @classmethod
    def _ordered_shares(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1] <= 1:
            raise ValueError("tier shares must satisfy 0 < A share < B share <= 1, e.g. [0.8, 0.95]")
        return value


class ClvConfig(_Frozen):
    """Discounted gross-margin CLV."""

    horizon_months: int = Field(constants.DEFAULT_HORIZON_MONTHS, gt=0, le=120)
    discount_rate_annual: float = Field(constants.DEFAULT_DISCOUNT_RATE_ANNUAL, ge=0, lt=1)
    margin: float = Field(
        constants.DEFAULT_MARGIN, ge=0, le=1,
        description="Gross-margin share of revenue; a mapped cost/margin column overrides it per customer.",
    )
    value_per_purchase: float | None = Field(
        None, gt=0,
        description="Revenue per purchase for count-only logs (no amount column); without it a count-only "
        "run serves no CLV columns.",
    )
    interval_levels: tuple[float, float] = Field(
        constants.DEFAULT_CLV_INTERVAL_LEVELS,
        description="Quantile levels of clv_p10 / clv_p90 (predictive distribution of the discounted value).",
    )
    interval_draws: int = Field(
        constants.DEFAULT_CLV_INTERVAL_DRAWS, ge=20, le=10_000,
        description="Monte Carlo draws (parameters + purchase/spend process) per customer for the interval.",
    )

    @field_validator("interval_levels")
    @classmethod
    def _ordered_levels(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1] < 1:
            raise ValueError("clv.interval_levels must satisfy 0 < low < high < 1, e.g. [0.1, 0.9]")
        return value


class PenalizedModelConfig(_Frozen):
    """A fitted model with an L2 penalizer on its log-parameters."""

    penalizer: float = Field(0.0, ge=0)


class ChurnConfig(_Frozen):
    """XGBoost churn classifier: label = no purchase within window_days after the cut-off."""

    window_days: int | None = Field(
        constants.DEFAULT_CHURN_WINDOW_DAYS, gt=0,
        description="Churn = no purchase within this many days; null derives it from the data "
        "(a high quantile of inter-purchase gaps, logged).",
    )
    inner_cutoff: dt.date | None = Field(
        None, description="Cut-off for supervised training inside calibration; default: calibration_end - window."
    )
    n_estimators: int = Field(500, gt=0)
    max_depth: int = Field(4, gt=0, le=16)
    learning_rate: float = Field(0.05, gt=0, le=1)
    early_stopping_rounds: int = Field(30, gt=0)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    calibration: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    max_train_rows: int | None = Field(
        constants.DEFAULT_BOOSTER_MAX_TRAIN_ROWS, ge=4,
        description="Above this many training rows the classifier fits on a seeded sample of this size, "
        "stratified by label; null: every row.",
    )


class ValueModelConfig(_Frozen):
    """The ML challenger (XGBoost Tweedie) and which CLV the served scorer returns."""

    enabled: bool = True
    tweedie_variance_power: float = Field(1.5, gt=1, lt=2)
    n_estimators: int = Field(600, gt=0)
    max_depth: int = Field(4, gt=0, le=16)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_train_rows: int | None = Field(
        constants.DEFAULT_BOOSTER_MAX_TRAIN_ROWS, ge=2,
        description="Above this many training rows the value booster fits on a seeded sample of this size, "
        "stratified by target; null: every row.",
    )
    clv_policy: Literal["best_on_holdout", "best_inner", "btyd", "btyd_all", "ml", "blend", "historical",
                        "hybrid"] = Field(
        "best_inner",
        description="best_inner: the candidate (btyd, btyd_all, ml, blend, historical) best on the inner "
        "validation window; or a fixed source (btyd_all: BTYD with Gamma-Gamma conditioned on every purchase, "
        "the first included). best_on_holdout is the old name of best_inner.",
    )


class PurchaseModelConfig(_Frozen):
    """Which BTYD purchase model: one by name, or ``auto`` (chosen on an inner validation window)."""

    model: Literal["bgnbd", "mbgnbd", "pnbd", "auto"] = "bgnbd"


class RecipeConfig(_Frozen):
    """The inner time design of one recipe fit: stacked inner cut-offs, inner validation share."""

    max_inner_cutoffs: int = Field(
        constants.DEFAULT_MAX_INNER_CUTOFFS, gt=0,
        description="Supervised examples are stacked from up to this many inner cut-offs.",
    )
    validation_share: float = Field(
        constants.DEFAULT_INNER_VALIDATION_SHARE, gt=0, lt=1,
        description="Share of the customers at the latest inner cut-off held out to choose among candidates.",
    )


class ModelsConfig(_Frozen):
    """Models and the time design of a training run."""

    purchase: PurchaseModelConfig = PurchaseModelConfig()
    recipe: RecipeConfig = RecipeConfig()
    bgnbd: PenalizedModelConfig = Field(
        PenalizedModelConfig(), description="L2 penalizer of the purchase model, whichever models.purchase.model is."
    )
    gamma_gamma: PenalizedModelConfig = PenalizedModelConfig()
    value: ValueModelConfig = ValueModelConfig()
    refit_on_full_history: bool = Field(
        True, description="Refit on all history up to observation_end for the served model."
    )


class EvaluationConfig(_Frozen):
    """Holdout evaluation and champion selection."""

    primary_metric: str = Field(
        "clv_gini_norm", description="Metric that picks the champion; a name from clvkit.evaluation.registry."
    )
    primary_metric_higher_is_better: bool = Field(
        True, description="Direction of primary_metric; when omitted it comes from the metric registry."
    )

    @model_validator(mode="before")
    @classmethod
    def _primary_metric_is_known(cls, data: object) -> object:
        """An unknown metric fails here (config validate), not after training; the direction follows it."""
        if not isinstance(data, dict) or "primary_metric" not in data:
            return data
        from clvkit.evaluation import registry

        name = data["primary_metric"]
        spec = registry.find_metric(name) if isinstance(name, str) else None
        if spec is None:
            raise ValueError(
                f"primary_metric {name!r} is not a clvkit metric; choose one of: "
                f"{', '.join(registry.example_names())} (value metrics also as clv_ml_*, clv_btyd_*, ...)"
            )
        if spec.direction == registry.CLOSER_TO_ZERO:
            raise ValueError(f"primary_metric {name!r} is a signed error and cannot rank models; choose "
                             "a metric that is better higher or lower, e.g. clv_gini_norm or purchases_mae")
        given = data.get("primary_metric_higher_is_better")
        if given is None:
            return {**data, "primary_metric_higher_is_better": spec.higher_is_better}
        if isinstance(given, bool) and given != spec.higher_is_better:
            raise ValueError(
                f"primary_metric_higher_is_better={given} contradicts {name!r}, which is better "
                f"{spec.direction}; drop the key (it follows the metric)"
            )
        return data
    n_origins: int = Field(
        constants.DEFAULT_EVALUATION_ORIGINS, gt=0,
        description="Evaluation origins inside the history at which train re-runs the whole recipe "
        "(the latest is data.calibration_end; earlier ones step back by the holdout length while history allows).",
    )


class MlflowConfig(_Frozen):
    """MLflow experiment and registry names (the tracking URI comes from MLFLOW_TRACKING_URI)."""

    experiment: str = "clvkit"
    registered_model: str = "clvkit-scorer"


class SparkConfig(_Frozen):
    """The Spark engine: where Spark runs and how much of the data reaches the driver."""

    master: str = Field(constants.DEFAULT_SPARK_MASTER, description="Spark master URL, e.g. local[*] or yarn.")
    conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark settings, e.g. {spark.driver.memory: 4g}."
    )
    sample_customers: int = Field(
        constants.DEFAULT_SPARK_SAMPLE_CUSTOMERS, gt=0,
        description="Customers whose transactions are collected to the driver to train the supervised "
        "models (seeded sample stratified by purchase frequency); BTYD models use every customer.",
    )
    shuffle_partitions: int = Field(
        constants.DEFAULT_SPARK_SHUFFLE_PARTITIONS, gt=0, description="spark.sql.shuffle.partitions."
    )


class ClvkitConfig(_Frozen):
    """A whole clvkit configuration."""

    engine: Literal["pandas", "spark"] = Field(
        "pandas", description="pandas (one process, the default) or spark (the same config on a Spark cluster)."
    )
    spark: SparkConfig = SparkConfig()

    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    clv: ClvConfig = ClvConfig()
    churn: ChurnConfig = ChurnConfig()
    models: ModelsConfig = ModelsConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    mlflow: MlflowConfig = MlflowConfig()
    seed: int = constants.DEFAULT_RANDOM_SEED
