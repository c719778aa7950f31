"""``explain --request -`` fed without end (``yes | policyroute explain ...``) stops reading."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policyroute.cli import main


class _Endless(io.RawIOBase):
    """A pipe that never ends: any read is answered in full; reading to the end never returns."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        buffer[:] = b"y" * len(buffer)
        return len(buffer)

    def readall(self) -> bytes:
        raise AssertionError("read to the end of an endless pipe")


class _Stdin:
    def __init__(self) -> None:
        self.buffer = io.BufferedReader(_Endless())


def test_an_endless_request_on_stdin_is_refused_not_read_to_the_end(
    policy_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin())

    status = main(["explain", str(policy_path), "--request", "-"])

    assert status == 1
    assert capsys.readouterr().err == (
        "policyroute explain: error: <stdin>: the request is more than 2,097,152 bytes long;"
        " at most 524,288 characters are allowed (is this the right file?)\n"
    )


def test_a_request_file_past_the_limit_is_refused_by_its_size(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "big.yaml"
    request.write_bytes(b"messages: '" + b"x" * (4 * 512 * 1024) + b"'\n")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    assert f"{request}: the request is more than 2,097,152 bytes long" in capsys.readouterr().err
