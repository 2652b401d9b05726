"""MBG/NBD model of repeat purchasing (Batislam, Denizel & Filiztekin 2007).

BG/NBD with one change: a customer may also drop out right after the first purchase, so
customers without repeat purchases have P(alive) < 1. With p ~ Beta(a, b) and lambda ~
Gamma(r, alpha) (Wagner & Hoppe 2008 give the predictions):

* likelihood: Gamma(r+x) alpha^r / Gamma(r) * B(a, b+x+1)/B(a, b)
  * [(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)];
* P(alive | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x));
* E[X(T, T+t] | x, t_x, T] = P(alive) (a+b+x)/(a-1)
  [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))];
* E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))].

Fitting and predictions are our own (:mod:`clvkit.models._purchase_base`); lifetimes'
``ModifiedBetaGeoFitter`` is the reference of the tests.
"""

from __future__ import annotations

from typing import ClassVar

from clvkit.models import _beta_geo
from clvkit.models.bgnbd import _BetaGeoFamily


class ModifiedBetaGeoModel(_BetaGeoFamily):
    """MBG/NBD purchase model; parameters ``r, alpha, a, b`` (see the module docstring).

    Parameters and attributes are those of :class:`clvkit.models.bgnbd.BetaGeoModel`.
    """

    name: ClassVar[str] = "mbgnbd"
    MODEL_NAME: ClassVar[str] = "MBG/NBD"
    PARAM_NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    MODIFIED: ClassVar[bool] = True

    @staticmethod
    def _alive_expectation(params, t, x, T):
        r, alpha, a, b = params
        return _beta_geo.alive_expectation(r + x, alpha + T, a, b + x + 1.0, t)

    @staticmethod
    def _unconditional(params, t):
        r, alpha, a, b = params
        # a new customer is alive with probability b/(a+b); given alive, p ~ Beta(a, b+1)
        return b / (a + b) * _beta_geo.alive_expectation(r, alpha, a, b + 1.0, t)

