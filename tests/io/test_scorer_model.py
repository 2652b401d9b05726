from __future__ import annotations

import pandas as pd
import pytest

from clvkit.exceptions import FeatureMismatchError, IncompatibleModelError
from clvkit.io.scorer_model import check_versions, installed_versions, to_scorer_input


def test_same_versions_load() -> None:
    check_versions(installed_versions())


def test_patch_difference_is_compatible() -> None:
    check_versions({"clvkit": "0.1.9", "xgboost-cpu": "3.0.0", "lifetimes": "0.11.1"},
                   {"clvkit": "0.1.0", "xgboost-cpu": "3.2.0", "lifetimes": "0.11.3"})


def test_incompatible_versions_refused_with_fix() -> None:
    with pytest.raises(IncompatibleModelError,
                       match=r"saved under clvkit 0\.2\.0 \(installed: 0\.1\.0\), xgboost-cpu 2\.1\.4 \(installed: 3\.2\.0\); "
                             r"the first version parts must match\. Install the versions it was trained with"):
        check_versions({"clvkit": "0.2.0", "xgboost-cpu": "2.1.4", "lifetimes": "0.11.3"},
                       {"clvkit": "0.1.0", "xgboost-cpu": "3.2.0", "lifetimes": "0.11.3"})


def test_scorer_input_needs_customer_id() -> None:
    frame = pd.DataFrame({"frequency": [1.0]})
    with pytest.raises(FeatureMismatchError, match="the customer table needs a 'customer_id' column"):
        to_scorer_input(frame)
    table = to_scorer_input(pd.DataFrame({"customer_id": [7], "frequency": [1.0]}))
    assert table.index.tolist() == ["7"]
