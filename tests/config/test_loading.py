from __future__ import annotations

import pytest
from pydantic import ValidationError

from clvkit.config import config_from_dict, config_hash, load_config
from clvkit.config.loading import apply_override, flatten_config
from clvkit.config.models import ClvkitConfig, ColumnMapping
from clvkit.exceptions import ConfigError


def test_defaults_are_valid_and_frozen() -> None:
    config = load_config()
    assert config.data.time_unit == "W"
    with pytest.raises(ValidationError, match="frozen"):
        config.data.time_unit = "D"  # type: ignore[misc]


def test_unknown_key_names_full_path_and_allowed_keys() -> None:
    with pytest.raises(ConfigError, match=r"data\.colums: unknown key; allowed keys here: calibration_end, columns"):
        config_from_dict({"data": {"colums": {}}})


def test_unknown_nested_key() -> None:
    with pytest.raises(ConfigError, match=r"data\.columns\.customer: unknown key; allowed keys here: amount, category"):
        config_from_dict({"data": {"columns": {"customer": "id"}}})


def test_unknown_top_level_section() -> None:
    with pytest.raises(ConfigError, match=r"foo: unknown key; allowed keys here: churn, clv, data"):
        config_from_dict({"foo": 1})


def test_bad_value_names_path_value_and_allowed() -> None:
    with pytest.raises(ConfigError, match=r"data\.time_unit: Input should be 'D', 'W' or 'M' \(got 'Y'\)"):
        config_from_dict({"data": {"time_unit": "Y"}})


def test_bad_number_names_bound() -> None:
    with pytest.raises(ConfigError, match=r"clv\.discount_rate_annual: Input should be less than 1 \(got 2\)"):
        config_from_dict({"clv": {"discount_rate_annual": 2}})


def test_policy_value_lists_choices() -> None:
    with pytest.raises(ConfigError, match=r"data\.validation\.zero_amount: Input should be 'error', 'quarantine' or 'keep'"):
        config_from_dict({"data": {"validation": {"zero_amount": "drop"}}})


def test_dates_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match=r"calibration_end \(1998-01-01\) must be before observation_end \(1997-01-01\)"):
        config_from_dict({"data": {"calibration_end": "1998-01-01", "observation_end": "1997-01-01"}})


def test_unknown_timezone() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        config_from_dict({"data": {"timezone": "Mars/Base"}})


def test_amount_or_quantity_and_price_or_count_only() -> None:
    """Issue 8: amount is optional (a count-only log); quantity + unit_price need no ``amount: null``."""
    count_only = config_from_dict({"data": {"columns": {"amount": None}}}).data.columns
    assert count_only.amount is None and not count_only.has_amount
    mapping = ColumnMapping(amount=None, quantity="q", unit_price="p")
    assert mapping.amount is None and mapping.has_amount
    implied = config_from_dict({"data": {"columns": {"quantity": "q", "unit_price": "p"}}}).data.columns
    assert implied.amount is None and implied.has_amount
    assert ColumnMapping().amount == "amount"


def test_cost_and_margin_exclusive() -> None:
    with pytest.raises(ConfigError, match="map 'cost' or 'margin', not both"):
        config_from_dict({"data": {"columns": {"cost": "c", "margin": "m"}}})


def test_tier_shares_ordered() -> None:
    with pytest.raises(ConfigError, match=r"features\.tier_shares: tier shares must satisfy 0 < A share < B share <= 1"):
        config_from_dict({"features": {"tier_shares": [0.9, 0.8]}})


def test_overrides_parse_yaml_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.yaml"
    path.write_text("clv:\n  horizon_months: 6\n")
    config = load_config(path, ["clv.horizon_months=24", "data.calibration_end=1997-09-30", "models.refit_on_full_history=false"])
    assert config.clv.horizon_months == 24
    assert str(config.data.calibration_end) == "1997-09-30"
    assert config.models.refit_on_full_history is False


def test_override_without_equals() -> None:
    with pytest.raises(ConfigError, match=r"bad override 'clv\.horizon_months': expected section\.key=value"):
        apply_override({}, "clv.horizon_months")


def test_override_into_a_value() -> None:
    with pytest.raises(ConfigError, match="'seed' holds a value, not a section"):
        apply_override({"seed": 1}, "seed.x=2")


def test_override_unknown_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"clv\.horizon: unknown key"):
        load_config(None, ["clv.horizon=3"])


def test_missing_file_and_bad_yaml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="does not exist; see configs/"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must hold a mapping of sections, got int"):
        load_config(scalar)


def test_hash_changes_with_content_and_flatten_has_dotted_keys() -> None:
    a, b = ClvkitConfig(), load_config(None, ["seed=1"])
    assert config_hash(a) == config_hash(ClvkitConfig())
    assert config_hash(a) != config_hash(b)
    flat = flatten_config(a)
    assert flat["clv.horizon_months"] == "12"
    assert flat["data.validation.negative_amount"] == "net"


@pytest.mark.parametrize("name", ["cdnow.yaml", "cdnow_fhl2005.yaml", "simulated.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    from pathlib import Path

    config = load_config(Path(__file__).parents[2] / "configs" / name)
    assert config.data.time_unit == "W"
