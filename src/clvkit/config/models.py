"""Pydantic models of a clvkit configuration: frozen, unknown keys rejected.

The MLflow tracking URI is not part of the config: it comes from the environment
(``MLFLOW_TRACKING_URI``), defaulting to MLflow's own default (``sqlite:///mlflow.db``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

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

    @model_validator(mode="after")
    def _amount_or_price(self) -> ColumnMapping:
        if self.amount is None and (self.quantity is None or self.unit_price is None):
            raise ValueError(
                "map either 'amount' or both 'quantity' and 'unit_price' (amount = quantity × unit_price)"
            )
        if self.cost is not None and self.margin is not None:
            raise ValueError("map 'cost' or 'margin', not both")
        return self


class ValidationPolicies(_Frozen):
    """What to do with each class of bad rows: stop with an error, or quarantine them."""

    missing_customer_id: RowPolicy = "error"
    invalid_timestamp: RowPolicy = "error"
    invalid_amount: RowPolicy = Field("error", description="Non-numeric, NaN or infinite amounts.")
    duplicate_rows: KeepablePolicy = Field(
        "quarantine", description="Exact duplicate lines; 'keep' where identical lines are real orders."
    )
    after_observation_end: RowPolicy = Field(
        "quarantine", description="Rows dated after data.observation_end."
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
    date_format: str | None = Field(None, description="strftime format of timestamps; None to infer.")
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

    @model_validator(mode="after")
    def _ordered_dates(self) -> DataConfig:
        if self.calibration_end and self.observation_end and self.calibration_end >= self.observation_end:
            raise ValueError(
                f"calibration_end ({self.calibration_end}) must be before observation_end ({self.observation_end})"
            )
        return self


class FeaturesConfig(_Frozen):
    """Feature-table options."""

    trailing_windows_days: tuple[int, ...] = (30, 90, 180)
    tier_shares: tuple[float, float] = (constants.DEFAULT_TIER_A_SHARE, constants.DEFAULT_TIER_B_SHARE)
    rfm_segments: dict[str, str] | None = Field(
        None, description="Pattern of R and F scores (e.g. '[4-5][4-5]') -> segment name; defaults when null."
    )

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


class PenalizedModelConfig(_Frozen):
    """A lifetimes model with an L2 penalizer."""

    penalizer: float = Field(0.0, ge=0)


class ChurnConfig(_Frozen):
    """XGBoost churn classifier: label = no purchase within window_days after the cut-off."""

    window_days: int = Field(constants.DEFAULT_CHURN_WINDOW_DAYS, gt=0)
    inner_cutoff: dt.date | None = Field(
        None, description="Cut-off for supervised training inside calibration; default: calibration_end - window."
    )
    n_estimators: int = Field(500, gt=0)
    max_depth: int = Field(4, gt=0, le=16)
    learning_rate: float = Field(0.05, gt=0, le=1)
    early_stopping_rounds: int = Field(30, gt=0)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    calibration: Literal["isotonic", "sigmoid", "none"] = "isotonic"


class ValueModelConfig(_Frozen):
    """The ML challenger (XGBoost Tweedie) and which CLV the served scorer returns."""

    enabled: bool = True
    tweedie_variance_power: float = Field(1.5, gt=1, lt=2)
    n_estimators: int = Field(600, gt=0)
    max_depth: int = Field(4, gt=0, le=16)
    learning_rate: float = Field(0.05, gt=0, le=1)
    clv_policy: Literal["best_on_holdout", "btyd", "ml", "hybrid"] = "best_on_holdout"


class ModelsConfig(_Frozen):
    """Models and the time design of a training run."""

    bgnbd: PenalizedModelConfig = PenalizedModelConfig()
    gamma_gamma: PenalizedModelConfig = PenalizedModelConfig()
    value: ValueModelConfig = ValueModelConfig()
    refit_on_full_history: bool = Field(
        True, description="Refit on all history up to observation_end for the served model."
    )


class EvaluationConfig(_Frozen):
    """Holdout evaluation and champion selection."""

    primary_metric: str = "clv_gini_norm"
    primary_metric_higher_is_better: bool = True


class MlflowConfig(_Frozen):
    """MLflow experiment and registry names (the tracking URI comes from MLFLOW_TRACKING_URI)."""

    experiment: str = "clvkit"
    registered_model: str = "clvkit-scorer"


class ClvkitConfig(_Frozen):
    """A whole clvkit configuration."""

    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    clv: ClvConfig = ClvConfig()
    churn: ChurnConfig = ChurnConfig()
    models: ModelsConfig = ModelsConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    mlflow: MlflowConfig = MlflowConfig()
    seed: int = constants.DEFAULT_RANDOM_SEED
