"""``policyroute receipts report -`` names standard input ``<stdin>`` in what it reports (as
``explain --request -`` does), not ``/dev/stdin``, the path it happens to be read through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CALL = '{"schema_version": 1, "kind": "call", "request_id": "r1", "cost": "0.25"}'


def _report(*args: str, stdin: bytes) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "policyroute", "receipts", "report", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_a_bad_line_on_standard_input_is_named_stdin() -> None:
    status, out, err = _report("-", "--format", "json", stdin=f"{CALL}\n[1, 2]\n".encode())

    assert status == 1
    (problem,) = json.loads(out)["problems"]
    assert (problem["file"], problem["line"]) == ("<stdin>", 2)
    assert "error: <stdin>:2: a JSON array where a receipt object was expected" in err
    assert "/dev/stdin" not in err


def test_a_file_also_given_as_standard_input_is_named_so(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(f"{CALL}\n", encoding="utf-8")

    with path.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "policyroute", "receipts", "report", "-", str(path)],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert done.returncode == 0, done.stderr
    assert f"note: {path} is the same file as <stdin>: read once" in done.stderr
