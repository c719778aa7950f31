"""Receipts read from what a shell hands the report: pipes (``<(zcat ...)``), files that start
with a byte order mark, Windows line ends, the same file named twice."""

from __future__ import annotations

import gzip
import json
import os
import threading
from pathlib import Path

import pytest

from policyroute.costs.report import load_receipts, summarize

from .helpers import call_receipt


def _lines(count: int) -> bytes:
    return b"".join(json.dumps(call_receipt()).encode() + b"\n" for _ in range(count))


def _pipe_with(data: bytes) -> tuple[str, int, threading.Thread]:
    """``/dev/fd/N`` of a pipe fed ``data`` by a thread: what bash's ``<(zcat ...)`` passes."""
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    return f"/dev/fd/{read_end}", read_end, writer


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")
@pytest.mark.parametrize("compressed", [False, True])
def test_a_pipe_is_read_whole(compressed: bool) -> None:
    # A pipe can be read once: looking at its first bytes to tell gzip from text must not
    # throw away what was read (it did, and the report said 0 calls, exit status 0).
    data = _lines(3)
    path, read_end, writer = _pipe_with(gzip.compress(data) if compressed else data)
    try:
        stream = load_receipts([path])
        report = summarize(stream)
    finally:
        writer.join(timeout=10)
        os.close(read_end)
    assert report.total.calls == 3
    assert stream.problems == []


def test_a_byte_order_mark_is_not_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _lines(2))
    stream = load_receipts([path])
    assert summarize(stream).total.calls == 2
    assert stream.problems == []


def test_windows_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(_lines(2).replace(b"\n", b"\r\n"))
    stream = load_receipts([path])
    assert summarize(stream).total.calls == 2
    assert stream.problems == []


def test_the_same_file_named_twice_is_counted_once(tmp_path: Path) -> None:
    # Overlapping globs (`receipts/*.jsonl receipts/2026-01-*.jsonl`), `./r.jsonl` beside
    # `r.jsonl`, or a link: summing each name would double the spend.
    path = tmp_path / "r.jsonl"
    path.write_bytes(_lines(2))
    link = tmp_path / "link.jsonl"
    link.symlink_to(path)
    other = tmp_path / "other.jsonl"
    other.write_bytes(_lines(1))
    names = [path, other, tmp_path / "." / "r.jsonl", link, path]
    stream = load_receipts(names)
    assert summarize(stream).total.calls == 3
    assert [p for p, _ in stream.repeated] == [str(n) for n in names[2:]]
    assert {first for _, first in stream.repeated} == {str(path)}
