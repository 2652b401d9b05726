"""The features package: curated, lazily imported public names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import clvkit.features as features


def test_all_names_resolve() -> None:
    assert sorted(features.__all__) == sorted(features._EXPORTS)
    for name in features.__all__:
        assert getattr(features, name) is not None
    assert set(features.__all__) <= set(dir(features))


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        features.nope  # noqa: B018


def test_import_is_lazy() -> None:
    code = ("import sys, clvkit.features; "
            "print(any(m.startswith('clvkit.features.') for m in sys.modules), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
