"""Holdout evaluation: metrics, naive baselines, plots and the HTML report (all pure).

* :mod:`clvkit.evaluation.registry` — the one table of metric names: direction, group, label,
  definition (used by evaluation, logging, the report and the config check);
* :mod:`clvkit.evaluation.metrics` — purchase, spend, value-ranking and churn metrics on
  scikit-learn/scipy, with the registry's stable names; lift over baselines;
* :mod:`clvkit.evaluation.baselines` — historical spend, RFM score, 1 - P(alive);
* :mod:`clvkit.evaluation.plots` — matplotlib ``Figure`` builders (no pyplot) and the segment
  summary table;
* :mod:`clvkit.evaluation.tracking` — model expectations over calendar time, per birth cohort;
* :mod:`clvkit.evaluation.report` — one self-contained HTML page from metrics, PNGs, tables.
"""

__all__ = ["baselines", "metrics", "plots", "registry", "report", "tracking"]
