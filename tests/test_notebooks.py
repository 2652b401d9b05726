"""The notebooks and the README's Python snippet run, as written, against the installed package.

Notebooks are executed cell by cell in a real Jupyter kernel (nbclient + ipykernel) in a
temporary directory with its own MLflow store; the README snippet is the fenced ``python``
block after the ``<!-- snippet:python -->`` marker, run verbatim.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
SNIPPET_MARKER = "<!-- snippet:python -->"
#: Seconds one notebook cell may take (a fit on the CDNOW sample on a loaded 2-core machine).
CELL_TIMEOUT_S = 900
#: Modules a notebook may import: the public API, plotting, and the standard library.
ALLOWED_IMPORTS = {"clvkit", "matplotlib", "pandas", "numpy", "os", "pathlib"}


def _code_cells(path: Path) -> list[str]:
    import nbformat

    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def readme_snippet(text: str) -> str | None:
    """The first fenced ``python`` block after the snippet marker, or None without a marker."""
    start = text.find(SNIPPET_MARKER)
    if start < 0:
        return None
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.DOTALL)
    if match is None:
        raise AssertionError(f"README.md has {SNIPPET_MARKER} but no ```python block after it")
    return match.group(1)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "customer_value.ipynb"])
def test_notebooks_use_only_the_public_api(name: str) -> None:
    for source in _code_cells(NOTEBOOKS / name):
        for node in ast.walk(ast.parse(source)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for module in modules:
                assert module.split(".")[0] in ALLOWED_IMPORTS and not module.startswith("clvkit."), (
                    f"{name} imports {module}: notebooks use `import clvkit` and its public names only")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.ipynb", "customer_value.ipynb"])
def test_notebook_executes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "execute_result" for o in outputs)
    if name == "quickstart.ipynb":
        assert (tmp_path / "outputs" / "quickstart_model" / "state.json").is_file()
        assert (tmp_path / "mlflow.db").is_file()  # the optional MLflow cell logged the run


@pytest.mark.slow
def test_readme_snippet_runs_verbatim(tmp_path: Path) -> None:
    snippet = readme_snippet(README.read_text(encoding="utf-8"))
    assert snippet is not None, f"README.md lost its {SNIPPET_MARKER} block"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=CELL_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "clv" in result.stdout


def test_snippet_finder() -> None:
    text = f"intro\n```python\nnot this\n```\n{SNIPPET_MARKER}\nSome words.\n```python\nprint(1)\n```\n"
    assert readme_snippet(text) == "print(1)\n"
    assert readme_snippet("no marker") is None
    with pytest.raises(AssertionError, match="no ```python block after it"):
        readme_snippet(f"{SNIPPET_MARKER}\n```bash\nls\n```")
