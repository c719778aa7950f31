"""An internal error whose message the output's encoding cannot hold is still reported.

``main`` prints what its streams' encoding cannot hold as escapes while a command runs, but
put the streams back before its handlers ran: the one-line internal error naming a file of
non-UTF-8 bytes (or any non-ASCII text on an ASCII stderr) raised ``UnicodeEncodeError`` out
of ``main``, a traceback instead of exit 70.
"""

from __future__ import annotations

import argparse
import io
import sys

import pytest

from policyroute import cli
from policyroute.cli import INTERNAL_ERROR, main


def _strict(encoding: str) -> tuple[io.BytesIO, io.TextIOWrapper]:
    raw = io.BytesIO()
    return raw, io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="\n")


@pytest.mark.parametrize(
    ("encoding", "text", "shown"),
    [("utf-8", "caf\udce9.yaml", "caf\\udce9.yaml"), ("ascii", "café.yaml", "caf\\xe9.yaml")],
)
def test_internal_error_message_is_printed_escaped(
    monkeypatch: pytest.MonkeyPatch, encoding: str, text: str, shown: str
) -> None:
    def broken(argv: object) -> int:
        raise RuntimeError(f"cannot read {text}")

    monkeypatch.delenv("POLICYROUTE_TRACEBACK", raising=False)
    monkeypatch.setattr(cli, "_main", broken)
    raw, stream = _strict(encoding)
    monkeypatch.setattr(sys, "stderr", stream)
    assert main(["validate", "x.yaml"]) == INTERNAL_ERROR
    assert stream.errors == "strict"  # put back once main returns
    stream.flush()
    assert f"internal error: RuntimeError: cannot read {shown}" in raw.getvalue().decode()


def test_streams_are_put_back_after_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(argv: object) -> int:
        raise argparse.ArgumentTypeError("boom")

    monkeypatch.delenv("POLICYROUTE_TRACEBACK", raising=False)
    monkeypatch.setattr(cli, "_main", broken)
    _, out = _strict("utf-8")
    _, err = _strict("utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main([]) == INTERNAL_ERROR
    assert (out.errors, err.errors) == ("strict", "strict")
