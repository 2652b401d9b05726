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
