"""JSON-lines sink: batches of records, rotated or deleted files, forked processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.sinks import (
    BatchReceiptSink,
    CallableSink,
    JsonlSink,
    MultiSink,
    SqliteSink,
    encode_record,
)
from policyroute.errors import ReceiptError

from .golden_cases import cases
from .helpers import fork, jsonl_records

BATCH_WRITER = Path(__file__).with_name("batch_writer.py")


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real: Callable[[int, Any], int] = os.write

    def counting(fd: int, data: Any) -> int:
        sizes.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", counting)
    return sizes


def test_write_many_writes_the_same_bytes_as_write(tmp_path: Path) -> None:
    records = [record for _, record in cases()]
    one, many = JsonlSink(tmp_path / "one" / "{date}.jsonl"), JsonlSink(tmp_path / "many/{date}")
    for record in records:
        one.write(record)
    many.write_many(records)
    one.close()
    many.close()
    written = _files(tmp_path / "one")
    assert len(written) == 5  # the cases span five dates
    assert {f"{name}.jsonl": data for name, data in _files(tmp_path / "many").items()} == written


def test_write_many_makes_one_system_call_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = JsonlSink(tmp_path / "{date}.jsonl")
    day1 = [{"ts": "2026-01-01T23:59:59.999+00:00", "n": n} for n in (1, 3)]
    day2 = [{"ts": "2026-01-02T00:00:00.000+00:00", "n": 2}]
    sizes = _count_writes(monkeypatch)
    sink.write_many([day1[0], day2[0], day1[1]])
    sink.close()
    monkeypatch.undo()
    lines1 = b"".join(encode_record(r) for r in day1)
    assert sizes == [len(lines1), len(encode_record(day2[0]))]
    assert (tmp_path / "2026-01-01.jsonl").read_bytes() == lines1
    assert (tmp_path / "2026-01-02.jsonl").read_bytes() == encode_record(day2[0])


def test_write_many_of_nothing_writes_nothing(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")
    sink.write_many([])
    assert not (tmp_path / "r.jsonl").exists()


def _loop() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    "bad",
    [{(1, 2): "a tuple key"}, {"loop": _loop()}],
    ids=["tuple-key", "cycle"],
)
def test_an_unencodable_record_fails_the_batch_before_anything_is_written(
    tmp_path: Path, bad: dict[Any, Any]
) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")
    with pytest.raises(ReceiptError, match="not JSON-serialisable"):
        sink.write_many([{"kind": "attempt"}, bad])
    with pytest.raises(ReceiptError, match="not JSON-serialisable"):
        sink.write(bad)
    assert not (tmp_path / "r.jsonl").exists()
    sink.write_many([{"kind": "attempt"}])  # the sink is still usable
    assert (tmp_path / "r.jsonl").read_bytes() == b'{"kind":"attempt"}\n'


def test_write_many_names_the_file_it_cannot_append_to(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    sink = JsonlSink(blocker / "{date}.jsonl")  # a file where a directory should be
    with pytest.raises(ReceiptError, match=r"cannot append receipt to .*file/2026-01-01\.jsonl"):
        sink.write_many([{"ts": "2026-01-01T00:00:00.000+00:00"}])


def test_a_rotated_file_is_replaced_by_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path)
    sink.write({"n": 1})
    path.rename(tmp_path / "r.jsonl.1")  # what logrotate does
    sink.write({"n": 2})
    sink.write_many([{"n": 3}])
    path.rename(tmp_path / "r.jsonl.2")
    path.touch()  # logrotate's ``create``: a new empty file at the path before the next write
    sink.write({"n": 4})
    sink.close()
    assert (tmp_path / "r.jsonl.1").read_bytes() == b'{"n":1}\n'
    assert (tmp_path / "r.jsonl.2").read_bytes() == b'{"n":2}\n{"n":3}\n'
    assert path.read_bytes() == b'{"n":4}\n'


def test_a_deleted_file_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "r.jsonl"
    sink = JsonlSink(path)
    sink.write({"n": 1})
    path.unlink()
    sink.write({"n": 2})
    assert path.read_bytes() == b'{"n":2}\n'
    path.unlink()
    path.parent.rmdir()
    sink.write_many([{"n": 3}])  # the directory too
    sink.close()
    assert path.read_bytes() == b'{"n":3}\n'


def test_the_cached_descriptor_is_reused_while_the_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")
    sink.write({"n": 1})
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    for n in range(5):
        sink.write({"n": n})
    sink.write_many([{"n": 5}, {"n": 6}])
    assert opened == []
    sink.close()


def test_a_forked_child_opens_its_own_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path)
    sink.write({"who": "parent", "n": 1})
    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 2
        try:
            sink.write_many([{"who": "child", "n": 1}, {"who": "child", "n": 2}])
            sink.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.write({"who": "parent", "n": 2})  # the parent's descriptor is untouched
    sink.close()
    assert [(r["who"], r["n"]) for r in jsonl_records(path)] == [
        ("parent", 1),
        ("child", 1),
        ("child", 2),
        ("parent", 2),
    ]


def test_processes_writing_batches_keep_each_batch_together(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    per_writer = 400
    procs = [
        subprocess.Popen(
            [sys.executable, str(BATCH_WRITER), str(path), str(per_writer), f"w{n}"],
            cwd=BATCH_WRITER.parent,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    records = jsonl_records(path)
    assert len(records) == 4 * per_writer * 2
    pairs = list(zip(records[::2], records[1::2], strict=True))
    # Every attempt line is directly followed by its own call line.
    assert all(
        (a["kind"], c["kind"], a["writer"], a["seq"]) == ("attempt", "call", c["writer"], c["seq"])
        for a, c in pairs
    )
    for n in range(4):
        assert [a["seq"] for a, _ in pairs if a["writer"] == f"w{n}"] == list(range(per_writer))


def test_multi_sink_batches_where_it_can_and_reports_failures(tmp_path: Path) -> None:
    seen: list[Any] = []

    def boom(record: Any) -> None:
        if record["n"] == 1:
            raise ValueError("nope")

    jsonl = JsonlSink(tmp_path / "r.jsonl")
    multi = MultiSink([jsonl, CallableSink(boom), CallableSink(seen.append)])
    records = [{"n": 1}, {"n": 2}]
    with pytest.raises(ReceiptError, match=r"CallableSink: .*nope") as failure:
        multi.write_many(iter(records))
    assert "JsonlSink" not in str(failure.value)
    assert seen == records  # every healthy sink got every record
    assert (tmp_path / "r.jsonl").read_bytes() == b'{"n":1}\n{"n":2}\n'
    multi.write_many([{"n": 3}])
    multi.close()


def test_which_sinks_take_batches(tmp_path: Path) -> None:
    sqlite = SqliteSink(tmp_path / "r.sqlite3")
    assert isinstance(JsonlSink(tmp_path / "r.jsonl"), BatchReceiptSink)
    assert isinstance(MultiSink([]), BatchReceiptSink)
    assert not isinstance(sqlite, BatchReceiptSink)
    assert not isinstance(CallableSink(print), BatchReceiptSink)
    sqlite.close()
