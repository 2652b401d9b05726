"""The quickstart notebook's code cells run against the package as written (no Jupyter needed)."""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"
#: Cells after this index need a trained registry (make demo) and are not run here.
OFFLINE_CELLS = 4


def test_quickstart_offline_cells_run() -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c["source"] for c in cells[:OFFLINE_CELLS] if c["cell_type"] == "code"]
    namespace: dict[str, object] = {}
    for source in code:
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)  # our own notebook
    assert round(namespace["bg"].params_["r"], 3) > 0  # type: ignore[attr-defined]
    assert len(namespace["clv"]) == 23_570  # type: ignore[arg-type]
