"""Named constants: units, defaults and thresholds used across clvkit.

Every number that carries meaning lives here, with its unit in its name.
"""

from __future__ import annotations

from typing import Final

# --- time units ---------------------------------------------------------------
#: Supported model time units: days, weeks, months (of average length).
TIME_UNITS: Final = ("D", "W", "M")
DAYS_PER_WEEK: Final = 7.0
#: Average Gregorian month (365.2425 / 12 days); lifetimes' magic 4.345 weeks ~ 30.4 days.
DAYS_PER_MONTH: Final = 365.2425 / 12.0
DAYS_PER_YEAR: Final = 365.2425
MONTHS_PER_YEAR: Final = 12
#: Length of one model time unit in days.
DAYS_PER_TIME_UNIT: Final = {"D": 1.0, "W": DAYS_PER_WEEK, "M": DAYS_PER_MONTH}

# --- CLV defaults -------------------------------------------------------------
DEFAULT_HORIZON_MONTHS: Final = 12
DEFAULT_DISCOUNT_RATE_ANNUAL: Final = 0.10
DEFAULT_MARGIN: Final = 1.0

# --- churn --------------------------------------------------------------------
DEFAULT_CHURN_WINDOW_DAYS: Final = 90

# --- ingestion ------------------------------------------------------------------
#: Default plausibility bound on one line's |amount| (currency units): beyond it the row is invalid_amount.
DEFAULT_MAX_ABS_AMOUNT: Final = 1e12
#: Rows of a timestamp column sampled to detect its date format (the full column is then parsed once).
DATE_FORMAT_SAMPLE_ROWS: Final = 20_000
#: Bytes read from the start of a CSV file to detect its delimiter and check its encoding.
CSV_SNIFF_BYTES: Final = 65_536

# --- validation reporting -----------------------------------------------------
#: How many offending rows an input error shows.
MAX_EXAMPLE_ROWS: Final = 5
#: How many existing column names an error lists before eliding.
MAX_LISTED_COLUMNS: Final = 30

# --- value tiers (cumulative share of value) ----------------------------------
DEFAULT_TIER_A_SHARE: Final = 0.80
DEFAULT_TIER_B_SHARE: Final = 0.95

# --- RFM ----------------------------------------------------------------------
RFM_SCORE_BINS: Final = 5

# --- Gamma-Gamma --------------------------------------------------------------
#: Above this |corr(frequency, monetary_value)| the Gamma-Gamma independence assumption is doubtful.
GG_MAX_FREQ_SPEND_CORRELATION: Final = 0.3

# --- exit codes ---------------------------------------------------------------
EXIT_OK: Final = 0
EXIT_INTERNAL_ERROR: Final = 1
EXIT_BAD_INPUT: Final = 2
#: Interrupted by SIGINT/SIGTERM (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED: Final = 130

# --- defaults for the built-in data -------------------------------------------
DEFAULT_TIMEZONE: Final = "UTC"
DEFAULT_RANDOM_SEED: Final = 42

# --- models ---------------------------------------------------------------------
#: Penalizer suggested in convergence errors of the lifetimes models (L2 on the parameters).
SUGGESTED_PENALIZER: Final = 0.001
#: Optimiser tolerance passed to lifetimes' fitters (its default).
LIFETIMES_FIT_TOLERANCE: Final = 1e-7
#: Seeded optimiser starts of the purchase and spend model fits (the first is lifetimes' start).
DEFAULT_FIT_STARTS: Final = 3
#: Standard deviation of the perturbation of the further starts, in log-parameters.
FIT_START_SCALE: Final = 1.0
#: A fit has converged when the gradient norm of the mean NLL (log-parameters) is below this
#: and the Hessian is positive definite, whatever the optimiser's own message says.
FIT_GRADIENT_TOLERANCE: Final = 1e-5
#: ... or when the log-likelihood (total over customers, not the mean) is estimated to lie within
#: this many nats of its optimum: n/2 g'H^-1 g, the Newton decrement of the mean NLL times the
#: customer count (scale-aware: 10x below the smallest log-likelihood gain the models interpret).
FIT_LOG_LIKELIHOOD_SHORTFALL: Final = 1e-4
#: Relative step of the central-difference Hessian (of the analytic gradient).
FIT_HESSIAN_STEP: Final = 1e-5
#: A model's analytic Hessian is used when it predicts the change of the gradient along one
#: step of FIT_HESSIAN_STEP to this relative error; otherwise the central-difference Hessian is.
FIT_HESSIAN_CHECK_TOLERANCE: Final = 1e-3
#: Box on log-parameters (e^30 ~ 1e13): a parameter that reaches it is diverging.
FIT_LOG_PARAM_BOUND: Final = 30.0
FIT_MAX_ITERATIONS: Final = 2000
#: Newton steps polishing the best optimum with the numerical Hessian.
FIT_NEWTON_STEPS: Final = 5
#: A Newton polish step may leave the mean NLL higher by this relative rounding (summed over many
#: rows it ties at the optimum); the gradient norm must still fall.
FIT_VALUE_ROUNDING: Final = 1e-13
#: Penalizers tried in order when a fit does not converge (the first that converges is used).
PENALIZER_PATH: Final = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: Dropout is unidentifiable (fit degenerate, predictions from the limiting NBD model) when the
#: mean dropout probability per purchase (BG/NBD a/(a+b)) or the mean dropout rate per period
#: (Pareto/NBD s/beta) falls below this ...
DEGENERATE_MEAN_DROPOUT: Final = 1e-6
#: ... or when the model's log-likelihood exceeds the NBD model's by less than this (nats).
DEGENERATE_LOG_LIKELIHOOD_GAIN: Final = 1e-3
#: Fewest repeat customers with positive spend for a Gamma-Gamma fit (else the fallback).
GG_MIN_REPEAT_CUSTOMERS: Final = 10
#: Smallest q of a registered Gamma-Gamma model (q <= 1 leaves the mean spend undefined).
GG_MIN_Q: Final = 1.0 + 1e-3
#: Gamma-Gamma fits on spend divided by a power of ten when the median spend leaves this range.
GG_SPEND_SCALE_RANGE: Final = (1e-2, 1e4)
#: Equal-width probability bins of the churn reliability table.
RELIABILITY_BINS: Final = 10
#: Churn classifier defaults (XGBoost, hist trees).
DEFAULT_CHURN_N_ESTIMATORS: Final = 500
DEFAULT_CHURN_MAX_DEPTH: Final = 4
DEFAULT_CHURN_LEARNING_RATE: Final = 0.05
DEFAULT_CHURN_EARLY_STOPPING_ROUNDS: Final = 30
DEFAULT_CHURN_VALIDATION_FRACTION: Final = 0.2
#: Fewest members of each class for a stratified train/validation split.
MIN_CHURN_CLASS_COUNT: Final = 2

# --- evaluation -----------------------------------------------------------------
#: 100: fractions reported as percentages (``*_pct`` metrics, MAPE).
PERCENT: Final = 100.0
#: Last calibration-frequency bin of the conditional-expectations table ("7+").
DEFAULT_CALIBRATION_MAX_FREQUENCY: Final = 7
#: Prediction-ranked groups of the decile chart and decile MAPE.
N_DECILES: Final = 10
#: Top shares of customers (by prediction) whose realised value capture is reported.
TOP10_FRACTION: Final = 0.10
TOP20_FRACTION: Final = 0.20
#: Share of customers (highest churn score) whose churn rate defines the top-decile lift.
TOP_DECILE_FRACTION: Final = 0.10
#: Equal-width probability bins of the expected calibration error (ECE).
ECE_BINS: Final = 10
#: Floor of the observed time (model time units) of the historical-spend baseline.
HISTORICAL_BASELINE_MIN_EXPOSURE: Final = 1.0
#: Bars shown by the feature-importance plot.
FEATURE_IMPORTANCE_TOP_N: Final = 20
#: Recency points of the P(alive) matrix grid.
P_ALIVE_GRID_POINTS: Final = 50
#: Figure sizes (inches) and PNG resolution (dots per inch) of the evaluation plots.
FIGURE_SIZE_INCHES: Final = (7.0, 4.5)
WIDE_FIGURE_SIZE_INCHES: Final = (12.0, 4.5)
FIGURE_DPI: Final = 100

# --- features -------------------------------------------------------------------
#: Trailing windows (days) of the behavioural features: spend and purchase days in (c - w, c].
DEFAULT_TRAILING_WINDOWS_DAYS: Final = (30, 90, 180)

# --- Spark engine -----------------------------------------------------------------
#: Spark master of the Spark engine when the config names none (all local cores).
DEFAULT_SPARK_MASTER: Final = "local[*]"
#: Customers collected to the driver to train the supervised models: with their
#: transactions and the pandas feature pipeline this keeps the driver well under 2 GB.
DEFAULT_SPARK_SAMPLE_CUSTOMERS: Final = 200_000
#: spark.sql.shuffle.partitions of the Spark engine (Spark's own default, 200, suits clusters
#: of many executors, not one machine).
DEFAULT_SPARK_SHUFFLE_PARTITIONS: Final = 8

# --- training recipe (inner time design) ------------------------------------------
#: Supervised examples are stacked from at most this many inner cut-offs.
DEFAULT_MAX_INNER_CUTOFFS: Final = 3
#: Share of the latest inner cut-off's customers held out to choose among CLV candidates and churn sources.
DEFAULT_INNER_VALIDATION_SHARE: Final = 0.3
#: Evaluation origins of `clvkit train` (the recipe is re-fitted at each).
DEFAULT_EVALUATION_ORIGINS: Final = 1
#: Booster threads of the recipe's models: one thread each (OpenMP threads spin-wait, and on a shared
#: machine several threads per booster make training many times slower; results stay machine-independent).
RECIPE_BOOSTER_THREADS: Final = 1
#: Training rows of each recipe booster (value, churn) above which it fits on a seeded stratified sample
#: (models.value.max_train_rows, churn.max_train_rows); chosen so holdout figures stay within noise (bench/).
DEFAULT_BOOSTER_MAX_TRAIN_ROWS: Final = 100_000
#: Quantile of inter-purchase gaps that sets the churn window when churn.window_days is null.
CHURN_WINDOW_GAP_QUANTILE: Final = 0.9
#: Bounds of a churn window derived from the data (days).
MIN_DERIVED_CHURN_WINDOW_DAYS: Final = 7
#: A derived churn window leaves at least this share of the history before the inner cut-off.
DERIVED_CHURN_WINDOW_MAX_HISTORY_SHARE: Final = 1 / 3

# --- customer value (current value, RFM cycle, intervals, churn loss, quadrant) ---------
#: Trailing window (days) of ``current_value_trailing``: gross margin earned in (c - w, c].
DEFAULT_CURRENT_VALUE_WINDOW_DAYS: Final = 365
#: RFM recency edges as multiples of the purchase cycle: R5 <= 0.5 cycle, R4 <= 1, R3 <= 2, R2 <= 4.
RFM_RECENCY_CYCLE_MULTIPLES: Final = (0.5, 1.0, 2.0, 4.0)
#: Purchase cycle (days) when no customer has two purchase days, and the cycle's floor.
DEFAULT_PURCHASE_CYCLE_DAYS: Final = 30.0
MIN_PURCHASE_CYCLE_DAYS: Final = 1.0
#: Quantile levels of the CLV interval (clv_p10, clv_p90) and its Monte Carlo draws.
DEFAULT_CLV_INTERVAL_LEVELS: Final = (0.1, 0.9)
DEFAULT_CLV_INTERVAL_DRAWS: Final = 200
#: Floor of P(alive) when the value if retained is derived as clv / P(alive): bounds it at
#: 1 / floor = 20 x clv.
CHURN_LOSS_MIN_P_RETAINED: Final = 0.05
#: Share of total value held by the "high" customers of the quadrant's ``share`` method.
DEFAULT_QUADRANT_VALUE_SHARE: Final = 0.80
#: Share of customers (highest churn-loss value) whose share of the value at risk is reported.
VALUE_AT_RISK_TOP_FRACTION: Final = 0.10
#: Value quadrant cells (<current>_<future>), their default names and one-line actions.
DEFAULT_QUADRANT_NAMES: Final = {
    "high_high": "Stars",
    "high_low": "Fading",
    "low_high": "Rising",
    "low_low": "Low value",
}
DEFAULT_QUADRANT_ACTIONS: Final = {
    "high_high": "Retain and grow: priority service, loyalty benefits, early access.",
    "high_low": "Win back: reactivation offer now, before the relationship lapses.",
    "low_high": "Develop: nurture and cross-sell to turn expected value into realised value.",
    "low_low": "Maintain at low cost: automated, low-touch contact only.",
}
