"""What is wrong with a tests file as a whole is said with its place and what to do about it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policy.validate import MAX_FILE_BYTES


def test_an_endless_pipe_is_refused_after_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `policyroute test <(yes)`: the whole stream was read into memory before any limit.
    pipe = tmp_path / "endless.tests.yaml"
    os.mkfifo(pipe)
    written: list[int] = []

    def write() -> None:
        chunk = b"y\n" * 65536
        fd = os.open(pipe, os.O_WRONLY)
        try:
            while sum(written) < 3 * MAX_FILE_BYTES:  # endless, as far as the reader knows
                written.append(os.write(fd, chunk))
        except BrokenPipeError:  # the reader stopped: what the fix is for
            pass
        finally:
            os.close(fd)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        assert main(["test", str(pipe)]) == 1
    finally:
        writer.join()

    out = capsys.readouterr().out
    assert (
        f"{pipe}: the tests file is more than 2,097,152 bytes long; a tests file has at most"
        " 524,288 characters (is this the right file?)"
    ) in out
    assert sum(written) < 3 * MAX_FILE_BYTES
