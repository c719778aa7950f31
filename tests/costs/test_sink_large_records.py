"""Records larger than PIPE_BUF (4 KiB) appended by several processes never interleave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from policyroute.costs.report import load_receipts

_WRITER = """
import sys
from policyroute.costs.sinks import JsonlSink
path, tag, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sink = JsonlSink(path)
for seq in range(count):
    # A receipt with include_prompt carries the prompt: tens of KiB in one record.
    sink.write({"schema_version": 1, "kind": "call", "cost": "0.000001", "writer": tag,
                "seq": seq, "prompt": [{"role": "user", "content": tag * size}]})
sink.close()
"""


def test_processes_appending_records_far_larger_than_pipe_buf_never_interleave(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.jsonl"
    count, size = 150, 40_000  # ~40 KiB per line, ten times PIPE_BUF
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), tag, str(count), str(size)],
            stderr=subprocess.PIPE,
        )
        for tag in "abcd"
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    seen: dict[str, list[int]] = {}
    for line in lines[:-1]:
        record = json.loads(line)
        content = record["prompt"][0]["content"]
        assert content == record["writer"] * size  # no other writer's bytes inside
        seen.setdefault(record["writer"], []).append(record["seq"])
    assert seen == {tag: list(range(count)) for tag in "abcd"}
    stream = load_receipts([path])
    assert sum(1 for _ in stream) == 4 * count
    assert stream.skipped == 0
