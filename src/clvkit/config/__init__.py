"""Configuration: pydantic models (:mod:`clvkit.config.models`) and YAML loading (:mod:`clvkit.config.loading`).

Names are imported on first use, so that importing :mod:`clvkit.config.models` (as the data,
feature and model layers do) never imports ``yaml``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module that defines it.
_EXPORTS = {
    "ClvkitConfig": "clvkit.config.models",
    "apply_override": "clvkit.config.loading",
    "config_from_dict": "clvkit.config.loading",
    "config_hash": "clvkit.config.loading",
    "load_config": "clvkit.config.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
