"""Run every case of the bad-input corpus (``cases/*.yaml``) through ``clvkit train`` and ``clvkit predict``.

Issue 11: ordinary bad input must end with exit code 2 and a message naming the cause and the
fix (never exit 1 with a traceback); good outputs must survive a failed run.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from clvkit.cli.main import app
from tests.bad_inputs.conftest import MODEL_URI, make_file
from tests.pipelines.conftest import MlflowHome

CASES_DIR = Path(__file__).with_name("cases")
CASES = sorted(CASES_DIR.glob("*.yaml"))
COMMANDS = ("train", "predict")


def _params() -> list:
    params = []
    for path in CASES:
        case = yaml.safe_load(path.read_text(encoding="utf-8"))
        for command in COMMANDS:
            if command in case:
                params.append(pytest.param(path, command, id=f"{path.stem}-{command}"))
    return params


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _command_line(command: str, spec: dict, home: Path, case_dir: Path) -> list[str]:
    args = [str(a).format(home=home, case=case_dir) for a in spec.get("args", [])]
    if command == "train":
        return ["train", "--config", str(home / "sim.yaml"), *args]
    model = [] if any(a in ("-m", "--model") for a in args) else ["--model", MODEL_URI]
    return ["predict", *model, *args]


@pytest.mark.slow
@pytest.mark.parametrize(("case_path", "command"), _params())
def test_bad_input_case(case_path: Path, command: str, trained_home: MlflowHome, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = yaml.safe_load(case_path.read_text(encoding="utf-8"))
    spec = case[command]
    if case.get("skip_if_root") and os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    home = trained_home.path
    case_dir = tmp_path / case_path.stem
    case_dir.mkdir()
    for name, file_spec in (case.get("files") or {}).items():
        make_file(case_dir, home, name, file_spec)
    before = {name: _digest(case_dir / name) for name in spec.get("unchanged", [])}
    monkeypatch.chdir(case_dir)
    env = {"MLFLOW_TRACKING_URI": trained_home.env["MLFLOW_TRACKING_URI"]}
    env |= {k: str(v).format(home=home, case=case_dir) for k, v in (spec.get("env") or {}).items()}
    result = CliRunner().invoke(app, _command_line(command, spec, home, case_dir), env=env)
    output = result.output
    assert result.exit_code == spec["exit"], f"{case['issue']}: exit {result.exit_code}\n{output}\n{result.exception!r}"
    assert "Traceback" not in output and "internal error" not in output
    for pattern in _as_list(spec.get("message")):
        assert re.search(pattern, output, flags=re.DOTALL), f"{case['issue']}: /{pattern}/ not in:\n{output}"
    for name, digest in before.items():
        assert _digest(case_dir / name) == digest, f"{name} was changed by a failed run"
    for name in spec.get("absent", []):
        assert not (case_dir / name).exists(), f"{name} should not exist"
    leftovers = [p.name for p in case_dir.iterdir() if p.name.startswith(".clvkit-tmp-")]
    assert not leftovers, f"temporary files left: {leftovers}"
    if "quarantine" in spec:
        quarantine = pd.read_csv(case_dir / spec["quarantine"]["file"])
        assert quarantine["reason"].value_counts().to_dict() == spec["quarantine"]["reasons"]


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def test_every_case_names_its_issue_and_expectations() -> None:
    """The corpus itself: each file says which issue case it reproduces and what each command must do."""
    assert len(CASES) >= 20
    for path in CASES:
        case = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert case.get("issue"), path.name
        commands = [c for c in COMMANDS if c in case]
        assert commands, path.name
        for command in commands:
            assert case[command]["exit"] in (0, 2), f"{path.name}: no case may expect exit 1"
            assert case[command].get("message"), f"{path.name}: {command} needs a message to match"
