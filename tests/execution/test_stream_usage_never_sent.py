"""An OpenAI-format stream cut before its usage chunk (asked for with
``stream_options.include_usage``, sent last) is charged the prompt and the text received,
counted locally with litellm's token counter: through ``policyroute.acompletion`` and a
policy file, as a user meets it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest
from exec_support import arun

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import PolicyRouteError, StreamInterruptedError
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: usage-never-sent
models:
  a:
    model: openai/cut-a
    api_base: {base}
    api_key: ${{NEVER_SENT_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: memory}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes:
  - name: default
    to: a
defaults:
  max_tokens: 64
  retry: {{attempts: 0}}
"""
MESSAGES = [{"role": "user", "content": "tell me a long story about a lighthouse keeper"}]
TEXT = "one two three four five six seven eight"
INPUT_RATE = Decimal(1000) / 1_000_000
OUTPUT_RATE = Decimal(2000) / 1_000_000


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # the policy's receipt path is relative to the cwd
    monkeypatch.setenv("NEVER_SENT_TEST_KEY", "sk-test")
    yield tmp_path
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _policy(workdir: Path, fp: FakeProvider) -> Path:
    path = workdir / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base))
    return path


def _receipts(workdir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (workdir / "receipts.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _charged(receipt: dict[str, Any], tokens_in: int, tokens_out: int) -> None:
    cost = tokens_in * INPUT_RATE + tokens_out * OUTPUT_RATE
    assert receipt["provider_billed"] is True
    assert (receipt["input_tokens"], receipt["output_tokens"]) == (tokens_in, tokens_out)
    assert Decimal(receipt["cost"]) == cost.quantize(Decimal("1e-6"))
    (budget,) = receipt["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (Decimal(receipt["cost"]), 0)


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
    assert info.value.partial_usage == {}
    partial = info.value.partial_text
    assert partial
    assert partial != TEXT
    (attempt,) = _receipts(workdir, "attempt")
    assert attempt["status"] == "interrupted"
    tokens_in = litellm.token_counter(model="openai/cut-a", messages=MESSAGES)
    tokens_out = litellm.token_counter(model="openai/cut-a", text=partial)
    assert tokens_in > 10
    assert tokens_out > 0
    _charged(attempt, tokens_in, tokens_out)
    assert attempt["usage_estimated"] is True
    (call,) = _receipts(workdir, "call")
    assert call["usage_estimated"] is True


def test_stream_cut_before_content_is_charged_the_prompt_counted_locally(
    fp: FakeProvider, workdir: Path
) -> None:
    # Only the role chunk came: the provider had read the prompt.
    fp.script("cut-a", Fault.stream_cut(after=1, reply=Reply(text=TEXT)))
    policy = _policy(workdir, fp)

    with pytest.raises(PolicyRouteError):
        policyroute.completion(policy=policy, messages=MESSAGES, stream=True)

    (attempt,) = _receipts(workdir, "attempt")
    assert attempt["status"] == "error"
    from policyroute.costs.estimate import count_input_tokens

    _charged(attempt, count_input_tokens("openai/cut-a", MESSAGES, None), 0)
    assert attempt["usage_estimated"] is True


def test_a_stream_with_its_usage_chunk_is_not_marked_estimated(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script("cut-a", Reply(text=TEXT))
    policy = _policy(workdir, fp)

    for _ in policyroute.completion(policy=policy, messages=MESSAGES, stream=True):
        pass

    (attempt,) = _receipts(workdir, "attempt")
    (call,) = _receipts(workdir, "call")
    assert attempt["status"] == "ok"
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (False, False)
