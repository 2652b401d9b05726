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

# --- defaults for the built-in data -------------------------------------------
DEFAULT_TIMEZONE: Final = "UTC"
DEFAULT_RANDOM_SEED: Final = 42

# --- models ---------------------------------------------------------------------
#: Penalizer suggested in convergence errors of the lifetimes models (L2 on the parameters).
SUGGESTED_PENALIZER: Final = 0.001
#: Optimiser tolerance passed to lifetimes' fitters (its default).
LIFETIMES_FIT_TOLERANCE: Final = 1e-7
#: Equal-width probability bins of the churn reliability table.
RELIABILITY_BINS: Final = 10
#: Churn classifier defaults (XGBoost, hist trees).
DEFAULT_CHURN_N_ESTIMATORS: Final = 500
DEFAULT_CHURN_MAX_DEPTH: Final = 4
DEFAULT_CHURN_LEARNING_RATE: Final = 0.05
DEFAULT_CHURN_EARLY_STOPPING_ROUNDS: Final = 30
DEFAULT_CHURN_VALIDATION_FRACTION: Final = 0.2
#: Fixed thread count of the churn booster: results do not depend on the machine.
DEFAULT_CHURN_N_JOBS: Final = 2
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
