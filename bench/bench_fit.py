"""Bench: BG/NBD and Gamma-Gamma fits on 1M simulated customers, clvkit vs lifetimes and PyMC-Marketing, same process, same data.

Simulates the BTYD summary of 1M customers directly (BG/NBD process with the CDNOW parameters,
weeks, purchase times rounded to whole days, customers acquired over the first 12 weeks of a
78-week window) and times:

* ``BetaGeoModel().fit(summary)`` -- clvkit: collapse to distinct (frequency, recency, T) rows,
  analytic gradient and Hessian, further seeded starts only if the first is not accepted,
  Newton polish, NBD degeneracy check (best of 3 runs; the first, cold run is shown too);
* lifetimes ``BetaGeoFitter().fit`` per customer (autograd gradient and Hessian; one run);
* lifetimes ``BetaGeoFitter().fit`` with ``weights`` on the collapsed rows (best of 3);
* the same pair for MBG/NBD (``ModifiedBetaGeoModel`` vs ``ModifiedBetaGeoFitter`` with weights);
* PyMC-Marketing's ``BetaGeoModel.fit(method="map")`` per customer (it takes no weights): the
  first fit (graph compilation) and a second, warm fit in the same process -- when the
  ``bench`` extra installed it (``pip install -c constraints.txt -e '.[bench]'``);
* Gamma-Gamma on the same customers' simulated mean spends (FHL 2005b's CDNOW p, q, v; cents):
  ``GammaGammaModel().fit(summary)`` (gamma terms per distinct frequency, analytic gradient and
  Hessian; best of 3) vs lifetimes ``GammaGammaFitter().fit`` on the repeat customers (one run).

Prints the ratios and writes the ``fit`` section of bench/RESULTS.md.
Run under the bench lock: ``flock /tmp/notes/bench.lock .venv/bin/python bench/bench_fit.py``
(about 2-4 minutes on 2 idle cores, longer with PyMC-Marketing).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import peak_rss_gib, timed, write_section
from clvkit.models._lifetimes import import_lifetimes, run_contained
from clvkit.models.bgnbd import BetaGeoModel
from clvkit.models.mbgnbd import ModifiedBetaGeoModel

N_CUSTOMERS = 1_000_000
SEED = 2024
PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
WINDOW_WEEKS = 78.0
ACQUISITION_WEEKS = 12.0
DAYS_PER_WEEK = 7.0
TARGET_SPEEDUP = 3.0
#: Runs of the fast fits (clvkit, lifetimes with weights); the best is compared.
REPEAT = 3
PARAM_NAMES = ("r", "alpha", "a", "b")
#: Gamma-Gamma parameters of the simulated spends (Fader, Hardie & Lee 2005b, CDNOW).
GG_PARAMS = {"p": 6.25, "q": 3.74, "v": 15.44}
GG_PARAM_NAMES = ("p", "q", "v")
CENTS = 2


def simulate_summary(n: int, seed: int) -> pd.DataFrame:
    """frequency, recency, T (weeks, whole days) of n BG/NBD customers."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(PARAMS["r"], 1.0 / PARAMS["alpha"], n)
    p = rng.beta(PARAMS["a"], PARAMS["b"], n)
    T = np.ceil((WINDOW_WEEKS - rng.uniform(0.0, ACQUISITION_WEEKS, n)) * DAYS_PER_WEEK) / DAYS_PER_WEEK
    now = np.zeros(n)
    last = np.zeros(n)
    frequency = np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        bought = now[active] <= T[active]
        active = active[bought]
        frequency[active] += 1.0
        last[active] = now[active]
        active = active[rng.uniform(size=active.size) >= p[active]]  # dropout after a purchase
    recency = np.minimum(np.ceil(last * DAYS_PER_WEEK) / DAYS_PER_WEEK, T)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T})


def simulate_mean_spend(frequency: np.ndarray, seed: int) -> np.ndarray:
    """Mean spend of each customer's x repeat transactions (0 without repeats), rounded to cents.

    nu ~ Gamma(q, rate v) per customer; the mean of x spends z ~ Gamma(p, rate nu) is Gamma(p x, rate x nu).
    """
    rng = np.random.default_rng(seed)
    nu = rng.gamma(GG_PARAMS["q"], 1.0 / GG_PARAMS["v"], frequency.size)
    repeat = frequency > 0
    mean = np.zeros(frequency.size)
    x = frequency[repeat]
    mean[repeat] = rng.gamma(GG_PARAMS["p"] * x, 1.0 / (x * nu[repeat]))
    return np.maximum(np.round(mean, CENTS), 10.0 ** -CENTS) * repeat


def _gamma_gamma(summary: pd.DataFrame, lifetimes: Any) -> dict[str, Any]:
    """clvkit's Gamma-Gamma fit (best of REPEAT) and lifetimes' GammaGammaFitter (one run) on the repeaters."""
    from clvkit.models.gamma_gamma import GammaGammaModel

    ours_s, ours = timed(lambda: GammaGammaModel().fit(summary), repeat=REPEAT)
    repeat = summary[summary["frequency"] > 0]

    def reference() -> Any:
        fitted, _, err = run_contained(lifetimes.GammaGammaFitter().fit, repeat["frequency"], repeat["monetary_value"])
        if err is not None:
            raise err
        return fitted

    ref_s, fitter = timed(reference)
    ref = fitter.params_.to_dict()
    return {"ours_s": ours_s, "ours": ours, "ref_s": ref_s, "ref": ref, "n": len(repeat),
            "rel": max(abs(ours.params_[k] / ref[k] - 1.0) for k in GG_PARAM_NAMES)}


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _max_rel(ours: dict[str, float], ref: dict[str, float]) -> float:
    return max(abs(ours[k] / ref[k] - 1.0) for k in PARAM_NAMES)


def _pymc_marketing(summary: pd.DataFrame) -> dict[str, Any]:
    """PyMC-Marketing MAP fits (cold, then warm in the same process), or why they could not run."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pymc_marketing
            from pymc_marketing.clv import BetaGeoModel as PymcBetaGeoModel
    except ImportError as exc:
        return {"error": f"not installed ({exc}); install the bench extra: pip install -c constraints.txt -e '.[bench]'"}
    data = pd.DataFrame({
        "customer_id": np.arange(len(summary)),
        "frequency": summary["frequency"].to_numpy(),
        "recency": summary["recency"].to_numpy(),
        "T": summary["T"].to_numpy(),
    })

    def fit() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = PymcBetaGeoModel(data=data)
            model.fit(method="map", progressbar=False)
        return model

    cold_s, _ = timed(fit)
    warm_s, model = timed(fit)
    posterior = model.idata.posterior  # the MAP point (fit_summary rounds to 3 decimals)
    return {
        "version": pymc_marketing.__version__, "cold_s": cold_s, "warm_s": warm_s,
        "params": {k: float(posterior[k].values.ravel()[0]) for k in PARAM_NAMES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=N_CUSTOMERS)
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    parser.add_argument("--no-pymc", action="store_true", help="skip PyMC-Marketing even if installed")
    args = parser.parse_args()

    load_start = _load()
    lifetimes = import_lifetimes()
    sim_seconds, summary = timed(lambda: simulate_summary(args.customers, SEED))
    x, tx, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    collapsed = summary.groupby(["frequency", "recency", "T"], sort=False).size().rename("n").reset_index()
    cx, ctx, cT = (collapsed[c].to_numpy() for c in ("frequency", "recency", "T"))
    weights = collapsed["n"].to_numpy()
    print(f"simulated {len(summary):,} customers in {sim_seconds:.1f} s; {len(collapsed):,} distinct rows", flush=True)

    cold_s, _ = timed(lambda: BetaGeoModel(random_state=0).fit(summary))
    ours_s, ours = timed(lambda: BetaGeoModel(random_state=0).fit(summary), repeat=REPEAT)
    print(f"clvkit BetaGeoModel.fit: first {cold_s:.2f} s, best of {REPEAT} {ours_s:.2f} s  {ours.params_}", flush=True)

    def lifetimes_fit(fitter_cls: Any, w: np.ndarray | None, data: tuple[np.ndarray, ...]) -> Any:
        fitter, _, error = run_contained(fitter_cls().fit, *data, weights=w)
        if error is not None:
            raise error
        return fitter

    per_s, per = timed(lambda: lifetimes_fit(lifetimes.BetaGeoFitter, None, (x, tx, T)))
    print(f"lifetimes per customer: {per_s:.2f} s  {per.params_.to_dict()}", flush=True)
    coll_s, coll = timed(lambda: lifetimes_fit(lifetimes.BetaGeoFitter, weights, (cx, ctx, cT)), repeat=REPEAT)
    print(f"lifetimes weighted collapsed: {coll_s:.2f} s  {coll.params_.to_dict()}", flush=True)

    mbg_s, mbg = timed(lambda: ModifiedBetaGeoModel(random_state=0).fit(summary), repeat=REPEAT)
    mbg_ref_s, mbg_ref = timed(
        lambda: lifetimes_fit(lifetimes.ModifiedBetaGeoFitter, weights, (cx, ctx, cT)), repeat=REPEAT
    )
    print(f"MBG/NBD: clvkit {mbg_s:.2f} s, lifetimes weighted {mbg_ref_s:.2f} s", flush=True)

    pymc = {"error": "skipped (--no-pymc)"} if args.no_pymc else _pymc_marketing(summary)
    print(f"PyMC-Marketing: {pymc}", flush=True)
    spend = summary.assign(monetary_value=simulate_mean_spend(x, SEED + 1))
    gg = _gamma_gamma(spend, lifetimes)
    print(f"Gamma-Gamma: clvkit {gg['ours_s']:.2f} s {gg['ours'].params_}, lifetimes {gg['ref_s']:.2f} s {gg['ref']}",
          flush=True)
    load_end = _load()

    per_params = per.params_.to_dict()
    rel = _max_rel(ours.params_, per_params)
    rel_w = _max_rel(coll.params_.to_dict(), per_params)
    rel_mbg = _max_rel(mbg.params_, mbg_ref.params_.to_dict())
    ratio, ratio_w, ratio_mbg = per_s / ours_s, coll_s / ours_s, mbg_ref_s / mbg_s
    print(f"speed-up vs lifetimes per customer: {ratio:.1f}x; vs lifetimes weighted: {ratio_w:.1f}x", flush=True)
    print(f"largest relative parameter difference vs lifetimes: {rel:.2e} (lifetimes weighted vs per customer {rel_w:.2e})")
    rss = peak_rss_gib()
    n, m = f"{len(summary):,}", f"{len(collapsed):,}"
    rows = [
        "| what | customers | distinct rows | time | clvkit speed-up | target |",
        "|---|---|---|---|---|---|",
        f"| clvkit `BetaGeoModel().fit` (collapsed rows, analytic gradient and Hessian), best of {REPEAT} | {n} | {m} | {ours_s:.2f} s | | |",
        f"| same, first run in the process | {n} | {m} | {cold_s:.2f} s | | |",
        f"| lifetimes `BetaGeoFitter().fit`, one row per customer | {n} | | {per_s:.2f} s | {ratio:.1f}x | >= {TARGET_SPEEDUP:g}x |",
        f"| lifetimes `BetaGeoFitter().fit(weights=...)` on the collapsed rows, best of {REPEAT} | {n} | {m} | {coll_s:.2f} s | {ratio_w:.1f}x | >= {TARGET_SPEEDUP:g}x |",
        f"| clvkit `ModifiedBetaGeoModel().fit`, best of {REPEAT} | {n} | {m} | {mbg_s:.2f} s | | |",
        f"| lifetimes `ModifiedBetaGeoFitter().fit(weights=...)` on the collapsed rows, best of {REPEAT} | {n} | {m} | {mbg_ref_s:.2f} s | {ratio_mbg:.1f}x | |",
    ]
    gg_rows = gg["ours"].fit_report_["distinct_frequencies"]
    rows += [
        f"| clvkit `GammaGammaModel().fit` (gamma terms per distinct frequency, analytic gradient and Hessian), best of {REPEAT} | {gg['n']:,} repeaters | {gg_rows:,} frequencies | {gg['ours_s']:.2f} s | | |",
        f"| lifetimes `GammaGammaFitter().fit`, one row per repeat customer | {gg['n']:,} repeaters | | {gg['ref_s']:.2f} s | {gg['ref_s'] / gg['ours_s']:.1f}x | >= {TARGET_SPEEDUP:g}x |",
    ]
    if "error" in pymc:
        pymc_text = f"PyMC-Marketing: {pymc['error']}."
    else:
        rows += [
            f"| PyMC-Marketing {pymc['version']} `BetaGeoModel.fit(method=\"map\")`, first fit in the process (builds and compiles the graph) | {n} | | {pymc['cold_s']:.2f} s | {pymc['cold_s'] / ours_s:.1f}x | |",
            f"| same, second (warm) fit in the process | {n} | | {pymc['warm_s']:.2f} s | {pymc['warm_s'] / ours_s:.1f}x | > 1x |",
        ]
        pymc_rel = _max_rel(pymc["params"], per_params)
        pymc_text = (
            f"PyMC-Marketing's MAP (default priors, one row per customer: it takes no weights) "
            f"{', '.join(f'{k}={v:.4f}' for k, v in pymc['params'].items())}, largest relative difference "
            f"from lifetimes' fit {pymc_rel:.1e}."
        )
    gg_text = (
        f"Gamma-Gamma on the same customers' simulated mean spends (p, q, v = "
        f"{', '.join(f'{v:g}' for v in GG_PARAMS.values())}, cents): clvkit "
        f"{', '.join(f'{k}={v:.4f}' for k, v in gg['ours'].params_.items())}, starts run "
        f"{gg['ours'].fit_report_['starts']}; largest relative difference from lifetimes' fit {gg['rel']:.1e}."
    )
    body = (
        "## BG/NBD and Gamma-Gamma fits (`bench/bench_fit.py`)\n\n"
        f"Data: BTYD summary of {n} simulated BG/NBD customers (CDNOW parameters, weeks, "
        f"whole days, seed {SEED}), {m} distinct (frequency, recency, T) rows. Same process and "
        f"data; 1-minute load average {load_start} at the start, {load_end} at the end (2 cores).\n\n"
        + "\n".join(rows) + "\n\n"
        f"Estimates: clvkit {', '.join(f'{k}={v:.4f}' for k, v in ours.params_.items())}; largest relative "
        f"difference from lifetimes' per-customer fit {rel:.1e} (lifetimes' own weighted fit differs from it "
        f"by {rel_w:.1e}: its BFGS stops at tol 1e-7). MBG/NBD: largest relative difference from lifetimes' "
        f"weighted fit {rel_mbg:.1e}. clvkit fit report: starts run {ours.fit_report_['starts']}, gradient norm "
        f"{ours.fit_report_['gradient_norm']:.1e}, Hessian positive definite "
        f"{ours.fit_report_['hessian_positive_definite']}. {pymc_text} {gg_text} Process peak RSS {rss:.2f} GB.\n"
    )
    if not args.no_write:
        write_section("fit", body)
    print(body)


if __name__ == "__main__":
    main()
