"""The served model's JSON state: what the MLflow model and ``CLVModel.save`` both hold.

One function builds it so that ``clvkit train`` (through MLflow) and the Python API write the
same artifact: the scorer, the fitted feature builder, how to read input transactions, the
cut-off, the config (hash and full values) and the data fingerprint.
"""

from __future__ import annotations

from typing import Any

from clvkit.config.loading import config_hash
from clvkit.config.models import ClvkitConfig
from clvkit.pipelines.ingest import effective_columns


def scorer_artifact_state(scorer: Any, stage: Any, config: ClvkitConfig, data_fingerprint: str) -> dict[str, Any]:
    """JSON-safe state of a served scorer fitted as of ``stage.as_of`` (boosters are separate files)."""
    columns, date_format = effective_columns(config.data)
    return {
        "scorer": scorer.to_dict(),
        "feature_builder": stage.builder.to_dict(),
        "data": {"columns": columns.model_dump(), "date_format": date_format, "timezone": config.data.timezone,
                 "time_unit": config.data.time_unit, "validation": config.data.validation.model_dump(),
                 "dayfirst": config.data.dayfirst, "encoding": config.data.encoding,
                 "delimiter": config.data.delimiter},
        "cutoff": str(stage.as_of),
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "data_fingerprint": data_fingerprint,
    }
