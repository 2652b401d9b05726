"""Load YAML configs, apply ``--set section.key=value`` overrides, explain errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from clvkit.config.models import ClvkitConfig
from clvkit.exceptions import ConfigError


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> ClvkitConfig:
    """Read a YAML config (defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = _read_yaml(Path(path)) if path is not None else {}
    for override in overrides:
        raw = apply_override(raw, override)
    return config_from_dict(raw, source=str(path) if path else "defaults")


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> ClvkitConfig:
    """Validate a plain mapping; errors name the key path, the bad value and what is allowed."""
    try:
        return ClvkitConfig.model_validate(dict(raw))
    except ValidationError as exc:
        lines = [format_error(err) for err in exc.errors()]
        raise ConfigError(f"invalid configuration ({source}):\n  " + "\n  ".join(lines)) from None


def apply_override(raw: Mapping[str, Any], override: str) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``section.key=value`` set (value parsed as YAML)."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"bad override {override!r}: expected section.key=value, e.g. clv.horizon_months=24")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"bad override {override!r}: value is not valid YAML ({exc})") from None
    except ValueError as exc:  # YAML that looks like a date but is not one: 1997-02-30
        raise ConfigError(f"bad override {override!r}: {text.strip()!r} is not a valid date ({exc}); "
                          "use a real date as YYYY-MM-DD") from None
    result = json.loads(json.dumps(raw, default=str))
    node = result
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"bad override {override!r}: {part!r} holds a value, not a section")
        node = child
    node[parts[-1]] = value
    return result


def config_hash(config: ClvkitConfig) -> str:
    """SHA-256 of the config's canonical JSON (first 16 hex digits)."""
    payload = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def flatten_config(config: ClvkitConfig) -> dict[str, str]:
    """``section.key`` -> value as text, for MLflow params."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        else:
            flat[prefix] = json.dumps(value) if isinstance(value, list | dict) else str(value)

    walk("", config.model_dump(mode="json"))
    return flat


def config_to_yaml(config: ClvkitConfig) -> str:
    """The full (defaults filled in) config as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def format_error(err: Mapping[str, Any]) -> str:
    """One pydantic error as ``key.path: problem (got value)``."""
    loc = tuple(str(part) for part in err["loc"])
    path = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{path}: unknown key{hint}"
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    value = err.get("input")
    got = "" if isinstance(value, dict) else f" (got {value!r})"
    return f"{path}: {message}{got}"


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] | None = ClvkitConfig
    for part in loc:
        field = model.model_fields.get(part) if model else None
        annotation = getattr(field, "annotation", None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return sorted(model.model_fields) if model else []


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; see configs/ for examples")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc}") from None
    except ValueError as exc:  # a date-looking value that is not a date: 1997-02-30
        raise ConfigError(f"config file {str(path)!r} holds an invalid date ({exc}); write dates as real "
                          "YYYY-MM-DD days, e.g. 1997-02-28") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded
