from __future__ import annotations

import pandas as pd
import pytest

from clvkit.exceptions import FeatureMismatchError, IncompatibleModelError
from clvkit.io.scorer_model import check_versions, installed_versions, to_scorer_input


def test_same_versions_load() -> None:
    check_versions(installed_versions())


def test_patch_difference_is_compatible() -> None:
    check_versions({"clvkit": "0.1.9", "xgboost-cpu": "3.2.5", "lifetimes": "0.11.1"},
                   {"clvkit": "0.1.0", "xgboost-cpu": "3.2.0", "lifetimes": "0.11.3"})


def test_incompatible_versions_refused_with_fix() -> None:
    with pytest.raises(IncompatibleModelError,
                       match=r"saved under clvkit 0\.2\.0 \(installed: 0\.1\.0\), xgboost-cpu 2\.1\.4 \(installed: 3\.2\.0\); "
                             r"major\.minor versions must match\. Install the versions it was trained with"):
        check_versions({"clvkit": "0.2.0", "xgboost-cpu": "2.1.4", "lifetimes": "0.11.3"},
                       {"clvkit": "0.1.0", "xgboost-cpu": "3.2.0", "lifetimes": "0.11.3"})


def test_minor_difference_of_every_library_is_refused() -> None:
    """Issue 11: xgboost's minor version was not compared; every recorded library is now."""
    with pytest.raises(IncompatibleModelError, match=r"xgboost-cpu 3\.1\.0 \(installed: 3\.2\.0\)"):
        check_versions({"clvkit": "0.1.0", "xgboost-cpu": "3.1.0", "lifetimes": "0.11.3"},
                       {"clvkit": "0.1.0", "xgboost-cpu": "3.2.0", "lifetimes": "0.11.3"})
    with pytest.raises(IncompatibleModelError, match=r"numpy 1\.26\.4 \(installed: 2\.4\.6\)"):
        check_versions({"clvkit": "0.1.0", "numpy": "1.26.4"}, {"clvkit": "0.1.0", "numpy": "2.4.6"})


@pytest.mark.parametrize("recorded", [None, {}])
def test_state_without_versions_is_refused(recorded: dict | None) -> None:
    with pytest.raises(IncompatibleModelError, match="records no library versions .* Retrain it with clvkit train"):
        check_versions(recorded)


def test_scorer_input_needs_customer_id() -> None:
    frame = pd.DataFrame({"frequency": [1.0]})
    with pytest.raises(FeatureMismatchError, match="the customer table needs a 'customer_id' column"):
        to_scorer_input(frame)
    table = to_scorer_input(pd.DataFrame({"customer_id": [7], "frequency": [1.0]}))
    assert table.index.tolist() == ["7"]


def test_signature_declares_outputs_and_as_of_but_no_input_schema() -> None:
    """MLflow would enforce Any-typed input columns value by value; the scorer checks its inputs itself."""
    from clvkit.io.scorer_model import scorer_signature

    output = pd.DataFrame({"customer_id": ["a"], "clv": [1.0], "rfm_segment": ["New"]})
    signature = scorer_signature(pd.DataFrame({"frequency": [1.0]}), output)
    assert signature.inputs is None
    assert [c.name for c in signature.outputs.inputs] == ["customer_id", "clv", "rfm_segment"]
    assert signature.params.to_dict()[0]["name"] == "as_of"
