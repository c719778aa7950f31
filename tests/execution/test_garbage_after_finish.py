"""Garbage that arrives after the provider finished its answer (a usage chunk of the wrong
shape, an event that is not JSON) costs the answer nothing: the caller gets it whole, and the
tokens are counted locally so the attempt is still billed."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from garbage_support import STREAMING, call, chunk

from policyroute.errors import StreamInterruptedError
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

AFTER_FINISH = {
    "usage-strings": chunk(
        {}, choices=False, usage={"prompt_tokens": "5", "completion_tokens": "abc"}
    ),
    "usage-list": chunk({}, choices=False, usage=[1, 2]),
    "not-json": "<html>proxy error</html>",
}


@pytest.fixture(autouse=True)
def _litellm_usage_warnings() -> Iterator[None]:
    # litellm's pydantic models warn while serialising usage of the wrong type.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Pydantic serializer warnings", UserWarning)
        yield


@pytest.mark.parametrize("mode", STREAMING)
@pytest.mark.parametrize("garbage", list(AFTER_FINISH))
def test_garbage_after_the_finish_reason_keeps_the_answer(
    fp: FakeProvider, tmp_path: Path, mode: str, garbage: str
) -> None:
    fp.script(
        "a",
        Fault.raw_stream(
            chunk({"role": "assistant", "content": "hi there"}),
            chunk({}, finish="stop"),
            AFTER_FINISH[garbage],
            done=True,
        ),
    )
    seen = call(fp, tmp_path, mode)
    assert seen.error is None, seen.error
    assert seen.text == "hi there"
    assert seen.attempt_summary == [("a", "ok", None)]
    assert seen.call_summary == [("ok", None)]
    (receipt,) = seen.attempts
    assert receipt["input_tokens"] > 0
    assert receipt["output_tokens"] > 0
    assert seen.spent > 0
    assert seen.reserved == 0


# Events each wire sends up to and including the one that finishes the answer, for "hi there":
# OpenAI role, two content chunks, the finish chunk; Anthropic message_start,
# content_block_start, ping, two deltas, content_block_stop, message_delta.
THROUGH_FINISH = {"openai": 4, "anthropic": 7}


@pytest.mark.parametrize("mode", STREAMING)
@pytest.mark.parametrize("wire", list(THROUGH_FINISH))
@pytest.mark.parametrize("fault", ["malformed", "stall"])
def test_a_fault_after_the_finish_keeps_the_answer_on_either_wire(
    fp: FakeProvider, tmp_path: Path, mode: str, wire: str, fault: str
) -> None:
    after = THROUGH_FINISH[wire]
    reply = Reply(text="hi there")
    step = (
        Fault.malformed_chunk(after, reply)
        if fault == "malformed"
        else Fault.stall(after, reply, timeout=5)
    )
    fp.script("a", step)
    seen = call(fp, tmp_path, mode, wire=wire, idle="0.5s")
    assert seen.error is None, seen.error
    assert seen.text == "hi there"
    assert seen.attempt_summary == [("a", "ok", None)]
    (receipt,) = seen.attempts
    assert receipt["output_tokens"] > 0
    assert seen.spent > 0
    assert seen.reserved == 0


@pytest.mark.parametrize("mode", STREAMING)
@pytest.mark.parametrize("wire", list(THROUGH_FINISH))
def test_a_fault_before_the_finish_still_interrupts_the_stream(
    fp: FakeProvider, tmp_path: Path, mode: str, wire: str
) -> None:
    # One event short of the finish: the answer may be truncated, so it is not passed off
    # as complete.
    fp.script("a", Fault.malformed_chunk(THROUGH_FINISH[wire] - 1, Reply(text="hi there")))
    seen = call(fp, tmp_path, mode, wire=wire)
    assert isinstance(seen.error, StreamInterruptedError), seen.error
    assert seen.attempt_summary == [("a", "interrupted", "malformed_response")]
    assert seen.reserved == 0
