"""The layer rule: features/, models/ and evaluation/ stay pure.

They may not import mlflow, typer or yaml, nor clvkit.io / clvkit.pipelines / clvkit.cli
(imports point down only). The check reads the source with ``ast`` (every import statement,
also inside functions), so nothing is imported to run it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "clvkit"
PURE_LAYERS = ("features", "models", "evaluation")
FORBIDDEN = ("mlflow", "typer", "yaml", "clvkit.io", "clvkit.pipelines", "clvkit.cli")


def _absolute(module: str | None, level: int, package: str, names: list[str]) -> list[str]:
    """Fully qualified modules an ImportFrom may bind (``from clvkit import io`` -> ``clvkit.io``)."""
    if level:
        base = package.split(".")[: len(package.split(".")) - level + 1]
        module = ".".join(base + ([module] if module else []))
    assert module is not None
    return [module, *(f"{module}.{name}" for name in names)]


def forbidden_imports(source: str, package: str, forbidden: tuple[str, ...] = FORBIDDEN) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``source`` that reaches a forbidden module.

    ``package`` is the dotted package holding the module (to resolve relative imports).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = _absolute(node.module, node.level, package, [alias.name for alias in node.names])
        else:
            continue
        for module in modules:
            if any(module == bad or module.startswith(bad + ".") for bad in forbidden):
                found.append((node.lineno, module))
                break
    return found


def _layer_files() -> list[Path]:
    return sorted(path for layer in PURE_LAYERS for path in (PACKAGE / layer).rglob("*.py"))


def test_the_layers_exist() -> None:
    files = _layer_files()
    assert {path.relative_to(PACKAGE).parts[0] for path in files} == set(PURE_LAYERS)
    assert len(files) > 10


@pytest.mark.parametrize("path", _layer_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_layers_import_no_io(path: Path) -> None:
    package = ".".join(("clvkit", *path.relative_to(PACKAGE).parent.parts))
    violations = forbidden_imports(path.read_text(encoding="utf-8"), package)
    assert not violations, f"{path.relative_to(PACKAGE)} breaks the layer rule: " + ", ".join(
        f"line {line} imports {module}" for line, module in violations
    )


def test_checker_catches_every_form_of_import() -> None:
    source = textwrap.dedent(
        """
        import numpy as np
        import mlflow.pyfunc
        from clvkit import schemas
        from clvkit import io
        from clvkit.pipelines.train import fit_and_evaluate

        def lazy():
            import yaml
            from .. import cli
            from ..io.files import read_table
            from . import metrics
        """
    )
    found = forbidden_imports(source, "clvkit.evaluation")
    assert found == [(3, "mlflow.pyfunc"), (5, "clvkit.io"), (6, "clvkit.pipelines.train"),
                     (9, "yaml"), (10, "clvkit.cli"), (11, "clvkit.io.files")]
    assert forbidden_imports("import typer\n", "clvkit.models") == [(1, "typer")]
    assert forbidden_imports("import clvkit.iox\nimport yamlish\n", "clvkit.models") == []


def test_importing_the_package_and_the_config_models_is_light() -> None:
    """``import clvkit`` does no heavy work; the data layer's config import does not pull in yaml;
    the Python API's fit/save/load path (the training composition) does not import MLflow."""
    code = (
        "import sys, clvkit, clvkit.config.models, clvkit.data.validation\n"
        "heavy = [m for m in ('mlflow', 'yaml', 'typer', 'xgboost', 'lifetimes') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
        "clvkit.CLVModel(horizon_months=6); clvkit.ChurnClassifier(); clvkit.FeatureBuilder()\n"
        "import clvkit.pipelines.train, clvkit.pipelines.ingest, clvkit.io.artifact  # what fit/save/load import\n"
        "print('mlflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["", "False"]
