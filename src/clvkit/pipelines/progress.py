"""Progress for long jobs: a bar on a terminal, nothing otherwise (logs still say what happens)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stages(total: int, title: str) -> Iterator[Callable[[str], None]]:
    """Yield ``step(description)``: call it as each of ``total`` stages starts."""
    if not sys.stderr.isatty():
        yield lambda description: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(title, total=total)
        started = False

        def step(description: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=f"{title}: {description}")

        yield step
        progress.update(task, completed=total)


@contextmanager
def counter(total: int, title: str, min_total: int = 0) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)`` for a job of ``total`` items; a bar only on a terminal and from ``min_total`` items."""
    if not sys.stderr.isatty() or total < min_total:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda n: progress.advance(task, n)
