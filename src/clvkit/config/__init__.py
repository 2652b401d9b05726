"""Configuration: pydantic models and YAML loading."""

from clvkit.config.loading import apply_override, config_from_dict, config_hash, load_config
from clvkit.config.models import ClvkitConfig

__all__ = ["ClvkitConfig", "apply_override", "config_from_dict", "config_hash", "load_config"]
