"""Canonical column names of the transaction table and the customer table.

After ingestion every transaction table has these canonical columns (optional ones only
where the source file maps them). Features and models use these names only.
"""

from __future__ import annotations

from typing import Final

# --- transactions (canonical names after ingestion) ---------------------------
CUSTOMER_ID: Final = "customer_id"
TIMESTAMP: Final = "timestamp"  # tz-naive datetime64[ns] in the configured time zone
AMOUNT: Final = "amount"  # revenue of the line, currency units; negative = return
ORDER_ID: Final = "order_id"
QUANTITY: Final = "quantity"
UNIT_PRICE: Final = "unit_price"
COST: Final = "cost"  # cost of goods of the line, currency units
MARGIN: Final = "margin"  # gross-margin share of revenue of the line, 0..1
PRODUCT: Final = "product"
CATEGORY: Final = "category"
CHANNEL: Final = "channel"

REQUIRED_TRANSACTION_COLUMNS: Final = (CUSTOMER_ID, TIMESTAMP)
OPTIONAL_TRANSACTION_COLUMNS: Final = (
    AMOUNT, ORDER_ID, QUANTITY, UNIT_PRICE, COST, MARGIN, PRODUCT, CATEGORY, CHANNEL,
)

# --- BTYD summary ---------------------------------------------------------------
FREQUENCY: Final = "frequency"  # repeat purchase periods
RECENCY: Final = "recency"  # time of last purchase period minus first, in time_unit
T: Final = "T"  # cut-off minus first purchase period, in time_unit
MONETARY_VALUE: Final = "monetary_value"  # mean spend of repeat periods
BTYD_COLUMNS: Final = (FREQUENCY, RECENCY, T, MONETARY_VALUE)

#: Gross-margin share of revenue per customer, added to the customer table when the
#: transactions carry a cost or margin column.
MARGIN_SHARE: Final = "margin_share"

# --- calibration / holdout ----------------------------------------------------
FREQUENCY_CAL: Final = "frequency_cal"
RECENCY_CAL: Final = "recency_cal"
T_CAL: Final = "T_cal"
MONETARY_VALUE_CAL: Final = "monetary_value_cal"
FREQUENCY_HOLDOUT: Final = "frequency_holdout"
MONETARY_VALUE_HOLDOUT: Final = "monetary_value_holdout"
SPEND_HOLDOUT: Final = "spend_holdout"
DURATION_HOLDOUT: Final = "duration_holdout"

# --- scorer outputs -------------------------------------------------------------
P_ALIVE: Final = "p_alive"
EXPECTED_PURCHASES: Final = "expected_purchases"
EXPECTED_ORDER_VALUE: Final = "expected_order_value"
CLV: Final = "clv"
CLV_P10: Final = "clv_p10"  # lower interval bound of clv (level: clv.interval_levels[0])
CLV_P90: Final = "clv_p90"  # upper interval bound of clv (level: clv.interval_levels[1])
CLV_SOURCE: Final = "clv_source"  # which model produced clv
CHURN_PROBABILITY: Final = "churn_probability"
CHURN_LOSS_VALUE: Final = "churn_loss_value"  # P(loss) x value if retained (replaces value_at_risk)
#: Removed output (churn_probability x clv counted attrition twice); kept as a name for old files.
VALUE_AT_RISK: Final = "value_at_risk"
CURRENT_VALUE: Final = "current_value"  # gross margin earned up to the cut-off
CURRENT_VALUE_TRAILING: Final = "current_value_trailing"  # gross margin earned in the trailing window
VALUE_QUADRANT: Final = "value_quadrant"
RFM_SEGMENT: Final = "rfm_segment"
VALUE_TIER: Final = "value_tier"
SCORER_OUTPUT_COLUMNS: Final = (
    P_ALIVE, EXPECTED_PURCHASES, EXPECTED_ORDER_VALUE, CLV, CLV_P10, CLV_P90, CLV_SOURCE,
    CHURN_PROBABILITY, CHURN_LOSS_VALUE, CURRENT_VALUE, CURRENT_VALUE_TRAILING, VALUE_QUADRANT,
    VALUE_TIER, RFM_SEGMENT,
)
#: Output columns that exist only with money (amounts, or clv.value_per_purchase for count-only logs).
CLV_FAMILY_COLUMNS: Final = (
    EXPECTED_ORDER_VALUE, CLV, CLV_P10, CLV_P90, CLV_SOURCE, CHURN_LOSS_VALUE, CURRENT_VALUE,
    CURRENT_VALUE_TRAILING, VALUE_QUADRANT, VALUE_TIER,
)
