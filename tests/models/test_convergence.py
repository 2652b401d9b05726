"""Convergence acceptance of the model fits: projected gradient, scale-aware shortfall, boundary limits."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from clvkit import schemas
from clvkit.constants import FIT_GRADIENT_TOLERANCE, FIT_LOG_LIKELIHOOD_SHORTFALL
from clvkit.data.shapes import make_shape
from clvkit.exceptions import ConvergenceError, UserInputError
from clvkit.features.btyd import summary as btyd_summary
from clvkit.models._optimize import judge_optimum, standard_errors_from_hessian
from clvkit.models.bgnbd import BetaGeoModel

LOWER, UPPER = np.full(2, -30.0), np.full(2, 30.0)
HESSIAN = np.diag([1e-3, 1.0])  # a flat direction, as at the one-time-buyer optimum


# --- judge_optimum --------------------------------------------------------------------------


def test_small_gradient_is_converged_whatever_the_customer_count() -> None:
    test = judge_optimum(np.zeros(2), np.array([1e-6, 0.0]), HESSIAN, LOWER, UPPER, n_weight=1e9)
    assert test.converged and not test.accepted_by_shortfall


def test_gradient_above_tolerance_is_accepted_when_the_log_likelihood_is_within_the_shortfall() -> None:
    grad = np.array([0.0, 2e-5])  # norm 2e-5 > 1e-5: refused by the plain gradient test
    assert np.linalg.norm(grad) > FIT_GRADIENT_TOLERANCE
    few = judge_optimum(np.zeros(2), grad, HESSIAN, LOWER, UPPER, n_weight=185)
    # n/2 g'H^-1 g = 185/2 * 4e-10 = 3.7e-8 nats
    assert few.shortfall == pytest.approx(185 / 2 * 4e-10, rel=1e-12)
    assert few.converged and few.accepted_by_shortfall
    # the same mean gradient on 1e7 customers leaves the log-likelihood 2e-3 nats short: refused
    many = judge_optimum(np.zeros(2), grad, HESSIAN, LOWER, UPPER, n_weight=1e7)
    assert many.shortfall > FIT_LOG_LIKELIHOOD_SHORTFALL
    assert not many.converged
    # without a customer count only the gradient test applies (the old behaviour)
    assert not judge_optimum(np.zeros(2), grad, HESSIAN, LOWER, UPPER, n_weight=None).converged


def test_shortfall_uses_the_hessian_so_a_flat_direction_counts_more() -> None:
    grad = np.array([2e-5, 0.0])  # along the flat direction (curvature 1e-3)
    test = judge_optimum(np.zeros(2), grad, HESSIAN, LOWER, UPPER, n_weight=1e4)
    assert test.shortfall == pytest.approx(1e4 / 2 * 4e-10 / 1e-3)
    assert not test.converged  # 2e-3 nats short


def test_boundary_maximum_uses_the_projected_gradient() -> None:
    x = np.array([-30.0, 0.5])  # first log-parameter on the box
    # the likelihood still pushes it out of the box (g > 0 at the lower bound): KKT holds
    pushing_out = judge_optimum(x, np.array([0.3, 1e-7]), HESSIAN, LOWER, UPPER, n_weight=400)
    assert pushing_out.converged
    assert pushing_out.gradient_norm == pytest.approx(1e-7)
    assert pushing_out.at_bound.tolist() == [True, False]
    # pulling it back inside (g < 0) is not an optimum
    pulling_in = judge_optimum(x, np.array([-0.3, 1e-7]), HESSIAN, LOWER, UPPER, n_weight=400)
    assert not pulling_in.converged


def test_not_positive_definite_on_the_free_parameters_is_refused() -> None:
    saddle = np.diag([-1e-3, 1.0])
    assert not judge_optimum(np.zeros(2), np.zeros(2), saddle, LOWER, UPPER, n_weight=100).converged
    # the curvature of a parameter on the box does not matter
    x = np.array([-30.0, 0.0])
    assert judge_optimum(x, np.array([0.1, 0.0]), saddle, LOWER, UPPER, n_weight=100).converged


def test_standard_errors_are_nan_for_parameters_on_the_box() -> None:
    hessian = np.array([[2.0, 0.5], [0.5, 1.0]])
    se = standard_errors_from_hessian({"r": 2.0, "a": 1e-13}, hessian, 100.0, True, [False, True])
    assert np.isnan(se["a"])
    assert se["r"] == pytest.approx(2.0 * np.sqrt(1.0 / 2.0 / 100.0))  # free block only


# --- BG/NBD on the shapes of issue 8 --------------------------------------------------------


def _one_time_buyers_summary() -> pd.DataFrame:
    """92 % one-time buyers (seed 0), calibration of 265 days: the MLE has a -> 0 (a limit)."""
    tx = make_shape("one_time_buyers", seed=0).raw.copy()
    tx[schemas.TIMESTAMP] = pd.to_datetime(tx[schemas.TIMESTAMP], utc=True, format="mixed").dt.tz_localize(None)
    cutoff = tx[schemas.TIMESTAMP].min() + pd.Timedelta(days=265)
    return btyd_summary(tx[tx[schemas.TIMESTAMP] <= cutoff], cutoff.date(), "W")


def test_one_time_buyer_heavy_log_is_accepted_as_a_boundary_maximum(caplog: pytest.LogCaptureFixture) -> None:
    summary = _one_time_buyers_summary()
    assert (summary["frequency"] == 0).mean() >= 0.9
    with caplog.at_level(logging.WARNING, logger="clvkit.models._purchase_base"):
        model = BetaGeoModel(random_state=7).fit(summary)
    assert model.fit_report_["penalizer"] == 0.0  # no penalizer needed
    assert model.fit_report_["converged"]
    assert model.fit_report_["at_bound"] == [False, False, True, False]
    assert model.params_["a"] < 1e-10  # the likelihood is maximised as a -> 0
    assert np.isnan(model.standard_errors_["a"]) and np.isfinite(model.standard_errors_["r"])
    assert "the likelihood is maximised in a limit (a at the edge of the parameter range" in caplog.text
    # a fit inside the box loses log-likelihood: the boundary is the maximum
    inside = BetaGeoModel(initial_params={**model.params_, "a": 1e-3, "b": 5e-3}, n_starts=1)
    x, tx, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    ll_inside = float(np.sum(BetaGeoModel._loglik_rows(
        tuple(inside.initial_params[k] for k in BetaGeoModel.PARAM_NAMES), x, tx, T)))
    assert model.log_likelihood_ > ll_inside
    # predictions from the limit are finite, probabilities in [0, 1], below the no-dropout bound
    p_alive = model.p_alive(x, tx, T)
    assert np.all((p_alive >= 0) & (p_alive <= 1))
    r, alpha = model.params_["r"], model.params_["alpha"]
    expected = model.expected_purchases(13.0, x, tx, T)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert np.all(expected <= (r + x) / (alpha + T) * 13.0 * (1 + 1e-9))
    unconditional = model.expected_purchases_unconditional(52.0)
    assert 0 < unconditional[0] <= r * 52.0 / alpha


def test_non_convergence_still_names_the_penalizer_setting() -> None:
    class FlatBetaGeo(BetaGeoModel):
        """A likelihood that does not identify r and alpha separately (singular Hessian)."""

        @staticmethod
        def _objective(log_params, data, penalizer):  # type: ignore[no-untyped-def]
            d = log_params[0] - log_params[1]
            grad = np.array([2 * d, -2 * d, 2 * (log_params[2] - 1), 2 * (log_params[3] - 1)])
            return float(d**2 + (log_params[2] - 1) ** 2 + (log_params[3] - 1) ** 2), grad

    summary = pd.DataFrame({"frequency": [1.0, 0.0], "recency": [5.0, 0.0], "T": [10.0, 10.0]})
    with pytest.raises(ConvergenceError, match=r"Increase models\.bgnbd\.penalizer, e\.g\. to 0\.1 \(now 0\.01\)"):
        FlatBetaGeo(penalizer=0.01).fit(summary)


def test_no_repeat_buyers_message_names_the_cause_and_the_settings() -> None:
    summary = pd.DataFrame({"frequency": [0.0] * 5, "recency": [0.0] * 5, "T": [10.0, 20, 30, 40, 50]})
    with pytest.raises(UserInputError) as error:
        BetaGeoModel().fit(summary)
    message = str(error.value)
    assert "none of the 5 customers has a repeat purchase (frequency > 0) before the calibration end" in message
    assert "cannot be estimated" in message
    assert "Set data.calibration_end later" in message and "data.source" in message
    # weights that zero out every repeat customer: same fix named
    weighted = pd.DataFrame({"frequency": [0.0, 2.0], "recency": [0.0, 3.0], "T": [10.0, 10.0]})
    with pytest.raises(UserInputError, match=r"Set data\.calibration_end later"):
        BetaGeoModel().fit(weighted, sample_weight=[3.0, 0.0])
