"""A stream the provider accepted and that is cut before any usage reached policyroute is
charged the prompt, counted locally and marked estimated, never settled as free.

The provider answered 200 and was processing the input when the connection dropped, a
deadline passed or the caller went away; the event that would have told its usage (OpenAI's
role chunk, Anthropic's ``message_start``) may have been lost with the cut itself. A stream
the provider refused (an error status) or never answered, and a body that is no stream at
all, stay free. Through ``policyroute.completion`` / ``acompletion`` and ``ChatPolicyRoute``
with a policy file, as a user meets it, for OpenAI- and Anthropic-format deployments.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from billing_support import CLAUDE, assert_charged, policy_file, policy_text, receipts
from exec_support import arun
from langchain_core.messages import HumanMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.costs.estimate import ANTHROPIC_TOOL_PROMPT_TOKENS, count_input_tokens
from policyroute.errors import PolicyRouteError
from policyroute.testing import FakeProvider, Fault, Reply, Step

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "tell me a long story about a lighthouse keeper"}]
TEXT = "one two three four five"
# The same deployment name answers in either format; the policy prices it (1000/2000 per
# million tokens) so that the charge is exactly the tokens counted times the input rate.
FORMATS = {"openai": "openai/cut-a", "anthropic": f"anthropic/{CLAUDE}"}


def _policy(workdir: Path, fp: FakeProvider, model: str, first_token: str | None = None) -> Path:
    base = fp.anthropic_base if model.startswith("anthropic/") else fp.openai_base
    text = policy_text(
        base, model=model, name="cut-before-usage", receipts=True, first_token=first_token
    )
    return policy_file(workdir, text)


def _script(fp: FakeProvider, model: str, step: Step) -> None:
    fp.script(model.split("/", 1)[1], step)


def _consume(policy: Path, mode: str) -> None:
    if mode == "sync":
        for _ in policyroute.completion(policy=policy, messages=MESSAGES, stream=True):
            pass
        return

    async def main() -> None:
        if mode == "langchain":
            llm = ChatPolicyRoute(policy=policy)
            async for _ in llm.astream([HumanMessage(MESSAGES[0]["content"])]):
                pass
            return
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    arun(main())


def _failed_stream(
    fp: FakeProvider,
    workdir: Path,
    model: str,
    step: Step,
    mode: str = "async",
    first_token: str | None = None,
) -> PolicyRouteError:
    """Script ``step`` for ``model``, stream a call through a policy file in ``mode``, and
    return the error it must raise."""
    _script(fp, model, step)
    policy = _policy(workdir, fp, model, first_token)
    with pytest.raises(PolicyRouteError) as info:
        _consume(policy, mode)
    return info.value


def _assert_input_estimated(workdir: Path, model: str, status: str) -> dict[str, Any]:
    """One attempt, charged the prompt as counted locally (as budget estimates count it) and
    nothing more, marked estimated on its receipt and its call's."""
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == status
    assert_charged(attempt, count_input_tokens(model, MESSAGES, None), 0)
    assert Decimal(attempt["cost"]) > 0
    assert attempt["usage_estimated"] is True
    assert (attempt["cache_read_tokens"], attempt["cache_write_tokens"]) == (0, 0)
    (call,) = receipts(workdir, "call")
    assert (call["cost"], call["usage_estimated"]) == (attempt["cost"], True)
    assert call["input_tokens"] == attempt["input_tokens"]
    return attempt


@pytest.mark.parametrize("mode", ["async", "sync", "langchain"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_stream_cut_after_the_headers_is_charged_its_input_estimated(
    fp: FakeProvider, workdir: Path, fmt: str, mode: str
) -> None:
    model = FORMATS[fmt]
    cut = Fault.stream_cut(after=0, reply=Reply(text=TEXT))

    error = _failed_stream(fp, workdir, model, cut, mode)

    assert getattr(error, "error_class", None) == "connection"
    attempt = _assert_input_estimated(workdir, model, "error")
    assert attempt["error_class"] == "connection"


def test_openai_stream_cut_after_its_first_chunk_is_charged_its_input_estimated(
    fp: FakeProvider, workdir: Path
) -> None:
    # The role chunk came (or was lost with the cut, which aiohttp may do): either way the
    # provider accepted the prompt, and no usage chunk ever came.
    model = FORMATS["openai"]

    _failed_stream(fp, workdir, model, Fault.stream_cut(after=1, reply=Reply(text=TEXT)))

    _assert_input_estimated(workdir, model, "error")


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_stream_stalled_after_the_headers_is_charged_its_input_estimated(
    fp: FakeProvider, workdir: Path, mode: str
) -> None:
    model = FORMATS["anthropic"]
    stall = Fault.stall(after=0, reply=Reply(text=TEXT), timeout=5)

    error = _failed_stream(fp, workdir, model, stall, mode, first_token="0.3s")

    assert getattr(error, "error_class", None) == "timeout"
    _assert_input_estimated(workdir, model, "error")


def test_stream_abandoned_after_the_headers_is_charged_its_input_estimated(
    fp: FakeProvider, workdir: Path
) -> None:
    model = FORMATS["openai"]
    _script(fp, model, Fault.stall(after=0, reply=Reply(text=TEXT), timeout=5))
    policy = _policy(workdir, fp, model)

    async def main() -> None:
        consumer = asyncio.ensure_future(_acompletion_drained(policy))
        while not fp.requests_for("cut-a"):  # a first call spends a while importing
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the provider answered 200, then nothing
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer

    arun(main())
    _assert_input_estimated(workdir, model, "cancelled")


async def _acompletion_drained(policy: Path) -> None:
    stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
    async for _ in stream:
        pass


@pytest.mark.parametrize(
    "refusal",
    [Fault.status(503), Fault.connection_reset(), Fault.raw_stream()],
    ids=["error-status", "connection-reset", "empty-body"],
)
def test_stream_the_provider_refused_or_never_answered_is_free(
    fp: FakeProvider, workdir: Path, refusal: Step
) -> None:
    _failed_stream(fp, workdir, FORMATS["openai"], refusal)

    (attempt,) = receipts(workdir, "attempt")
    assert (attempt["provider_billed"], Decimal(attempt["cost"])) == (False, 0)
    assert attempt["input_tokens"] == 0
    (budget,) = attempt["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (0, 0)


def test_a_cut_stream_offering_tools_is_charged_the_whole_prompt_it_sent(
    fp: FakeProvider, workdir: Path
) -> None:
    # The provider bills the tools and the tool-use system prompt it adds as input too, not
    # the messages alone: the estimate counts what the budget reserved for.
    model = FORMATS["anthropic"]
    _script(fp, model, Fault.stream_cut(after=0, reply=Reply(text=TEXT)))
    policy = _policy(workdir, fp, model)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_lighthouse",
                "description": "Find a lighthouse by the name of its keeper",
                "parameters": {
                    "type": "object",
                    "properties": {"keeper": {"type": "string"}},
                    "required": ["keeper"],
                },
            },
        }
    ]

    async def main() -> None:
        stream = await policyroute.acompletion(
            policy=policy, messages=MESSAGES, tools=tools, stream=True
        )
        async for _ in stream:
            pass

    with pytest.raises(PolicyRouteError):
        arun(main())

    (attempt,) = receipts(workdir, "attempt")
    sent = count_input_tokens(model, MESSAGES, tools) + ANTHROPIC_TOOL_PROMPT_TOKENS
    assert sent > count_input_tokens(model, MESSAGES, None) + ANTHROPIC_TOOL_PROMPT_TOKENS
    assert_charged(attempt, sent, 0)
    assert attempt["usage_estimated"] is True
