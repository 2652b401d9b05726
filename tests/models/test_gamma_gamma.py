"""Gamma-Gamma: published CDNOW figures, parity with lifetimes, recovery, warnings, errors."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from clvkit.constants import GG_MAX_FREQ_SPEND_CORRELATION
from clvkit.exceptions import NotFittedError, UserInputError
from clvkit.models.gamma_gamma import GammaGammaModel

#: see test_bgnbd.RECOVERY_Z; the population mean spend p v / (q - 1) is far better
#: determined than p, q, v (strongly correlated): within 5% (1.4% the worst of nine seeds).
RECOVERY_Z = 3.0
RECOVERY_MEAN_RTOL = 0.05


@pytest.fixture(scope="module")
def cdnow_model(cdnow_summary: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow_summary)


@pytest.fixture(scope="module")
def cdnow_reference(lifetimes, cdnow_summary: pd.DataFrame):
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    return lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"], tol=1e-8)  # 1e-9 fails in lifetimes


@pytest.fixture(scope="module")
def reference_with_our_params(lifetimes, cdnow_model):
    """lifetimes' GammaGammaFitter carrying our parameters: prediction parity."""
    fitter = lifetimes.GammaGammaFitter()
    fitter.params_ = pd.Series(cdnow_model.params_)
    return fitter


def test_reproduces_fader_hardie_lee_2005_cdnow_estimates(cdnow_model: GammaGammaModel) -> None:
    assert {k: round(v, 2) for k, v in cdnow_model.params_.items()} == {"p": 6.25, "q": 3.74, "v": 15.44}


def test_fit_state(cdnow_model: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    assert cdnow_model.n_customers_ == int((cdnow_summary["frequency"] > 0).sum()) == 946
    assert cdnow_model.n_excluded_zero_spend_ == 0
    assert cdnow_model.frequency_spend_correlation_ == pytest.approx(0.1139, abs=1e-4)
    assert np.isfinite(cdnow_model.log_likelihood_)


def test_parameters_and_standard_errors_match_lifetimes(cdnow_model, cdnow_reference) -> None:
    # our analytic-gradient fit on collapsed rows vs lifetimes' autograd fit per customer
    assert cdnow_model.params_ == pytest.approx(cdnow_reference.params_.to_dict(), rel=1e-6)
    assert cdnow_model.standard_errors_ == pytest.approx(cdnow_reference.standard_errors_.to_dict(), rel=1e-6)
    assert cdnow_model.fallback_ is None
    assert cdnow_model.fit_report_["hessian_positive_definite"] is True


def test_expected_order_value_parity(cdnow_model, reference_with_our_params, cdnow_summary, simulated_summary) -> None:
    for summary in (cdnow_summary, simulated_summary):
        x, m = summary["frequency"].to_numpy(), summary["monetary_value"].to_numpy()
        np.testing.assert_allclose(
            cdnow_model.expected_order_value(x, m),
            reference_with_our_params.conditional_expected_average_profit(x, m),
            rtol=1e-10,
        )


def test_sample_weight_on_collapsed_rows_equals_the_per_customer_fit(cdnow_model, cdnow_summary) -> None:
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    collapsed = repeat.groupby(["frequency", "monetary_value"]).size().rename("n").reset_index()
    weighted = GammaGammaModel().fit(collapsed, sample_weight=collapsed["n"].to_numpy())
    assert weighted.params_ == pytest.approx(cdnow_model.params_, rel=1e-6)
    assert weighted.n_customers_ == cdnow_model.n_customers_


@pytest.mark.parametrize("penalizer", [0.0, 0.001])
def test_extreme_spends_are_rescaled(cdnow_model, cdnow_summary, penalizer) -> None:
    """Issue 11: x1e12 spends with the advised penalizer gave negative expected order values."""
    big = cdnow_summary.assign(monetary_value=cdnow_summary["monetary_value"] * 1e12)
    model = GammaGammaModel(penalizer=penalizer).fit(big)
    x, m = big["frequency"].to_numpy(), big["monetary_value"].to_numpy()
    eov = model.expected_order_value(x, m)
    assert np.all(np.isfinite(eov)) and np.all(eov > 0)
    assert model.params_["q"] > 1
    assert model.spend_scale_ == 1e13
    if penalizer == 0.0:
        np.testing.assert_allclose(eov / 1e12, cdnow_model.expected_order_value(x, m / 1e12), rtol=1e-6)


def test_customers_without_repeats_get_the_population_mean(cdnow_model) -> None:
    p, q, v = (cdnow_model.params_[k] for k in ("p", "q", "v"))
    eov = cdnow_model.expected_order_value([0, 0, 0], [np.nan, 0.0, 250.0])
    np.testing.assert_allclose(eov, p * v / (q - 1))
    assert cdnow_model.population_mean_order_value == pytest.approx(p * v / (q - 1))


def test_expected_order_value_shrinks_towards_the_mean(cdnow_model) -> None:
    mean = cdnow_model.population_mean_order_value
    low, high = cdnow_model.expected_order_value([1, 20], [5.0, 5.0])
    assert 5.0 < high < low < mean


def test_zero_and_negative_spend_repeaters_are_excluded(cdnow_summary: pd.DataFrame, caplog) -> None:
    summary = cdnow_summary.copy()
    repeaters = summary.index[summary["frequency"] > 0][:3]
    summary.loc[repeaters, "monetary_value"] = [0.0, -5.0, 0.0]
    caplog.set_level(logging.INFO, logger="clvkit.models.gamma_gamma")
    model = GammaGammaModel().fit(summary)
    assert model.n_excluded_zero_spend_ == 3
    assert model.n_customers_ == 946 - 3
    assert "3 repeat customer(s) with zero or negative mean spend left out" in caplog.text


def test_correlation_is_logged(cdnow_summary: pd.DataFrame, caplog) -> None:
    caplog.set_level(logging.INFO, logger="clvkit.models.gamma_gamma")
    GammaGammaModel().fit(cdnow_summary)
    assert "correlation of frequency and monetary_value among repeaters 0.114" in caplog.text


def test_warns_when_frequency_and_spend_are_correlated(caplog) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 12, 600).astype(float)
    m = rng.gamma(6.0, (2.0 + x) / 6.0)  # mean spend grows with frequency
    summary = pd.DataFrame({"frequency": x, "monetary_value": m})
    with pytest.warns(UserWarning, match=r"frequency and monetary_value are correlated \(Pearson 0\.\d{3}, \|corr\| > 0\.3\)"):
        model = GammaGammaModel().fit(summary)
    assert model.frequency_spend_correlation_ > GG_MAX_FREQ_SPEND_CORRELATION
    assert "assumes spend is independent of purchase frequency" in caplog.text


def test_no_warning_below_the_threshold(cdnow_summary) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        GammaGammaModel().fit(cdnow_summary)


def test_recovers_simulation_parameters(recovery_simulation, recovery_summary) -> None:
    """8,000 simulated customers (seed 11): p, q, v within 3 SE; population mean within 5%."""
    model = GammaGammaModel().fit(recovery_summary)
    truth = recovery_simulation.params
    for name, estimate in model.params_.items():
        z = (estimate - getattr(truth, name)) / model.standard_errors_[name]
        assert abs(z) < RECOVERY_Z, f"{name}: {estimate:.3f} vs {getattr(truth, name)} (z={z:.2f})"
    true_mean = truth.p * truth.v / (truth.q - 1)
    assert model.population_mean_order_value == pytest.approx(true_mean, rel=RECOVERY_MEAN_RTOL)


def test_identical_spends_walk_the_penalizer_path(caplog) -> None:
    # 50 identical customers: no spend heterogeneity, the likelihood has no interior optimum
    summary = pd.DataFrame({"frequency": [2.0] * 50, "monetary_value": [10.0] * 50})
    with caplog.at_level(logging.WARNING, logger="clvkit.models.gamma_gamma"):
        model = GammaGammaModel().fit(summary)
    assert model.fallback_ is None
    assert model.fit_report_["penalizer"] == 1e-4
    assert model.fit_report_["penalizer_reason"].startswith("raised from 0 to 0.0001 because the fit with penalizer 0")
    assert "raised from 0 to 0.0001" in caplog.text
    assert model.params_["q"] > 1
    np.testing.assert_allclose(model.expected_order_value([0, 2], [0.0, 10.0]), [10.0, 10.0], rtol=0.05)


def test_too_few_repeaters_fall_back_to_their_mean() -> None:
    summary = pd.DataFrame({"frequency": [0.0, 1.0, 3.0, 2.0], "monetary_value": [0.0, 5.0, 10.0, 0.0]})
    model = GammaGammaModel().fit(summary)
    assert model.fallback_ is not None
    assert "only 2 repeat customer(s) with positive spend (a fit needs at least 10)" in model.fallback_
    mean = (1 * 5.0 + 3 * 10.0) / 4  # total spend / total repeat transactions
    assert model.population_mean_order_value == pytest.approx(mean)
    # (x m + mu) / (x + 1) for repeaters with spend; mu for the others
    np.testing.assert_allclose(
        model.expected_order_value([0, 1, 3, 2], [0.0, 5.0, 10.0, 0.0]),
        [mean, (5.0 + mean) / 2, (30.0 + mean) / 4, mean],
    )
    data = json.loads(json.dumps(model.to_dict(), allow_nan=False))
    restored = GammaGammaModel.from_dict(data)
    assert restored.fallback_ == model.fallback_
    assert restored.population_mean_order_value == pytest.approx(mean)


def test_count_only_summary_falls_back_to_the_given_order_value() -> None:
    summary = pd.DataFrame({"frequency": [0.0, 1.0, 3.0], "monetary_value": [0.0, 0.0, 0.0]})
    model = GammaGammaModel().fit(summary, fallback_order_value=12.5)
    assert "fallback_order_value" in model.fallback_
    np.testing.assert_allclose(model.expected_order_value([0, 1, 3], [0.0, 0.0, 0.0]), 12.5)
    assert GammaGammaModel().fit(summary).population_mean_order_value == 0.0
    with pytest.raises(UserInputError, match="fallback_order_value must be a finite spend >= 0"):
        GammaGammaModel().fit(summary, fallback_order_value=-1.0)


def test_q_at_most_one_is_never_registered() -> None:
    """Heavy-tailed spend (Pareto tail, infinite mean): the fit gives q <= 1 and falls back."""
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.integers(1, 4, size=n).astype(float)
    m = (rng.pareto(0.5, size=n) + 1.0) * 10.0
    model = GammaGammaModel().fit(pd.DataFrame({"frequency": x, "monetary_value": m}))
    assert model.fallback_ is not None and "q=" in model.fallback_ and "<= 1" in model.fallback_
    eov = model.expected_order_value(x, m)
    assert np.all(np.isfinite(eov)) and np.all(eov >= 0)


def test_from_dict_refuses_q_at_most_one(cdnow_model) -> None:
    state = cdnow_model.to_dict()
    state["params"] = {**state["params"], "q": 0.9}
    with pytest.raises(UserInputError, match=r"q=0\.9 <= 1"):
        GammaGammaModel.from_dict(state)


def test_expected_order_value_never_negative_or_nan(cdnow_model) -> None:
    eov = cdnow_model.expected_order_value([0, 1, 2, 3], [np.nan, -5.0, 0.0, 1e300])
    assert np.all(np.isfinite(eov)) and np.all(eov >= 0)


def test_missing_monetary_value_column() -> None:
    with pytest.raises(UserInputError, match="lacks column 'monetary_value'"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1.0, 2.0]}))


def test_non_finite_spend_of_repeaters() -> None:
    summary = pd.DataFrame({"frequency": [1.0, 2.0], "monetary_value": [np.nan, 3.0]})
    with pytest.raises(UserInputError, match="monetary_value is missing or infinite for 1 repeat"):
        GammaGammaModel().fit(summary)


def test_invalid_penalizer(cdnow_summary) -> None:
    with pytest.raises(UserInputError, match=r"models\.gamma_gamma\.penalizer must be a finite number >= 0"):
        GammaGammaModel(penalizer=-0.1).fit(cdnow_summary)


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="GammaGammaModel is not fitted yet"):
        GammaGammaModel().expected_order_value([1], [2.0])


def test_to_dict_round_trip_through_json(cdnow_model) -> None:
    data = json.loads(json.dumps(cdnow_model.to_dict(), allow_nan=False))
    restored = GammaGammaModel.from_dict(data)
    assert restored.params_ == cdnow_model.params_
    assert restored.standard_errors_ == cdnow_model.standard_errors_
    assert restored.frequency_spend_correlation_ == cdnow_model.frequency_spend_correlation_
    x, m = np.array([0, 1, 5]), np.array([0.0, 20.0, 35.0])
    np.testing.assert_array_equal(restored.expected_order_value(x, m), cdnow_model.expected_order_value(x, m))


def test_from_dict_rejects_other_models(cdnow_model) -> None:
    with pytest.raises(UserInputError, match="expected a serialised 'gamma_gamma' model, got model='bgnbd'"):
        GammaGammaModel.from_dict({**cdnow_model.to_dict(), "model": "bgnbd"})


# --- the fast likelihood (distinct frequencies, analytic Hessian) ---------------------------


@pytest.fixture(scope="module")
def spend_rows(cdnow_summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    x, m = repeat["frequency"].to_numpy(dtype=float), repeat["monetary_value"].to_numpy(dtype=float)
    w = np.random.default_rng(5).integers(1, 4, x.size).astype(float)  # counts of identical customers
    return x, m, w


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_grouped_objective_equals_the_per_customer_likelihood(spend_rows, penalizer) -> None:
    from clvkit.models.gamma_gamma import _objective, _SpendData, log_likelihood

    x, m, w = spend_rows
    data = _SpendData(x, m, w)
    assert data.x_levels.size < x.size / 10  # few distinct frequencies carry the gamma terms
    for log_params in (np.array([1.8, 1.3, 2.7]), np.array([-0.5, 0.2, 0.1])):
        theta = np.exp(log_params)
        value, grad = _objective(log_params, data, penalizer)
        per_customer = -np.dot(w, log_likelihood(tuple(theta), x, m)) / w.sum() + penalizer * np.sum(theta**2)
        assert value == pytest.approx(per_customer, rel=1e-12)
        step = 1e-6
        numeric = [
            (_objective(log_params + step * e, data, penalizer)[0] - _objective(log_params - step * e, data, penalizer)[0])
            / (2 * step)
            for e in np.eye(3)
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_analytic_hessian_equals_central_differences(spend_rows, penalizer) -> None:
    from clvkit.models._optimize import numerical_hessian
    from clvkit.models.gamma_gamma import _hessian, _objective, _SpendData

    data = _SpendData(*spend_rows)
    for log_params in (np.array([1.8, 1.3, 2.7]), np.array([-0.5, 0.2, 0.1])):
        numeric = numerical_hessian(lambda lp: _objective(lp, data, penalizer), log_params)
        np.testing.assert_allclose(_hessian(log_params, data, penalizer), numeric, rtol=1e-5, atol=1e-8)


def test_first_start_serves_when_accepted_and_equals_every_start(cdnow_summary) -> None:
    from clvkit.models._optimize import collapse, minimize_multistart
    from clvkit.models.gamma_gamma import _objective, _SpendData

    model = GammaGammaModel(random_state=3).fit(cdnow_summary)
    assert model.fit_report_["starts"] == 1 and model.fit_report_["converged"]
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    (x, m), w = collapse([repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)], None)
    data = _SpendData(x, m, w)
    every = minimize_multistart(lambda lp: _objective(lp, data, 0.0), np.full(3, 0.1), n_starts=3,
                                random_state=3, n_weight=data.n)
    assert every.starts == 3
    assert model.params_ == pytest.approx(dict(zip(("p", "q", "v"), np.exp(every.log_params), strict=True)), rel=1e-9)
