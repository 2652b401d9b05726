"""Build the customer table the scorer takes: FeatureBuilder output + per-customer margin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from clvkit.config.models import ClvkitConfig
from clvkit.features.behavioral import FEATURE_DEFINITIONS
from clvkit.features.builder import FeatureBuilder
from clvkit.features.margin import MARGIN_SHARE, customer_margin_share
from clvkit.pipelines.ingest import ingest


def customer_table(builder: FeatureBuilder, transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """One row per customer as of ``as_of`` (whole day included), with ``margin_share`` when known."""
    return with_margin_share(builder.transform(transactions, as_of=as_of), transactions, as_of)


def fit_customer_table(
    config: ClvkitConfig, transactions: pd.DataFrame, as_of: dt.date
) -> tuple[FeatureBuilder, pd.DataFrame]:
    """A builder fitted as of ``as_of`` and its customer table, from one pass over the rows.

    The same builder and table as ``make_builder(config).fit(transactions, as_of=as_of)``
    followed by :func:`customer_table` (which would compute the table a second time).
    """
    builder = make_builder(config)
    table = builder.fit_transform(transactions, as_of=as_of)
    return builder, with_margin_share(table, transactions, as_of)


def with_margin_share(table: pd.DataFrame, transactions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """``table`` with the customers' ``margin_share`` column when the transactions carry cost or margin."""
    share = customer_margin_share(transactions, as_of)
    if share is not None:
        table = table.join(share.reindex(table.index).rename(MARGIN_SHARE))
    return table


def make_builder(config: ClvkitConfig) -> FeatureBuilder:
    """A FeatureBuilder with the config's settings."""
    return FeatureBuilder(
        time_unit=config.data.time_unit,
        trailing_windows_days=tuple(config.features.trailing_windows_days),
        rfm_segments=config.features.rfm_segments,
        tier_shares=tuple(config.features.tier_shares),
        margin=config.clv.margin,
        current_value_window_days=config.features.current_value_window_days,
        rfm_recency_days=config.features.rfm_recency_days,
        rfm_cycle_multiples=tuple(config.features.rfm_recency_cycle_multiples),
    )


@dataclass(frozen=True)
class FeatureTable:
    """A customer table and its metadata (cut-off, settings, skipped features, definitions)."""

    table: pd.DataFrame
    metadata: dict[str, Any]


def features_from_config(config: ClvkitConfig, as_of: dt.date | None) -> FeatureTable:
    """Ingest the configured data and build the customer table as of ``as_of``."""
    transactions = ingest(config.data).validated.transactions
    as_of = as_of or config.data.observation_end or transactions["timestamp"].max().date()
    builder, table = fit_customer_table(config, transactions, as_of)
    metadata = {
        "as_of": str(as_of), "customers": len(table), "time_unit": config.data.time_unit,
        "skipped_features": list(builder.skipped_features_),
        "definitions": {k: v for k, v in FEATURE_DEFINITIONS.items()},
        "feature_builder": builder.to_dict(),
    }
    return FeatureTable(table, metadata)
