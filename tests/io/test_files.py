"""Reading bad files and writing outputs atomically (issue 11, items 1, 4 and 8)."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from clvkit.config.models import ColumnMapping
from clvkit.exceptions import UserInputError
from clvkit.io.files import (
    TEMP_PREFIX,
    atomic_write,
    check_output_path,
    read_table,
    read_transactions_source,
    write_table,
)

MAPPING = ColumnMapping()
ROOT = os.geteuid() == 0


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_semicolon_csv_is_sniffed(tmp_path: Path) -> None:
    path = _write(tmp_path / "semi.csv", "customer_id;timestamp;amount\n007;2024-01-01;10,5\n")
    raw = read_transactions_source(str(path), MAPPING)
    assert raw["customer_id"].tolist() == ["007"]
    assert list(raw.columns) == ["customer_id", "timestamp", "amount"]


def test_wrong_delimiter_suggests_the_right_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "semi.csv", "customer_id;timestamp;amount\na;2024-01-01;10\n")
    with pytest.raises(UserInputError, match=r"The header looks ';'-separated: set data\.delimiter: ';'"):
        read_transactions_source(str(path), MAPPING, delimiter=",")
    assert len(read_transactions_source(str(path), MAPPING, delimiter=";")) == 1


def test_latin1_ids_need_an_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin.csv", "customer_id,timestamp,amount\nJosé,2024-01-01,10\n", "latin-1")
    with pytest.raises(UserInputError, match=r"is not valid UTF-8 text .*set data\.encoding to the file's encoding, e\.g\. data\.encoding: latin-1"):
        read_transactions_source(str(path), MAPPING)
    assert read_transactions_source(str(path), MAPPING, encoding="latin-1")["customer_id"].tolist() == ["José"]


def test_xlsx_is_read_through_openpyxl(tmp_path: Path) -> None:
    path = tmp_path / "tx.xlsx"
    pd.DataFrame({"customer_id": ["007", "8"], "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                  "amount": [1.5, 2.0]}).to_excel(path, index=False)
    raw = read_transactions_source(str(path), MAPPING)
    assert raw["customer_id"].tolist() == ["007", "8"]
    assert raw["amount"].tolist() == [1.5, 2.0]
    assert len(read_table(path)) == 2


def test_not_really_xlsx(tmp_path: Path) -> None:
    path = _write(tmp_path / "fake.xlsx", "customer_id,timestamp\n")
    with pytest.raises(UserInputError, match=r"is not an Excel \.xlsx workbook"):
        read_transactions_source(str(path), MAPPING)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _write(p / "empty.csv", ""), r"is empty \(0 bytes\)"),
        (lambda p: _write(p / "header.csv", "customer_id,timestamp,amount\n"), r"has a header but no rows"),
        (lambda p: (p / "dir.csv").mkdir() or p / "dir.csv", r"is a directory, not a file"),
        (lambda p: p / "absent.csv", r"no such file"),
        (lambda p: _write(p / "tx.json", "{}"), r"unsupported file type '\.json'"),
        (lambda p: _write(p / "bad.parquet", "not parquet"), r"cannot be read as \.parquet"),
    ],
    ids=["empty", "header-only", "directory", "absent", "json", "not-parquet"],
)
def test_bad_files_are_user_errors(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(UserInputError, match=message):
        read_transactions_source(str(path), MAPPING)


@pytest.mark.skipif(ROOT, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "locked.csv", "customer_id,timestamp,amount\n")
    path.chmod(0)
    with pytest.raises(UserInputError, match="cannot be read: Permission denied"):
        read_transactions_source(str(path), MAPPING)


def test_output_path_checks(tmp_path: Path) -> None:
    source = _write(tmp_path / "tx.csv", "a\n")
    with pytest.raises(UserInputError, match="is the input file .* would destroy the input"):
        check_output_path(tmp_path / "." / "tx.csv", "--output", inputs=[str(source)])
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(UserInputError, match=r"'--output' .*out\.csv' is a directory|is a directory; give a file path"):
        check_output_path(tmp_path / "out.csv", "--output")
    with pytest.raises(UserInputError, match=r"unsupported file type '\.xlsx'"):
        check_output_path(tmp_path / "scores.xlsx")
    blocker = _write(tmp_path / "file", "x")
    with pytest.raises(UserInputError, match="not a writable directory"):
        check_output_path(blocker / "sub" / "scores.csv")


def test_output_permissions_follow_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    target.write_text("old")
    target.chmod(0o600)
    previous = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": [1]}), target, index=False)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_text() == "a\n1\n"


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = _write(tmp_path / "scores.csv", "good")

    def fail(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


@pytest.fixture()
def python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler, as in a terminal (a runner started as a background job without job
    control inherits SIGINT ignored, and clvkit leaves an ignored SIGINT ignored); restored after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_write_removes_the_temp_file(tmp_path: Path, signum: int, python_sigint: None) -> None:
    target = _write(tmp_path / "scores.csv", "good")
    seen = []

    def interrupted(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"partial")
        seen.extend(p.name for p in tmp_path.iterdir())
        os.kill(os.getpid(), signum)

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert any(name.startswith(TEMP_PREFIX) for name in seen)  # the recognisable temp file existed
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored
