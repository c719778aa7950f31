"""Every command prints what its output's encoding cannot hold as escapes, never failing on it.

A file name of bytes that are not UTF-8 reaches Python as lone surrogates; `policyroute
validate` printed it in each diagnostic and in its usage error, and on a strictly UTF-8 stdout
(``PYTHONIOENCODING=utf-8:strict``, some CI runners) ended with an internal error, exit 70, whatever
the policy said. An ASCII stdout failed the same way on any non-ASCII text.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")

POLICY = """policyroute: 1
name: p
models: {m: {model: openai/gpt-4o-mini}}
routes: [{name: r, to: m, params: {temperature: 7}}]
"""
NAME = os.fsdecode(b"caf\xe9.yaml")  # 'caf\udce9.yaml'
SHOWN = "caf\\udce9.yaml"


def _cli(cwd: Path, encoding: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": encoding, "NO_COLOR": "1"}
    code = "import sys; from policyroute.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_validate_names_an_undecodable_file_escaped(tmp_path: Path, fmt: str) -> None:
    (tmp_path / NAME).write_text(POLICY, encoding="utf-8")
    done = _cli(tmp_path, "utf-8:strict", "validate", "--format", fmt, ".")
    assert done.returncode == 1, done.stderr
    assert SHOWN.encode() in done.stdout
    assert b"temperature" in done.stdout  # the diagnostic itself, not only the name
    assert b"internal error" not in done.stderr


def test_a_missing_undecodable_file_is_a_usage_error(tmp_path: Path) -> None:
    done = _cli(tmp_path, "utf-8:strict", "validate", NAME)
    assert done.returncode == 2, done.stderr
    assert f"no such file or directory: {SHOWN}".encode() in done.stderr
    assert b"internal error" not in done.stderr


def test_an_ascii_terminal_gets_escapes(tmp_path: Path) -> None:
    (tmp_path / "café.yaml").write_text(POLICY, encoding="utf-8")
    done = _cli(tmp_path, "ascii:strict", "validate", "café.yaml")
    assert done.returncode == 1, done.stderr
    assert b"caf\\xe9.yaml" in done.stdout


def test_main_restores_the_streams_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")
    monkeypatch.setattr(sys, "stdout", stream)
    assert main(["validate", NAME]) == 2
    assert stream.errors == "strict"
    stream.flush()
    assert SHOWN in raw.getvalue().decode("utf-8")
