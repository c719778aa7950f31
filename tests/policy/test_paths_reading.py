"""Reading a policy file is bounded, and a pipe is read once, whoever loads it.

``load_policy``, ``ChatPolicyRoute(policy=...)`` and ``validate_file`` read at most
``MAX_FILE_BYTES`` (2 MiB): an endless pipe (``<(yes)``), ``/dev/zero`` or a multi-gigabyte file
costs that much memory and is then refused with the limit named.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyroute._files import file_version, read_at_most
from policyroute.errors import PolicyValidationError
from policyroute.policy.loader import load_policy
from policyroute.policy.validate import MAX_FILE_BYTES, validate_file

POLICIES = Path(__file__).resolve().parent.parent / "policies"
MINIMAL = (POLICIES / "valid" / "minimal.yaml").read_text(encoding="utf-8")
LIMIT_MESSAGE = (
    "the policy file is more than 2,097,152 bytes long; a policy has at most 524,288 characters"
)

needs_dev_fd = pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")


class Pipe:
    """``/dev/fd/N`` of a pipe a thread feeds: ``data`` once, or ``y\\n`` without end (up to
    64 MiB, so that a reader with no bound ends too). ``written`` counts the bytes sent."""

    def __init__(self, data: bytes | None) -> None:
        self.read_end, self._write_end = os.pipe()
        self.name = f"/dev/fd/{self.read_end}"
        self.written = 0
        self._data = data
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        try:
            if self._data is not None:
                self.written = os.write(self._write_end, self._data)
                return
            chunk = b"y\n" * 32768
            while self.written < 64 * 1024 * 1024:
                self.written += os.write(self._write_end, chunk)
        except BrokenPipeError:
            pass
        finally:
            os.close(self._write_end)

    def close(self) -> None:
        os.close(self.read_end)
        self._thread.join(10)


@pytest.fixture
def pipe() -> Iterator[type[Pipe]]:
    made: list[Pipe] = []

    class Made(Pipe):
        def __init__(self, data: bytes | None) -> None:
            super().__init__(data)
            made.append(self)

    yield Made
    for each in made:
        each.close()


@needs_dev_fd
def test_load_policy_refuses_an_endless_pipe_after_the_limit(pipe: type[Pipe]) -> None:
    endless = pipe(None)

    with pytest.raises(PolicyValidationError) as caught:
        load_policy(endless.name)

    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.message) == ("PR009", LIMIT_MESSAGE)
    assert endless.written < 2 * MAX_FILE_BYTES


@needs_dev_fd
def test_a_chat_model_loads_its_policy_from_a_pipe(pipe: type[Pipe]) -> None:
    from policyroute.langchain import ChatPolicyRoute

    fed = pipe(MINIMAL.encode())

    model = ChatPolicyRoute(policy=fed.name)

    assert model.compiled_policy.name == "minimal"


@needs_dev_fd
def test_a_chat_model_on_an_endless_pipe_is_refused_after_the_limit(pipe: type[Pipe]) -> None:
    from policyroute.langchain import ChatPolicyRoute

    endless = pipe(None)

    with pytest.raises(PolicyValidationError, match="more than 2,097,152 bytes"):
        ChatPolicyRoute(policy=endless.name)
    # A policy that fails is not cached, and the model's validators (profile, then policy)
    # each try to load it: two bounded reads, far short of the 64 MiB on offer.
    assert endless.written < 4 * MAX_FILE_BYTES


def test_a_chat_model_on_an_oversized_file_names_the_limit(tmp_path: Path) -> None:
    from policyroute.langchain import ChatPolicyRoute

    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(3 * 1024 * 1024)  # sparse: three megabytes of zeros, written in no time

    with pytest.raises(PolicyValidationError) as caught:
        ChatPolicyRoute(policy=str(big))

    assert [d.message for d in caught.value.diagnostics] == [LIMIT_MESSAGE]


def test_a_device_is_read_no_further_than_the_limit() -> None:
    result = validate_file("/dev/zero")

    (diagnostic,) = result.diagnostics
    assert (diagnostic.code, diagnostic.message) == ("PR009", LIMIT_MESSAGE)
    assert diagnostic.hint == "is this the right file?"


def test_a_file_at_the_limit_is_read_whole(tmp_path: Path) -> None:
    # Past the character limit, but within the byte limit: the parser's own check answers.
    at_limit = tmp_path / "at-limit.yaml"
    at_limit.write_bytes(b"#" * MAX_FILE_BYTES)

    (diagnostic,) = validate_file(at_limit).diagnostics

    assert diagnostic.message.startswith("the policy is 2,097,152 characters long")


def test_read_at_most_reads_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "ten"
    path.write_bytes(b"0123456789")

    assert read_at_most(path, 4) == b"01234"
    assert read_at_most(path, 10) == b"0123456789"
    with pytest.raises(FileNotFoundError):
        read_at_most(tmp_path / "missing", 4)


@needs_dev_fd
def test_a_pipe_or_device_has_no_file_version(pipe: type[Pipe], tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL, encoding="utf-8")

    assert file_version(path) is not None
    assert file_version(pipe(b"").name) is None
    assert file_version(os.devnull) is None
    assert file_version(tmp_path) is None
