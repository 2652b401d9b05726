"""`clvkit features`: ids factorised once at ingestion, outputs under the ids' exact text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from clvkit.cli.main import app
from clvkit.config.models import ColumnMapping, ValidationPolicies
from clvkit.data.validation import validate_transactions
from clvkit.features import FeatureBuilder


def _log(path: Path) -> pd.DataFrame:
    """Leading-zero ids that differ only by their zeros, padding, a duplicate line and returns."""
    rng = np.random.default_rng(8)
    ids = np.array(["007", "7", "0007", " 42 ", "42", "A1", "b2"], dtype=object)
    n = 400
    raw = pd.DataFrame({
        "cid": ids[rng.integers(0, ids.size, n)],
        "day": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")).strftime("%Y-%m-%d"),
        "revenue": np.round(rng.choice([1.0, -1.0], n, p=[0.9, 0.1]) * rng.gamma(2.0, 10.0, n), 2),
    })
    raw = pd.concat([raw, raw.iloc[[3]]], ignore_index=True)
    raw.to_csv(path, index=False)
    return raw


def test_features_table_is_indexed_by_the_ids_text_and_equals_the_text_id_path(tmp_path: Path) -> None:
    source, output = tmp_path / "tx.csv", tmp_path / "features.parquet"
    raw = _log(source)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data:\n  source: {source}\n  quarantine_path: {tmp_path / 'q.csv'}\n  time_unit: D\n"
        "  columns: {customer_id: cid, timestamp: day, amount: revenue}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["features", "--config", str(config), "--output", str(output),
                                      "--as-of", "2024-04-30"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(output)
    assert not isinstance(table.index.dtype, pd.CategoricalDtype)
    assert sorted(table.index) == ["0007", "007", "42", "7", "A1", "b2"]  # zeros kept, padding stripped
    assert table.index.is_monotonic_increasing

    mapping = ColumnMapping(customer_id="cid", timestamp="day", amount="revenue")
    clean = validate_transactions(pd.read_csv(source, dtype={"cid": str, "day": str}), mapping,
                                  ValidationPolicies()).transactions
    assert isinstance(clean["customer_id"].dtype, pd.CategoricalDtype)
    as_text = clean.assign(customer_id=clean["customer_id"].astype(str))
    expected = FeatureBuilder(time_unit="D").fit_transform(as_text, as_of="2024-04-30")
    pd.testing.assert_frame_equal(table, expected, check_index_type=False, check_dtype=False)
    assert len(raw) == 401 and (tmp_path / "q.csv").is_file()  # the duplicate line, set aside
