"""A batch receipt writer for the multi-process tests: ``python batch_writer.py PATH N TAG``.

Writes ``N`` pairs of receipts (an attempt's and its call's) with ``JsonlSink.write_many``.
"""

from __future__ import annotations

import sys

from writer import sample_record

from policyroute.costs.sinks import JsonlSink


def main() -> None:
    path, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sink = JsonlSink(path)
    for seq in range(count):
        attempt = sample_record(tag, seq)
        call = {**attempt, "kind": "call", "attempts": 1}
        sink.write_many([attempt, call])
    sink.close()


if __name__ == "__main__":
    main()
