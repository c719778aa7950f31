"""`receipts report` names a missing input whose name is not valid UTF-8.

A file name of undecodable bytes reaches Python as lone surrogates (``surrogateescape``). Named
on the table's INCOMPLETE line, it could not be written to a strictly UTF-8 stdout: the report
failed as a whole with an internal error (exit 70). It is now spelled with ``\\udcXX`` escapes,
as the report spells such names in receipts, and the other inputs' totals are printed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.cli import main

RECEIPT = '{"kind": "call", "request_id": "r1", "cost": "0.5"}\n'
MISSING = os.fsdecode(b"caf\xe9.jsonl")  # 'caf\udce9.jsonl'
SHOWN = "caf\\udce9.jsonl"


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    Path("ok.jsonl").write_text(RECEIPT, encoding="utf-8")
    return ["ok.jsonl", MISSING]


def _strict_stdout(monkeypatch: pytest.MonkeyPatch) -> io.BytesIO:
    raw = io.BytesIO()
    monkeypatch.setattr(
        sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")
    )
    return raw


def test_the_incomplete_line_shows_the_name_escaped(
    inputs: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _strict_stdout(monkeypatch)
    assert main(["receipts", "report", *inputs]) == 2
    sys.stdout.flush()
    out = raw.getvalue().decode("utf-8")
    (line,) = [line for line in out.splitlines() if line.startswith("INCOMPLETE")]
    assert line.endswith(f"{SHOWN} (no such file or directory)")
    assert "calls" in out  # the totals of the file that was read
    err = capsys.readouterr().err
    assert f"error: no such file or directory: {SHOWN}" in err


def test_the_json_report_names_it_too(
    inputs: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _strict_stdout(monkeypatch)
    assert main(["receipts", "report", *inputs, "--format", "json"]) == 2
    sys.stdout.flush()
    doc = json.loads(raw.getvalue().decode("utf-8"))
    assert [u["file"] for u in doc["unread_files"]] == [SHOWN]
    assert SHOWN in doc["error"]["message"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
def test_a_strict_utf8_terminal_gets_the_report(inputs: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    code = "import sys; from policyroute.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "receipts", "report", *inputs],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"{SHOWN} (no such file or directory)".encode() in done.stdout
    assert b"internal error" not in done.stderr
