"""An OpenAI-format stream cut before its usage chunk (asked for with
``stream_options.include_usage``, sent last) is charged the prompt and the text received,
counted locally with litellm's token counter: through ``policyroute.acompletion`` and a
policy file, as a user meets it.
"""

from __future__ import annotations

from pathlib import Path

import litellm
import pytest
from billing_support import assert_charged, ok_receipts, policy_file, policy_text, receipts
from exec_support import arun

import policyroute
from policyroute.errors import PolicyRouteError, StreamInterruptedError
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "tell me a long story about a lighthouse keeper"}]
TEXT = "one two three four five six seven eight"


def _policy(workdir: Path, fp: FakeProvider) -> Path:
    text = policy_text(fp.openai_base, model="openai/cut-a", name="usage-never-sent", receipts=True)
    return policy_file(workdir, text)


def test_stream_cut_midway_is_charged_the_prompt_and_text_counted_locally(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script("cut-a", Fault.stream_cut(after=4, reply=Reply(text=TEXT)))
    policy = _policy(workdir, fp)

    async def consume() -> None:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    with pytest.raises(StreamInterruptedError) as info:
        arun(consume())

    # The usage chunk was asked for and never came.
    (request,) = fp.requests_for("cut-a")
    assert request.body["stream_options"] == {"include_usage": True}
    partial = info.value.partial_text
    assert partial
    assert partial != TEXT
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == "interrupted"
    from policyroute.costs.estimate import count_input_tokens

    # The prompt as the budget's estimate counts it, as for a stream cut before content.
    tokens_in = count_input_tokens("openai/cut-a", MESSAGES, None)
    tokens_out = litellm.token_counter(model="openai/cut-a", text=partial)
    assert tokens_in > 10
    assert tokens_out > 0
    assert_charged(attempt, tokens_in, tokens_out)
    assert attempt["usage_estimated"] is True
    # The error tells the caller the same counts the receipt charged, marked as counted.
    assert info.value.partial_usage == {"input_tokens": tokens_in, "output_tokens": tokens_out}
    assert info.value.usage_estimated is True
    (call,) = receipts(workdir, "call")
    assert call["usage_estimated"] is True


def test_stream_cut_before_content_is_charged_the_prompt_counted_locally(
    fp: FakeProvider, workdir: Path
) -> None:
    # Only the role chunk came: the provider had read the prompt.
    fp.script("cut-a", Fault.stream_cut(after=1, reply=Reply(text=TEXT)))
    policy = _policy(workdir, fp)

    with pytest.raises(PolicyRouteError):
        policyroute.completion(policy=policy, messages=MESSAGES, stream=True)

    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == "error"
    from policyroute.costs.estimate import count_input_tokens

    assert_charged(attempt, count_input_tokens("openai/cut-a", MESSAGES, None), 0)
    assert attempt["usage_estimated"] is True


def test_a_stream_with_its_usage_chunk_is_not_marked_estimated(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script("cut-a", Reply(text=TEXT))
    policy = _policy(workdir, fp)

    for _ in policyroute.completion(policy=policy, messages=MESSAGES, stream=True):
        pass

    attempt, call = ok_receipts(workdir)
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (False, False)
