"""The fitting machinery on sufficient statistics: collapse, analytic Hessians, when more starts run,
and the total log-likelihood taken from the objective."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.models import _beta_geo, _optimize
from clvkit.models._optimize import collapse, hessian_at, minimize_multistart, numerical_hessian
from clvkit.models._purchase_base import FitData
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.mbgnbd import ModifiedBetaGeoModel
from clvkit.models.nbd import NBDModel
from clvkit.models.pareto_nbd import ParetoNBDModel

#: measured: the analytic BG/NBD and MBG/NBD Hessians equal central differences to ~3e-10
HESSIAN_RTOL = 1e-7


def _groupby_collapse(columns: list[np.ndarray], weights: np.ndarray | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The reference: pandas groupby in order of first appearance, rows of zero weight dropped."""
    frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    frame["w"] = np.ones(len(frame)) if weights is None else weights
    grouped = frame.groupby([f"c{i}" for i in range(len(columns))], sort=False)["w"].sum()
    grouped = grouped[grouped > 0]
    index = grouped.index
    levels = [index] if len(columns) == 1 else [index.get_level_values(i) for i in range(len(columns))]
    return [np.asarray(level, dtype=float) for level in levels], grouped.to_numpy(dtype=float)


def _summary_columns(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, n).astype(float)
    T = rng.integers(20, 40, n) / 7.0
    tx = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T * 7) / 7.0, 0.0)
    return [x, tx, T]


@pytest.mark.parametrize("n_columns", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_collapse_equals_groupby(n_columns, weighted) -> None:
    columns = _summary_columns(5_000, seed=n_columns)[:n_columns]
    weights = np.random.default_rng(1).integers(0, 3, 5_000).astype(float) if weighted else None
    values, summed = collapse(columns, weights)
    ref_values, ref_summed = _groupby_collapse(columns, weights)
    assert len(values) == n_columns
    for ours, ref in zip(values, ref_values, strict=True):
        np.testing.assert_array_equal(ours, ref)  # same rows, same order (first appearance)
    np.testing.assert_array_equal(summed, ref_summed)
    assert summed.sum() == (5_000 if weights is None else weights.sum())


def test_collapse_rehashes_before_the_integer_key_overflows(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = _summary_columns(2_000, seed=7)
    monkeypatch.setattr(_optimize, "_KEY_LIMIT", 50)  # forces the re-hash after every column
    values, summed = collapse(columns, None)
    ref_values, ref_summed = _groupby_collapse(columns, None)
    for ours, ref in zip(values, ref_values, strict=True):
        np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(summed, ref_summed)


def _fit_data(seed: int = 3) -> FitData:
    x, tx, T = _summary_columns(3_000, seed)
    (xu, txu, Tu), wu = collapse([x, tx, T], None)
    scale = 1.0 / Tu.max()
    return FitData(xu, txu * scale, Tu * scale, wu)


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("penalizer", [0.0, 0.05])
@pytest.mark.parametrize("log_params", [(0.1, 0.1, 0.1, 0.1), (-1.4, -2.0, -0.2, 0.9), (-3.0, 2.0, 1.5, -2.0)])
def test_beta_geo_analytic_hessian_equals_central_differences(modified, penalizer, log_params) -> None:
    data = _fit_data()
    u = np.asarray(log_params)
    analytic = _beta_geo.hessian(u, data, penalizer, modified=modified)
    numeric = numerical_hessian(lambda v: _beta_geo.objective(v, data, penalizer, modified=modified), u)
    np.testing.assert_allclose(analytic, analytic.T, rtol=0, atol=0)
    assert np.max(np.abs(analytic - numeric)) < HESSIAN_RTOL * np.max(np.abs(numeric))


def test_a_wrong_analytic_hessian_is_replaced_by_central_differences() -> None:
    center = np.array([0.5, -1.0, 2.0])
    curvature = np.diag([1.0, 4.0, 9.0])

    def objective(x):
        return 0.5 * float((x - center) @ curvature @ (x - center)), curvature @ (x - center)

    x = np.zeros(3)
    grad = objective(x)[1]
    right = hessian_at(objective, x, grad, lambda _: curvature)
    np.testing.assert_array_equal(right, curvature)  # the analytic one, used as given
    wrong = hessian_at(objective, x, grad, lambda _: 2.0 * curvature)
    np.testing.assert_allclose(wrong, curvature, rtol=1e-8)  # central differences instead
    np.testing.assert_allclose(hessian_at(objective, x, grad, lambda _: np.full((3, 3), np.nan)), curvature, rtol=1e-8)


def _quadratic(center: np.ndarray):
    def objective(x):
        return float(np.sum((x - center) ** 2)), 2.0 * (x - center)

    return objective


def test_more_starts_run_only_when_the_first_optimum_is_not_accepted() -> None:
    interior = minimize_multistart(
        _quadratic(np.array([1.0, -2.0])), np.zeros(2), n_starts=3, random_state=0, more_starts_if_needed=True
    )
    assert interior.converged and interior.starts == 1 and len(interior.start_objectives) == 1
    np.testing.assert_allclose(interior.log_params, [1.0, -2.0], atol=1e-9)
    # the minimum lies beyond the box: the first start ends on the edge, the seeded starts run too
    edge = minimize_multistart(
        _quadratic(np.array([1.0, -40.0])), np.zeros(2), n_starts=3, random_state=0, more_starts_if_needed=True
    )
    assert edge.at_bound == [False, True] and edge.starts == 3 and len(edge.start_objectives) == 3
    # without the flag every start runs
    every = minimize_multistart(_quadratic(np.array([1.0, -2.0])), np.zeros(2), n_starts=3, random_state=0)
    assert every.starts == 3


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel, NBDModel])
def test_log_likelihood_in_the_summary_time_unit_equals_the_per_row_sum(cdnow_summary, cls) -> None:
    # the fit reads it from the objective in rescaled time, shifted by log(scale) * sum(x)
    model = cls().fit(cdnow_summary)
    x, tx, T = (cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    params = tuple(model.params_[k] for k in cls.PARAM_NAMES)
    per_row = float(np.sum(cls._loglik_rows(params, x, tx, T)))
    assert model.log_likelihood_ == pytest.approx(per_row, rel=1e-12)


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel])
def test_beta_geo_fits_use_the_analytic_hessian_and_its_standard_errors_match_central_differences(
    cdnow_summary, cls, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = cls._hessian

    def counted(log_params, data, penalizer):
        calls.append(1)
        return original(log_params, data, penalizer)

    monkeypatch.setattr(cls, "_hessian", staticmethod(counted))
    analytic = cls().fit(cdnow_summary)
    assert calls == [1]  # once, at the first start's optimum (it passed the check: no more starts)
    monkeypatch.setattr(cls, "HAS_ANALYTIC_HESSIAN", False)
    numeric = cls().fit(cdnow_summary)
    assert analytic.params_ == pytest.approx(numeric.params_, rel=1e-10)
    assert analytic.standard_errors_ == pytest.approx(numeric.standard_errors_, rel=1e-6)
