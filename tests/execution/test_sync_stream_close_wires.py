"""A sync stream closed early closes its HTTP response itself, on every wire.

OpenAI's stream object has a ``close()``; litellm's own iterators (Anthropic's, and most
providers') do not, and their response was left to the garbage collector. A collection runs
wherever an allocation happens to trigger it: inside httpcore's pool lock, in a later request
of the same thread on the same client (litellm shares one sync client for every Anthropic
call), closing that response takes the lock again and the thread waits for itself for ever.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from exec_support import StubPolicy, ask, candidate

from policyroute.execution.executor import Executor, StreamDelta
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The garbage collector off: only the stream's own close can close its response."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_collector")
@pytest.mark.parametrize("api", sorted(MODELS))
def test_a_stream_closed_after_its_first_delta_closes_its_connection(
    fp: FakeProvider, api: str
) -> None:
    # Long enough that the answer is still being read when the stream is closed.
    fp.set_default("*", Reply(text=" ".join(["word"] * 2000)))
    base = fp.anthropic_base if api == "anthropic" else fp.openai_base
    executor = Executor(StubPolicy([candidate("a", base, model=MODELS[api])]))
    stream = executor.stream(ask())
    for event in stream:
        if isinstance(event, StreamDelta):
            break
    stream.close()
    fp.wait_for_connections(0, timeout=10)
