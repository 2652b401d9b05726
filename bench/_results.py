"""Shared helpers for bench scripts: machine description and RESULTS.md sections.

Each bench script owns one section of ``bench/RESULTS.md`` delimited by HTML comments,
so scripts can run in any order and rewrite only their own figures.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nWritten by the scripts in `bench/` (`make bench`); each section is rewritten by its script.\n"


def machine_description() -> str:
    """One line naming CPU, cores, memory, OS and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {sys.version.split()[0]}"
    )


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall-clock seconds of ``repeat`` calls of ``fn`` and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``markdown``."""
    text = RESULTS_PATH.read_text(encoding="utf-8") if RESULTS_PATH.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n\nMachine: {machine_description()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS_PATH.write_text(text, encoding="utf-8")
