"""lifetimes is used without changing global warnings or pandas state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from clvkit.models._lifetimes import (
    FitCapture,
    import_lifetimes,
    preserved_global_state,
    run_contained,
    standard_errors,
)
from clvkit.models.bgnbd import BetaGeoModel


def test_import_restores_warning_filters_and_pandas_option_in_a_fresh_process() -> None:
    # lifetimes is imported once per process, so only a fresh interpreter shows its effect.
    script = textwrap.dedent(
        """
        import warnings
        import pandas as pd
        def option():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pd.get_option("mode.chained_assignment")
        before, opt = list(warnings.filters), option()
        from clvkit.models._lifetimes import import_lifetimes
        import_lifetimes()
        assert list(warnings.filters) == before, "filters changed"
        assert option() == opt, "pandas option changed"
        import sys
        assert "lifetimes.utils" in sys.modules
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_importing_again_leaves_filters_unchanged() -> None:
    before = list(warnings.filters)
    module = import_lifetimes()
    assert list(warnings.filters) == before
    assert hasattr(module, "BetaGeoFitter")


def test_fitting_leaves_filters_unchanged(cdnow_summary) -> None:
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        BetaGeoModel().fit(cdnow_summary)
    assert list(warnings.filters) == before
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_run_contained_undoes_simplefilter_and_captures_prints() -> None:
    def noisy(x: int) -> int:
        warnings.simplefilter("ignore", FutureWarning)
        print("  message: Desired error not necessarily achieved")
        warnings.warn("internal", RuntimeWarning, stacklevel=1)
        return x + 1

    before = list(warnings.filters)
    result, capture, error = run_contained(noisy, 1)
    assert (result, error) == (2, None)
    assert list(warnings.filters) == before
    assert capture.optimizer_message() == "Desired error not necessarily achieved"
    assert capture.warnings == ["RuntimeWarning: internal"]


def test_run_contained_returns_the_exception() -> None:
    def broken() -> None:
        raise ZeroDivisionError("boom")

    result, _, error = run_contained(broken)
    assert result is None
    assert isinstance(error, ZeroDivisionError)


def test_preserved_global_state_restores_after_an_error() -> None:
    before = list(warnings.filters)
    with pytest.raises(KeyError, match="x"), preserved_global_state():
        warnings.simplefilter("ignore")
        raise KeyError("x")
    assert list(warnings.filters) == before


def test_optimizer_message_absent() -> None:
    assert FitCapture(stdout="nothing here").optimizer_message() is None


def test_standard_errors_nan_for_singular_hessian(caplog: pytest.LogCaptureFixture) -> None:
    params = {"p": 1.0, "q": 2.0}
    out = standard_errors(params, np.zeros((2, 2)), 10.0, "Test")
    assert all(np.isnan(v) for v in out.values())
    assert "not invertible" in caplog.text


def test_standard_errors_nan_for_indefinite_hessian(caplog: pytest.LogCaptureFixture) -> None:
    out = standard_errors({"p": 1.0, "q": 2.0}, -np.eye(2), 10.0, "Test")
    assert all(np.isnan(v) for v in out.values())
    assert "not positive definite" in caplog.text


def test_standard_errors_delta_method() -> None:
    out = standard_errors({"p": 2.0, "q": 3.0}, np.diag([4.0, 1.0]), 100.0, "Test")
    assert out == pytest.approx({"p": 2.0 * np.sqrt(0.25 / 100), "q": 3.0 * np.sqrt(1.0 / 100)})
