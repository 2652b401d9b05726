"""BG/NBD: published CDNOW figures, parity with lifetimes, recovery, errors, serialisation.

The fit is ours (analytic gradient on collapsed rows); lifetimes is the reference: its
``BetaGeoFitter`` fitted with a tight tolerance for parameter parity, and a fitter carrying our
parameters for prediction parity.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvkit.exceptions import NotFittedError, UserInputError
from clvkit.models.bgnbd import BetaGeoModel

PARITY_RTOL = 1e-10
#: Wald tolerance of parameter recovery: |estimate - truth| < 3 SE (99.7% per parameter if
#: the estimator is asymptotically normal; over nine seeds the largest |z| seen was 2.6).
RECOVERY_Z = 3.0


@pytest.fixture(scope="module")
def cdnow_model(cdnow_summary: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow_summary)


def _with_params(lifetimes, model: BetaGeoModel):
    fitter = lifetimes.BetaGeoFitter()
    fitter.params_ = pd.Series(model.params_)
    return fitter


@pytest.fixture(scope="module")
def lifetimes_fit(lifetimes, cdnow_summary: pd.DataFrame):
    """lifetimes' own fit (per customer, autograd Hessian), tolerance tightened to 1e-10."""
    s = cdnow_summary
    return lifetimes.BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"], tol=1e-10)


@pytest.fixture(scope="module")
def cdnow_reference(lifetimes, cdnow_model: BetaGeoModel):
    return _with_params(lifetimes, cdnow_model)


@pytest.fixture(scope="module")
def sim_pair(lifetimes, simulated_summary: pd.DataFrame):
    model = BetaGeoModel().fit(simulated_summary)
    return model, _with_params(lifetimes, model)


def _columns(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy())


# --- published figures -----------------------------------------------------------------


def test_reproduces_fader_hardie_lee_2005_cdnow_estimates(cdnow_model: BetaGeoModel) -> None:
    rounded = {k: round(v, 3) for k, v in cdnow_model.params_.items()}
    assert rounded == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def test_log_likelihood_matches_published_value(cdnow_model: BetaGeoModel) -> None:
    # Fader, Hardie & Lee (2005a): LL = -9582.4 at the estimates (note 004's spreadsheet)
    assert round(cdnow_model.log_likelihood_, 1) == -9582.4


def test_fit_state(cdnow_model: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    assert cdnow_model.n_customers_ == len(cdnow_summary) == 2357
    assert cdnow_model.n_repeaters_ == int((cdnow_summary["frequency"] > 0).sum())
    assert all(type(v) is float for v in cdnow_model.params_.values())
    assert all(type(v) is float for v in cdnow_model.standard_errors_.values())


def test_parameters_and_standard_errors_match_lifetimes(cdnow_model: BetaGeoModel, lifetimes_fit) -> None:
    # measured: parameters within 4e-8 relative, standard errors within 1e-7
    assert cdnow_model.params_ == pytest.approx(lifetimes_fit.params_.to_dict(), rel=1e-6)
    assert cdnow_model.standard_errors_ == pytest.approx(lifetimes_fit.standard_errors_.to_dict(), rel=1e-6)


def test_fit_report(cdnow_model: BetaGeoModel) -> None:
    report = cdnow_model.fit_report_
    assert report["converged"] is True and report["hessian_positive_definite"] is True
    assert report["gradient_norm"] < 1e-5
    assert report["penalizer"] == 0.0 and report["penalizer_reason"] == "as configured"
    # the first start's optimum is accepted (interior, converged): the seeded starts are not run
    assert report["starts"] == 1 and len(report["start_objectives"]) == 1
    assert report["distinct_rows"] < 2357
    assert cdnow_model.degenerate_ is None


# --- prediction parity -----------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0, 1.0, 10.0, 39.0, 52.0, 200.0])
def test_expected_purchases_parity_cdnow(cdnow_model, cdnow_reference, cdnow_summary, t) -> None:
    x, tx, T = _columns(cdnow_summary)
    ours = cdnow_model.expected_purchases(t, x, tx, T)
    ref = cdnow_reference.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    np.testing.assert_allclose(ours, ref, rtol=PARITY_RTOL, atol=0)


def test_expected_purchases_parity_simulated(sim_pair, simulated_summary) -> None:
    ours, ref = sim_pair
    x, tx, T = _columns(simulated_summary)
    t = np.linspace(1.0, 104.0, x.size)  # one horizon per customer
    np.testing.assert_allclose(
        ours.expected_purchases(t, x, tx, T),
        ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
        rtol=PARITY_RTOL,
    )


def test_expected_purchases_uses_euler_transform_where_2f1_overflows(cdnow_model, cdnow_reference) -> None:
    # heavy buyers with long horizons: 2F1 overflows to inf and the transformed form is used
    x = np.array([150.0, 300.0, 2.0])
    tx, T = np.array([38.0, 38.5, 30.0]), np.array([39.0, 39.0, 39.0])
    t = np.array([5000.0, 20000.0, 39.0])
    ours = cdnow_model.expected_purchases(t, x, tx, T)
    ref = cdnow_reference.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, ref, rtol=1e-8)


def test_p_alive_parity(cdnow_model, cdnow_reference, cdnow_summary, sim_pair, simulated_summary) -> None:
    for ours, ref, summary in [(cdnow_model, cdnow_reference, cdnow_summary), (*sim_pair, simulated_summary)]:
        x, tx, T = _columns(summary)
        np.testing.assert_allclose(
            ours.p_alive(x, tx, T), ref.conditional_probability_alive(x, tx, T), rtol=PARITY_RTOL
        )


def test_p_alive_is_one_without_repeats(cdnow_model) -> None:
    assert cdnow_model.p_alive(0, 0.0, 30.0).tolist() == [1.0]


def test_unconditional_expectation_parity(cdnow_model, cdnow_reference, sim_pair) -> None:
    t = np.linspace(0.5, 156.0, 60)
    for ours, ref in [(cdnow_model, cdnow_reference), sim_pair]:
        np.testing.assert_allclose(
            ours.expected_purchases_unconditional(t), ref.expected_number_of_purchases_up_to_time(t),
            rtol=PARITY_RTOL,
        )


@pytest.mark.parametrize("t", [1.0, 10.0, 39.0, 78.0])
def test_probability_of_n_purchases_parity(cdnow_model, cdnow_reference, t) -> None:
    ns = np.arange(0, 15)
    ours = cdnow_model.probability_of_n_purchases(t, ns)
    ref = [cdnow_reference.probability_of_n_purchases_up_to_time(t, int(n)) for n in ns]
    # lifetimes' finite sum 1 - sum_j ... loses digits where it is near 1 (tiny absolute error)
    np.testing.assert_allclose(ours, ref, rtol=PARITY_RTOL, atol=1e-15)


def test_probability_of_n_purchases_is_a_distribution(cdnow_model) -> None:
    ns = np.arange(0, 400)
    pmf = cdnow_model.probability_of_n_purchases(39.0, ns)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (ns * pmf).sum() == pytest.approx(cdnow_model.expected_purchases_unconditional(39.0)[0], rel=1e-8)


def test_probability_of_n_purchases_broadcasts(cdnow_model) -> None:
    grid = cdnow_model.probability_of_n_purchases(np.array([[1.0], [39.0]]), np.arange(3))
    assert grid.shape == (2, 3)
    assert grid[1, 2] == pytest.approx(cdnow_model.probability_of_n_purchases(39.0, 2)[0])


def test_probability_of_n_purchases_rejects_bad_n(cdnow_model) -> None:
    with pytest.raises(ValueError, match="n must hold non-negative integers"):
        cdnow_model.probability_of_n_purchases(10.0, 1.5)


@settings(max_examples=40, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=60),
    recency_share=st.floats(min_value=0.0, max_value=1.0),
    T=st.floats(min_value=0.5, max_value=200.0),
    t1=st.floats(min_value=0.0, max_value=300.0),
    dt=st.floats(min_value=0.0, max_value=300.0),
)
def test_prediction_properties(x: int, recency_share: float, T: float, t1: float, dt: float) -> None:
    model = BetaGeoModel.from_dict(_fitted_dict())
    tx = 0.0 if x == 0 else recency_share * T
    alive = model.p_alive(x, tx, T)[0]
    assert 0.0 <= alive <= 1.0
    e1 = model.expected_purchases(t1, x, tx, T)
    e2 = model.expected_purchases(t1 + dt, x, tx, T)
    assert 0.0 <= e1 <= e2 * (1 + 1e-9) + 1e-12


# --- parameter recovery ------------------------------------------------------------------


def test_recovers_simulation_parameters(recovery_simulation, recovery_summary) -> None:
    """8,000 simulated customers (seed 11): every parameter within 3 standard errors of the truth."""
    model = BetaGeoModel().fit(recovery_summary)
    truth = recovery_simulation.params
    for name, estimate in model.params_.items():
        z = (estimate - getattr(truth, name)) / model.standard_errors_[name]
        assert abs(z) < RECOVERY_Z, f"{name}: {estimate:.4f} vs {getattr(truth, name)} (z={z:.2f})"


# --- errors ------------------------------------------------------------------------------


def test_identical_customers_are_a_degenerate_fit_served_by_the_nbd_limit() -> None:
    # 50 identical customers: the likelihood has no interior optimum (dropout unidentifiable)
    summary = pd.DataFrame({"frequency": [3.0] * 50, "recency": [20.0] * 50, "T": [30.0] * 50})
    model = BetaGeoModel().fit(summary)
    assert model.degenerate_ is not None
    assert "BG/NBD dropout is unidentifiable on these data" in model.degenerate_
    assert "limiting NBD model" in model.degenerate_
    assert model.p_alive([3], [20.0], [30.0]).tolist() == [1.0]
    r, alpha = model.limit_params_["r"], model.limit_params_["alpha"]
    np.testing.assert_allclose(model.expected_purchases(10.0, 3, 20.0, 30.0), (r + 3) * 10.0 / (alpha + 30.0), rtol=1e-12)


def test_one_customer_with_a_penalizer_is_a_boundary_maximum_not_an_error() -> None:
    # one customer, penalizer 0.01: the penalised likelihood is maximised as b -> 0 (the box edge);
    # accepted with NaN standard errors for b (the ConvergenceError message: test_convergence.py). Seeded: on
    # this flat ridge an unseeded extra start can stop short of the edge (b ~ 3e-10, also accepted, as interior)
    summary = pd.DataFrame({"frequency": [1.0], "recency": [5.0], "T": [10.0]})
    model = BetaGeoModel(penalizer=0.01, random_state=0).fit(summary)
    assert model.fit_report_["at_bound"] == [False, False, False, True]
    # an optimum on the edge of the range is not accepted from the first start alone
    assert model.fit_report_["starts"] == 3 and len(model.fit_report_["start_objectives"]) == 3
    assert np.isnan(model.standard_errors_["b"])
    assert 0.0 <= model.p_alive([1.0], [5.0], [10.0])[0] <= 1.0


def test_collapsed_rows_with_sample_weight_equal_the_per_customer_fit(cdnow_model, cdnow_summary) -> None:
    collapsed = cdnow_summary.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    weighted = BetaGeoModel().fit(collapsed, sample_weight=collapsed["n"].to_numpy())
    assert weighted.params_ == pytest.approx(cdnow_model.params_, rel=1e-8)
    assert weighted.standard_errors_ == pytest.approx(cdnow_model.standard_errors_, rel=1e-5)
    assert weighted.log_likelihood_ == pytest.approx(cdnow_model.log_likelihood_, rel=1e-12)
    assert weighted.n_customers_ == 2357


def test_invalid_sample_weight(cdnow_summary) -> None:
    with pytest.raises(UserInputError, match="sample_weight must hold one count per summary row"):
        BetaGeoModel().fit(cdnow_summary, sample_weight=[1.0, 2.0])
    with pytest.raises(UserInputError, match="sample_weight must be finite counts >= 0"):
        BetaGeoModel().fit(cdnow_summary, sample_weight=-np.ones(len(cdnow_summary)))


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="BetaGeoModel is not fitted yet"):
        BetaGeoModel().p_alive(1, 1.0, 2.0)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        BetaGeoModel().to_dict()


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        (pd.DataFrame({"frequency": [1.0], "recency": [1.0]}), r"lacks column\(s\) \['T'\]"),
        (pd.DataFrame({"frequency": [1.5], "recency": [1.0], "T": [2.0]}), "whole repeat purchase periods"),
        (pd.DataFrame({"frequency": [1.0], "recency": [3.0], "T": [2.0]}), "recency exceeds T for 1"),
        (pd.DataFrame({"frequency": [0.0], "recency": [1.0], "T": [2.0]}), "recency must be 0"),
        (pd.DataFrame({"frequency": [1.0], "recency": [np.nan], "T": [2.0]}), "'recency' has 1 missing"),
        (pd.DataFrame({"frequency": [1.0], "recency": [0.0], "T": [0.0]}), "every customer has T = 0"),
        (pd.DataFrame({"frequency": [0.0] * 3, "recency": [0.0] * 3, "T": [5.0] * 3}), "none of the 3 customers has a repeat purchase .*Set data.calibration_end later"),
        (pd.DataFrame({"frequency": [], "recency": [], "T": []}), "has no customers"),
        (pd.DataFrame({"frequency": ["a"], "recency": [0.0], "T": [1.0]}), "'frequency' is not numeric"),
    ],
)
def test_invalid_summaries(summary: pd.DataFrame, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        BetaGeoModel().fit(summary)


def test_summary_must_be_a_dataframe() -> None:
    with pytest.raises(UserInputError, match="expects the BTYD summary as a pandas DataFrame"):
        BetaGeoModel().fit(np.zeros((3, 3)))


@pytest.mark.parametrize("penalizer", [-1.0, float("nan"), "x"])
def test_invalid_penalizer(cdnow_summary, penalizer) -> None:
    with pytest.raises(UserInputError, match=r"models\.bgnbd\.penalizer must be a finite number >= 0"):
        BetaGeoModel(penalizer=penalizer).fit(cdnow_summary)


def test_invalid_initial_params(cdnow_summary) -> None:
    with pytest.raises(UserInputError, match="initial_params must give positive finite values"):
        BetaGeoModel(initial_params={"r": 1.0}).fit(cdnow_summary)


def test_initial_params_reach_the_same_optimum(cdnow_summary, cdnow_model) -> None:
    start = {"r": 0.5, "alpha": 8.0, "a": 1.5, "b": 4.0}
    model = BetaGeoModel(initial_params=start).fit(cdnow_summary)
    assert model.params_ == pytest.approx(cdnow_model.params_, rel=1e-4)
    assert model.initial_params is start  # hyperparameters are stored verbatim


def test_fit_does_not_mutate_input(cdnow_summary) -> None:
    summary = cdnow_summary.copy()
    summary.loc[summary.index[0], "recency"] = summary["T"].iloc[0] * (1 + 1e-15)  # 1-ulp overshoot
    before = summary.copy()
    BetaGeoModel().fit(summary)
    pd.testing.assert_frame_equal(summary, before)


# --- serialisation -----------------------------------------------------------------------


def _fitted_dict() -> dict:
    return {
        "model": "bgnbd", "format_version": 1, "penalizer": 0.0, "initial_params": None,
        "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "standard_errors": {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": None},
        "n_customers": 2357, "n_repeaters": 946, "log_likelihood": -9582.4,
    }


def test_to_dict_round_trip_through_json(cdnow_model, cdnow_summary) -> None:
    data = json.loads(json.dumps(cdnow_model.to_dict(), allow_nan=False))
    assert data["params"] == cdnow_model.params_
    assert set(data) >= {"penalizer", "params", "standard_errors", "n_customers"}
    restored = BetaGeoModel.from_dict(data)
    x, tx, T = _columns(cdnow_summary)
    np.testing.assert_array_equal(restored.expected_purchases(52, x, tx, T), cdnow_model.expected_purchases(52, x, tx, T))
    assert restored.standard_errors_ == cdnow_model.standard_errors_
    assert restored.n_customers_ == cdnow_model.n_customers_


def test_nan_standard_errors_serialise_as_null() -> None:
    model = BetaGeoModel.from_dict(_fitted_dict())
    assert np.isnan(model.standard_errors_["b"])
    assert json.loads(json.dumps(model.to_dict(), allow_nan=False))["standard_errors"]["b"] is None


def test_from_dict_rejects_other_models() -> None:
    with pytest.raises(UserInputError, match="expected a serialised 'bgnbd' model"):
        BetaGeoModel.from_dict({**_fitted_dict(), "model": "gamma_gamma"})
    with pytest.raises(UserInputError, match="format_version 99"):
        BetaGeoModel.from_dict({**_fitted_dict(), "format_version": 99})
