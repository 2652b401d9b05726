from __future__ import annotations

import io
import sys

import pytest

from clvkit.pipelines.progress import counter, stages


def test_quiet_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with stages(3, "training") as step:
        step("a")
        step("b")
    with counter(10, "scoring") as advance:
        advance(5)
    assert sys.stderr.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    from rich.console import Console

    monkeypatch.setattr("rich.progress.get_console", lambda: Console(file=terminal, force_terminal=True))
    with stages(2, "training") as step:
        step("fitting")
        step("evaluating")
    assert "training" in terminal.getvalue()
