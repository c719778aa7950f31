"""``policyroute receipts report`` keeps the whole receipt another writer glued to a cut line,
also when the receipts' metadata hold objects that start as a receipt does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main


def _receipt(request_id: str, user: str) -> str:
    record: dict[str, Any] = {
        "schema_version": 1,
        "request_id": request_id,
        "kind": "call",
        "ts": "2026-01-02T03:04:05.000+00:00",
        "user": user,
        # the caller's own event layout, passed as metadata: its first key is schema_version
        "metadata": {"schema_version": 3, "app": "billing"},
        "status": "ok",
        "cost": "0.100000",
        "input_tokens": 10,
    }
    return json.dumps(record, separators=(",", ":"))  # as the sinks write it


def test_a_record_glued_to_a_cut_line_is_kept_when_both_carry_such_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = _receipt("r2", "killed")
    cut = cut[: cut.index('"app"')]  # the writer was killed inside the metadata
    path = tmp_path / "r.jsonl"
    path.write_text(
        _receipt("r1", "u1") + "\n" + cut + _receipt("r3", "u3") + "\n", encoding="utf-8"
    )

    status = main(["receipts", "report", str(path), "--by", "user", "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    assert sorted(report["by"]["user"]) == ["u1", "u3"]
    assert report["total"]["cost"] == "0.200000"
    (problem,) = report["problems"]
    assert (problem["line"], problem["partial"]) == (2, True)
    assert f"warning: {path}:2: a cut line" in err


def test_a_line_cut_right_after_such_metadata_is_a_cut_line_not_a_receipt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = _receipt("r2", "killed")
    cut = cut[: cut.index("}") + 1]  # the writer was killed just after the metadata object
    assert cut.endswith('"metadata":{"schema_version":3,"app":"billing"}')
    path = tmp_path / "r.jsonl"
    path.write_text(
        _receipt("r1", "u1") + "\n" + cut + "\n" + _receipt("r3", "u3") + "\n", encoding="utf-8"
    )

    status = main(["receipts", "report", str(path), "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out)
    assert report["total"]["calls"] == 2
    (problem,) = report["problems"]
    assert (problem["line"], problem["partial"]) == (2, True)
    assert problem["message"].endswith("its receipt is lost")
