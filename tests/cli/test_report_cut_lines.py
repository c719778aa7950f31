"""``policyroute receipts report`` after a writer was killed mid-write and the next one went
on: the JSON-lines sink starts its record on a line of its own, so the cut receipt is left on
a line that ends with a newline. Like a cut last line, that is a warning, not an error, and
the report says what it is rather than "not JSON"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main
from policyroute.costs.receipt_json import encode_record
from policyroute.costs.sinks import JsonlSink


def _receipt(request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "request_id": request_id,
        "kind": "call",
        "ts": "2026-01-02T03:04:05.000+00:00",
        "user": "ünï",
        "status": "ok",
        "cost": "0.100000",
        "latency_ms": 1250.5,
        "input_tokens": 10,
        "usage_estimated": False,
        "error": None,
        **fields,
    }


def _killed_writer_then_sink(tmp_path: Path, cut_at: int) -> Path:
    path = tmp_path / "r.jsonl"
    first = JsonlSink(path)
    first.write(_receipt("r1"))
    first.close()
    with path.open("ab") as killed:  # a writer killed after cut_at bytes of its receipt
        killed.write(encode_record(_receipt("r2"))[:cut_at])
    sink = JsonlSink(path)  # the next writer (another process, or this one restarted)
    sink.write(_receipt("r3"))
    sink.close()
    return path


@pytest.mark.parametrize(
    "cut_before",
    ['"user"', 'nï"', "ï", "250.5", "alse", "ull", '"r2"', ":1250"],
    ids=["key", "string", "mid-character", "number", "literal", "null", "value", "colon"],
)
def test_a_cut_line_the_next_writer_moved_past_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cut_before: str
) -> None:
    line = encode_record(_receipt("r2"))
    cut_at = line.index(cut_before.encode()) + (1 if cut_before == "ï" else 0)
    path = _killed_writer_then_sink(tmp_path, cut_at)
    assert path.read_bytes().count(b"\n") == 3  # the cut receipt stands on a line of its own

    status = main(["receipts", "report", str(path), "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    assert (report["total"]["calls"], report["total"]["cost"]) == (2, "0.200000")
    assert report["problems"] == [
        {
            "file": str(path),
            "line": 2,
            "message": (
                "a cut line (a writer killed mid-write, or a full disk): its receipt is lost"
            ),
            "partial": True,
        }
    ]
    assert f"warning: {path}:2: a cut line" in err


@pytest.mark.parametrize(
    "line",
    [
        '{"schema_version":1,"kind":"call","cost":"0.1",,"status":"ok"}',  # wrong inside
        '{"schema_version":1,"kind":"call","cost":0.1.5}',
        '{"kind":"call","cost":"0.1"',  # not the start of a receipt a sink writes
        "not json",
    ],
)
def test_a_line_wrong_before_its_end_is_still_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    path = tmp_path / "r.jsonl"
    good = json.dumps(_receipt("r1"))
    path.write_text(f"{good}\n{line}\n", encoding="utf-8")

    status = main(["receipts", "report", str(path), "--format", "csv"])

    err = capsys.readouterr().err
    assert status == 1
    assert f"error: {path}:2: not JSON" in err
