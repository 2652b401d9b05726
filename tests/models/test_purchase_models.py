"""Purchase models (BG/NBD, MBG/NBD, Pareto/NBD): numerics, parity, degeneracy, fitting, sklearn.

Parity is with lifetimes' fitters carrying the same parameters (their predictions), and with
lifetimes' own fits for the estimates; where lifetimes' closed forms lose their digits
(a near 1, b in the millions, a -> 0) the reference is an mpmath quadrature of the defining
expectation.
"""

from __future__ import annotations

import itertools
import json
import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from clvkit.exceptions import NotFittedError, UserInputError
from clvkit.models import _beta_geo
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.gamma_gamma import GammaGammaModel
from clvkit.models.mbgnbd import ModifiedBetaGeoModel
from clvkit.models.pareto_nbd import ParetoNBDModel
from clvkit.models.purchase import (
    PURCHASE_MODELS,
    compare_purchase_models,
    make_purchase_model,
    purchase_model_from_dict,
)

PARITY_RTOL = 1e-8
PARITY_ATOL = 1e-13

#: Parameters far outside what fits give: every prediction must stay finite and in range.
EXTREME_GRIDS = {
    BetaGeoModel: dict(r=[1e-3, 0.24, 5, 200], alpha=[1e-4, 4.4, 1e3], a=[1e-6, 0.79, 1.0, 1 + 1e-5, 30], b=[1e-3, 2.4, 1e6]),
    ModifiedBetaGeoModel: dict(r=[1e-3, 0.24, 5, 200], alpha=[1e-4, 4.4, 1e3], a=[1e-6, 0.79, 1.0, 1 + 1e-5, 30], b=[1e-3, 2.4, 1e6]),
    ParetoNBDModel: dict(r=[1e-3, 0.55, 5, 200], alpha=[1e-4, 10.6, 1e3], s=[1e-4, 0.6, 1.0, 40], beta=[1e-3, 11.7, 1e5]),
}
#: Where lifetimes' closed forms keep their digits: parity to 1e-8 with its predictions.
PARITY_GRIDS = {
    BetaGeoModel: dict(r=[0.05, 0.243, 5], alpha=[0.01, 4.4, 1e3], a=[0.3, 0.79, 3, 30], b=[2.4, 30]),
    ModifiedBetaGeoModel: dict(r=[0.05, 0.243, 5], alpha=[0.01, 4.4, 1e3], a=[0.3, 0.79, 3, 30], b=[2.4, 30]),
    ParetoNBDModel: dict(r=[1e-3, 0.05, 0.55, 5, 200], alpha=[1e-4, 0.01, 10.6, 1e3], s=[1e-4, 0.05, 0.6, 1.0, 40], beta=[1e-3, 0.01, 11.7, 1e5]),
}
LIFETIMES_CLASS = {BetaGeoModel: "BetaGeoFitter", ModifiedBetaGeoModel: "ModifiedBetaGeoFitter", ParetoNBDModel: "ParetoNBDFitter"}


def _with_params(cls, params):
    model = cls()
    model.params_, model.degenerate_, model.limit_params_ = dict(params), None, None
    return model


def _random_summaries(n: int, seed: int, max_x: int, max_T: float):
    rng = np.random.default_rng(seed)
    thirds = [rng.integers(0, 5, n // 3), rng.integers(0, 60, n // 3), rng.integers(0, max_x, n - 2 * (n // 3))]
    x = np.concatenate(thirds).astype(float)
    T = np.exp(rng.uniform(np.log(0.1), np.log(max_T), n))
    tx = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    t = np.exp(rng.uniform(np.log(0.01), np.log(max_T), n))
    return x, tx, T, t


def _predictions(model, x, tx, T, t):
    return {
        "expected": model.expected_purchases(t, x, tx, T),
        "p_alive": model.p_alive(x, tx, T),
        "p_no_purchase": model.p_no_purchase(t, x, tx, T),
        "unconditional": model.expected_purchases_unconditional(t),
    }


# --- numerics over the whole parameter space ---------------------------------------------


@pytest.mark.slow  # a dense parameter grid (Pareto/NBD: ~30 s)
@pytest.mark.parametrize("cls", list(EXTREME_GRIDS))
def test_predictions_finite_and_in_range_over_extreme_parameters(cls) -> None:
    """x up to 3,000 repeat purchases, T and t up to 5,000 periods, a -> 0, b -> 1e6, tiny alpha."""
    x, tx, T, t = _random_summaries(150, seed=0, max_x=3000, max_T=5000.0)
    grid = EXTREME_GRIDS[cls]
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid, combo, strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no overflow/invalid warnings leak
            out = _predictions(_with_params(cls, params), x, tx, T, t)
        for name, values in out.items():
            assert np.all(np.isfinite(values)), (name, params)
            assert np.all(values >= 0), (name, params)
        assert np.all(out["p_alive"] <= 1) and np.all(out["p_no_purchase"] <= 1), params
        r, alpha = params["r"], params["alpha"]
        # E[X | data] <= P(alive) x the no-dropout expectation (r+x) t / (alpha+T)
        bound = out["p_alive"] * (r + x) * t / (alpha + T)
        assert np.all(out["expected"] <= bound * (1 + 1e-6) + 1e-300), params


#: Where ours and lifetimes differ, the mpmath referee decides for at most this many points.
REFEREE_POINTS = 3


@pytest.mark.slow  # a dense parameter grid (Pareto/NBD: ~30 s)
@pytest.mark.parametrize("cls", list(PARITY_GRIDS))
def test_predictions_equal_lifetimes_where_its_closed_forms_hold(lifetimes, cls) -> None:
    """Equal to lifetimes to 1e-8 wherever lifetimes is finite; where they differ, lifetimes' closed
    form has lost digits (cancellation in 2F1 differences): ours equals an mpmath quadrature."""
    x, tx, T, t = _random_summaries(120, seed=1, max_x=300, max_T=500.0)
    grid = PARITY_GRIDS[cls]
    compared = refereed = 0
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid, combo, strict=True))
        ours = _with_params(cls, params)
        ref = getattr(lifetimes, LIFETIMES_CLASS[cls])()
        ref.params_ = pd.Series(params)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs_alive = ref.conditional_probability_alive(x, tx, T)
            if cls is BetaGeoModel:  # lifetimes' BG/NBD P(alive) is 1 for x = 0 by definition too
                theirs_alive = np.where(x == 0, 1.0, theirs_alive)
            pairs = {
                "expected": (ours.expected_purchases(t, x, tx, T), ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)),
                "p_alive": (ours.p_alive(x, tx, T), theirs_alive),
                "unconditional": (ours.expected_purchases_unconditional(t), ref.expected_number_of_purchases_up_to_time(t)),
            }
        for what, (mine, theirs) in pairs.items():
            finite = np.isfinite(theirs) & (theirs > 0)  # lifetimes underflows to 0 / overflows
            compared += int(finite.sum())
            differ = np.flatnonzero(finite & ~np.isclose(mine, theirs, rtol=PARITY_RTOL, atol=PARITY_ATOL))
            worst = differ[np.argsort(-np.abs(mine[differ] / theirs[differ] - 1))][:REFEREE_POINTS]
            for i in worst:
                truth = _mp_truth(cls, params, what, x[i], tx[i], T[i], t[i])
                assert mine[i] == pytest.approx(truth, rel=1e-7), (what, params, x[i], tx[i], T[i], t[i], theirs[i])
                refereed += 1
    assert compared > 10_000


def _mp_truth(cls, params, what, x, tx, T, t) -> float:
    """High-precision value of one prediction from its defining integrals (mpmath)."""
    mpmath.mp.dps = 30
    if cls is ParetoNBDModel:
        r, alpha, s, beta = (mpmath.mpf(params[k]) for k in ("r", "alpha", "s", "beta"))
        x, tx, T, t = (mpmath.mpf(float(v)) for v in (x, tx, T, t))
        if what == "unconditional":
            return float(r / alpha * mpmath.quad(lambda u: (beta / (beta + u)) ** s, [0, t]))
        gap = mpmath.quad(lambda y: (alpha + y) ** (-(r + x)) * (beta + y) ** (-(s + 1)), [tx, T]) if T > tx else 0
        alive = 1 / (1 + s * gap * (alpha + T) ** (r + x) * (beta + T) ** s)
        if what == "p_alive":
            return float(alive)
        return float(alive * (r + x) / (alpha + T) * mpmath.quad(lambda u: ((beta + T) / (beta + T + u)) ** s, [0, t]))
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    modified = cls is ModifiedBetaGeoModel
    if what == "unconditional":
        if modified:
            return b / (a + b) * _mp_alive_expectation(r, alpha, a, b + 1.0, t)
        return _mp_alive_expectation(r, alpha, a, b, t)
    alive = float(_with_params(cls, params).p_alive(x, tx, T)[0])  # closed form, equal to lifetimes'
    if what == "p_alive":
        return alive
    return alive * _mp_alive_expectation(r + x, alpha + T, a, b + x + (1.0 if modified else 0.0), t)


def _mp_alive_expectation(k, A, a, bp, t):
    """E_p[(1 - (1 + p t/A)^-k) / p], p ~ Beta(a, b'), by mpmath quadrature in log p."""
    mpmath.mp.dps = 30
    k, A, a, bp, t = (mpmath.mpf(v) for v in (k, A, a, bp, t))
    w, log_beta = t / A, mpmath.log(mpmath.beta(a, bp))

    def integrand(u):
        p = mpmath.exp(u)
        return mpmath.exp(a * u + (bp - 1) * mpmath.log1p(-p) - log_beta) * -mpmath.expm1(-k * mpmath.log1p(p * w)) / p

    mode = mpmath.log(a / (a + bp))
    points = [-mpmath.inf, mode - 20, mode - 5, mode] + ([mode + 5] if mode + 5 < 0 else []) + [0]
    return float(mpmath.quad(integrand, points))


@pytest.mark.parametrize(
    ("k", "A", "a", "bp", "t"),
    [
        (3.001, 34.4, 1e-6, 1e6 + 3, 52.0),  # a -> 0, b -> infinity
        (2000.001, 304.4, 1e-6, 1e6 + 2000, 1000.0),  # x in the thousands: 2F1 overflows
        (0.001, 1e-4, 1.00001, 2.4, 50.0),  # a within 1e-5 of the pole at a = 1
        (5.24, 34.4, 1.0, 7.4, 52.0),  # a = 1 exactly
        (3.05, 1.2457, 0.79, 3.05, 972.5),  # lifetimes returns 0.85 for the 0.55 below
        (2500.24, 4004.4, 0.79, 2502.4, 4000.0),  # T and t in the thousands
        (200.0, 304.4, 30.0, 1e6 + 2000, 1000.0),
    ],
)
def test_alive_expectation_matches_high_precision_quadrature(k, A, a, bp, t) -> None:
    ours = _beta_geo.alive_expectation(k, A, a, bp, t)
    assert float(ours) == pytest.approx(_mp_alive_expectation(k, A, a, bp, t), rel=1e-7)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(PURCHASE_MODELS),
    x=st.integers(min_value=0, max_value=5000),
    recency_share=st.floats(min_value=0.0, max_value=1.0),
    T=st.floats(min_value=1e-3, max_value=1e4),
    t=st.floats(min_value=0.0, max_value=1e4),
    log_params=st.lists(st.floats(min_value=-12.0, max_value=12.0), min_size=4, max_size=4),
)
def test_random_parameters_and_summaries_stay_finite(name, x, recency_share, T, t, log_params) -> None:
    cls = type(make_purchase_model(name))
    model = _with_params(cls, dict(zip(cls.PARAM_NAMES, np.exp(log_params), strict=True)))
    tx = 0.0 if x == 0 else recency_share * T
    with np.errstate(all="ignore"):
        out = _predictions(model, np.array([x], float), np.array([tx]), np.array([T]), np.array([t]))
    for name_, values in out.items():
        assert np.all(np.isfinite(values)) and np.all(values >= 0), (name_, log_params)
    assert out["p_alive"][0] <= 1 and out["p_no_purchase"][0] <= 1


# --- fitting: published figures and lifetimes' estimates -------------------------------------


def test_pareto_nbd_reproduces_the_published_cdnow_estimates(lifetimes, cdnow_summary) -> None:
    """Fader, Hardie & Lee (2005): r=0.553, alpha=10.58, s=0.606, beta=11.67 on CDNOW."""
    model = ParetoNBDModel().fit(cdnow_summary)
    assert {k: round(v, 2) for k, v in model.params_.items()} == {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    s = cdnow_summary
    # lifetimes draws its start at random unless given one; its Nelder-Mead tolerance tightened
    ref = lifetimes.ParetoNBDFitter().fit(s["frequency"], s["recency"], s["T"], initial_params=np.ones(4), tol=1e-9, maxiter=20000)
    # same optimum to 1e-6, ours at least as good
    assert model.params_ == pytest.approx(ref.params_.to_dict(), rel=1e-6)
    x, tx, T = (s[c].to_numpy() for c in ("frequency", "recency", "T"))
    ours_ll = ParetoNBDModel._loglik_rows(tuple(model.params_.values()), x, tx, T).sum()
    their_ll = ParetoNBDModel._loglik_rows(tuple(ref.params_.to_numpy()), x, tx, T).sum()
    assert ours_ll >= their_ll - 1e-9
    assert model.fit_report_["converged"] is True
    assert model.p_alive(0, 0.0, 30.0)[0] < 1.0  # one-time buyers may have dropped out


def test_mbgnbd_estimates_match_lifetimes(lifetimes, cdnow_summary) -> None:
    model = ModifiedBetaGeoModel().fit(cdnow_summary)
    s = cdnow_summary
    ref = lifetimes.ModifiedBetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])  # tol 1e-8 fails in lifetimes
    # measured: within 6e-7 relative (lifetimes' BFGS stops at precision loss beyond tol 1e-7)
    assert model.params_ == pytest.approx(ref.params_.to_dict(), rel=2e-6)
    assert model.standard_errors_ == pytest.approx(ref.standard_errors_.to_dict(), rel=1e-4)
    assert model.p_alive(0, 0.0, 30.0)[0] < 1.0


@pytest.mark.parametrize("name", PURCHASE_MODELS)
def test_collapsed_fit_equals_per_customer_fit(cdnow_summary, name) -> None:
    per_customer = make_purchase_model(name).fit(cdnow_summary)
    collapsed = cdnow_summary.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    weighted = make_purchase_model(name).fit(collapsed, sample_weight=collapsed["n"].to_numpy())
    assert weighted.params_ == pytest.approx(per_customer.params_, rel=1e-6)
    assert weighted.n_customers_ == per_customer.n_customers_ == 2357


# --- degenerate fits: the limiting NBD model --------------------------------------------------


def _near_zero_dropout_summary(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    """Weekly buyers who never drop out (NBD process), 52 weeks, acquired over 8 weeks."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(4.0, 1.0 / 4.0, n)  # about one purchase a week
    T = 52.0 - rng.uniform(0.0, 8.0, n)
    x = rng.poisson(lam * T).astype(float)
    # last purchase of a Poisson process with x events on (0, T]: T times the max of x uniforms
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1.0), 1.0), 0.0)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def _nbd_mle(summary: pd.DataFrame) -> tuple[float, float]:
    x, T = summary["frequency"].to_numpy(), summary["T"].to_numpy()

    def nll(log_p):
        r, alpha = np.exp(log_p)
        return -np.sum(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T))

    res = minimize(nll, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-12, "maxiter": 20000})
    return tuple(np.exp(res.x))


@pytest.mark.parametrize("name", PURCHASE_MODELS)
def test_near_zero_dropout_is_degenerate_and_served_by_the_nbd_limit(name) -> None:
    summary = _near_zero_dropout_summary()
    model = make_purchase_model(name).fit(summary)
    assert model.degenerate_ is not None and "dropout is unidentifiable" in model.degenerate_
    assert model.fit_report_["degenerate"] == model.degenerate_
    r, alpha = _nbd_mle(summary)
    assert model.limit_params_ == pytest.approx({"r": r, "alpha": alpha}, rel=1e-5)
    x, tx, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    for t in (1.0, 13.0, 52.0):
        np.testing.assert_allclose(model.expected_purchases(t, x, tx, T), (r + x) * t / (alpha + T), rtol=1e-6)
        np.testing.assert_allclose(model.p_no_purchase(t, x, tx, T), ((alpha + T) / (alpha + T + t)) ** (r + x), rtol=1e-6, atol=1e-12)
    assert np.all(model.p_alive(x, tx, T) == 1.0)
    np.testing.assert_allclose(model.expected_purchases_unconditional(10.0), r * 10.0 / alpha, rtol=1e-6)
    restored = purchase_model_from_dict(json.loads(json.dumps(model.to_dict(), allow_nan=False)))
    assert restored.degenerate_ == model.degenerate_
    np.testing.assert_array_equal(restored.expected_purchases(13.0, x, tx, T), model.expected_purchases(13.0, x, tx, T))


# --- p_no_purchase: the closed-form churn probability -----------------------------------------


@pytest.mark.parametrize("name", PURCHASE_MODELS)
def test_p_no_purchase_matches_lifetimes_or_its_definition(lifetimes, cdnow_summary, name) -> None:
    model = make_purchase_model(name).fit(cdnow_summary)
    x, tx, T = (cdnow_summary[c].to_numpy()[:200] for c in ("frequency", "recency", "T"))
    ours = model.p_no_purchase(13.0, x, tx, T)
    if name == "pnbd":
        ref = lifetimes.ParetoNBDFitter()
        ref.params_ = pd.Series(model.params_)
        theirs = np.array([ref.conditional_probability_of_n_purchases_up_to_time(0, 13.0, x[i], tx[i], T[i]) for i in range(x.size)])
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
    else:  # 1 - P(alive) (1 - ((alpha+T)/(alpha+T+t))^(r+x))
        r, alpha = model.params_["r"], model.params_["alpha"]
        expected = 1 - model.p_alive(x, tx, T) * (1 - ((alpha + T) / (alpha + T + 13.0)) ** (r + x))
        np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert np.all(model.p_no_purchase(0.0, x, tx, T) == 1.0)


# --- the registry and the comparison helper ---------------------------------------------------


def test_make_and_restore_every_model(cdnow_summary) -> None:
    for name in PURCHASE_MODELS:
        model = make_purchase_model(name, penalizer=0.0, random_state=3)
        assert model.name == name and model.random_state == 3
        model.fit(cdnow_summary)
        restored = purchase_model_from_dict(json.loads(json.dumps(model.to_dict(), allow_nan=False)))
        assert type(restored) is type(model) and restored.params_ == model.params_
    with pytest.raises(UserInputError, match=r"models\.purchase\.model must be one of \['bgnbd', 'mbgnbd', 'pnbd'\]"):
        make_purchase_model("bg")
    with pytest.raises(UserInputError, match="expected a serialised purchase model"):
        purchase_model_from_dict({"model": "gamma_gamma"})


def test_old_bgnbd_states_still_load() -> None:
    state = {
        "model": "bgnbd", "format_version": 1, "penalizer": 0.0, "initial_params": None,
        "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "standard_errors": {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": None},
        "n_customers": 2357, "n_repeaters": 946, "log_likelihood": -9582.4,
    }
    model = purchase_model_from_dict(state)
    assert isinstance(model, BetaGeoModel) and model.degenerate_ is None
    assert model.p_alive(2, 20.0, 39.0)[0] == pytest.approx(BetaGeoModel.from_dict(state).p_alive(2, 20.0, 39.0)[0])


def test_compare_purchase_models_on_an_inner_window(make_summary) -> None:
    from clvkit.io.datasets import load_builtin_transactions

    transactions = load_builtin_transactions("cdnow_sample")
    cutoff, end = pd.Timestamp("1997-06-30"), pd.Timestamp("1997-09-30")
    calibration = make_summary(transactions, cutoff)
    window = transactions[(transactions["timestamp"] > cutoff + pd.Timedelta(days=1)) & (transactions["timestamp"] < end + pd.Timedelta(days=1))]
    days = window.assign(day=window["timestamp"].dt.floor("D")).groupby("customer_id")["day"].nunique()
    actual = days.reindex(calibration.index, fill_value=0).to_numpy(dtype=float)
    duration = (end - cutoff).days / 7.0
    best, table = compare_purchase_models(calibration, actual, duration, PURCHASE_MODELS, penalizer=0.0)
    assert list(table.index) == list(PURCHASE_MODELS)
    assert table["error"].isna().all()
    assert best == table["holdout_mae"].astype(float).idxmin()
    assert np.all(np.isfinite(table["bic"].astype(float)))
    # auto is no worse than any single model on the inner window
    assert table.loc[best, "holdout_mae"] <= table["holdout_mae"].min()


def test_compare_purchase_models_rejects_bad_holdout(cdnow_summary) -> None:
    with pytest.raises(UserInputError, match="holdout_frequency must hold one finite count"):
        compare_purchase_models(cdnow_summary, [1.0, 2.0], 10.0, ["bgnbd"])


# --- scikit-learn contract --------------------------------------------------------------------


ESTIMATORS = [
    BetaGeoModel(penalizer=0.001, random_state=1, n_starts=2),
    ModifiedBetaGeoModel(penalizer=0.01, random_state=2),
    ParetoNBDModel(penalizer=0.0, initial_params={"r": 0.5, "alpha": 10.0, "s": 0.5, "beta": 10.0}),
    GammaGammaModel(penalizer=0.001, random_state=4),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_sklearn_clone_and_params_round_trip(estimator) -> None:
    params = estimator.get_params()
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy.get_params() == params
    assert copy.set_params(penalizer=0.5) is copy and copy.get_params()["penalizer"] == 0.5
    assert estimator.get_params() == params  # the original is untouched
    with pytest.raises(TypeError):
        type(estimator)(0.1)  # hyperparameters are keyword-only
    with pytest.raises(Exception, match="not fitted"):
        check_is_fitted(estimator)


def test_fitted_estimators_pass_check_is_fitted(cdnow_summary) -> None:
    for estimator in (BetaGeoModel(), GammaGammaModel()):
        estimator.fit(cdnow_summary)
        check_is_fitted(estimator)
        assert clone(estimator).get_params() == estimator.get_params()
        assert not hasattr(clone(estimator), "params_")


def test_predicting_before_fit_names_the_class() -> None:
    with pytest.raises(NotFittedError, match="ParetoNBDModel is not fitted yet"):
        ParetoNBDModel().p_alive(1, 1.0, 2.0)


def test_count_only_log_bgnbd_equals_lifetimes(simulation, lifetimes) -> None:
    """Issue 8: a log of customer and date only; our BG/NBD on its summary equals lifetimes' fit and predictions."""
    from clvkit.features.builder import FeatureBuilder

    count_only = simulation.transactions.drop(columns=["amount"])
    table = FeatureBuilder(time_unit="W").fit_transform(count_only)  # as of the last day of the log
    assert (table["monetary_value"] == 0).all()  # count-only: the summary keeps its shape, no spend
    ours = BetaGeoModel().fit(table)
    theirs = lifetimes.BetaGeoFitter(penalizer_coef=0.0)
    theirs.fit(table["frequency"], table["recency"], table["T"], tol=1e-10)
    for name in ("r", "alpha", "a", "b"):
        assert ours.params_[name] == pytest.approx(float(theirs.params_[name]), rel=1e-4)
    twelve_weeks = 12.0
    reference = lifetimes.BetaGeoFitter()
    reference.params_ = pd.Series(ours.params_)
    expected = reference.conditional_expected_number_of_purchases_up_to_time(
        twelve_weeks, table["frequency"], table["recency"], table["T"])
    np.testing.assert_allclose(ours.expected_purchases(twelve_weeks, table["frequency"], table["recency"], table["T"]),
                               np.asarray(expected, dtype=float), rtol=1e-8)
