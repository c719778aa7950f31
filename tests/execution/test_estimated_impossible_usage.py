"""Usage no provider can mean (negative counts, counts past 10^10) is replaced by tokens
counted locally, and the receipt says ``usage_estimated``: through ``policyroute.completion``
and ``policyroute.acompletion`` with a policy file, as a user meets it.

(NaN never gets this far: litellm refuses a body carrying it as an invalid response.)
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
from policyroute.costs.estimate import count_input_tokens
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MODEL = "openai/odd-counts"
POLICY = """
policyroute: 1
name: impossible-usage
models:
  a:
    model: {model}
    api_base: {base}
    api_key: ${{IMPOSSIBLE_USAGE_TEST_KEY}}
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
MESSAGES = [{"role": "user", "content": "count the lighthouses on this coast, please"}]
TEXT = "there are seven of them"
INPUT_RATE = Decimal(1000) / 1_000_000
OUTPUT_RATE = Decimal(2000) / 1_000_000
IMPOSSIBLE = [
    pytest.param((-5, 3), id="negative-input"),
    pytest.param((40, -1), id="negative-output"),
    pytest.param((10**11, 3), id="past-1e10"),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # the policy's receipt path is relative to the cwd
    monkeypatch.setenv("IMPOSSIBLE_USAGE_TEST_KEY", "sk-test")
    yield tmp_path
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _policy(workdir: Path, fp: FakeProvider) -> Path:
    path = workdir / "policy.yaml"
    path.write_text(POLICY.format(model=MODEL, base=fp.openai_base))
    return path


def _receipts(workdir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (workdir / "receipts.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _usage(counts: tuple[int, int]) -> dict[str, int]:
    return {
        "prompt_tokens": counts[0],
        "completion_tokens": counts[1],
        "total_tokens": sum(counts),
    }


def _assert_counted_locally(workdir: Path) -> None:
    (attempt,) = _receipts(workdir, "attempt")
    (call,) = _receipts(workdir, "call")
    assert attempt["status"] == "ok"
    tokens_in = count_input_tokens(MODEL, MESSAGES, None)
    tokens_out = litellm.token_counter(model=MODEL, text=TEXT)
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (tokens_in, tokens_out)
    cost = (tokens_in * INPUT_RATE + tokens_out * OUTPUT_RATE).quantize(Decimal("1e-6"))
    assert Decimal(attempt["cost"]) == cost
    (budget,) = attempt["budgets"]
    assert Decimal(budget["spent"]) == cost
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (True, True)


@pytest.mark.parametrize("counts", IMPOSSIBLE)
def test_an_answer_with_impossible_usage_is_counted_locally_and_marked(
    fp: FakeProvider, workdir: Path, counts: tuple[int, int]
) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "odd-counts",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(counts),
    }
    fp.script("odd-counts", Fault.raw(json.dumps(body)))

    response = policyroute.completion(policy=_policy(workdir, fp), messages=MESSAGES)

    assert response.choices[0].message.content == TEXT
    _assert_counted_locally(workdir)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "odd-counts",
        "choices": [choice],
    }


@pytest.mark.parametrize("counts", IMPOSSIBLE)
def test_a_stream_whose_usage_chunk_is_impossible_is_counted_locally_and_marked(
    fp: FakeProvider, workdir: Path, counts: tuple[int, int]
) -> None:
    events = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": TEXT})]
    events.append(_chunk({}, "stop"))
    events.append({**_chunk({}), "choices": [], "usage": _usage(counts)})
    fp.script("odd-counts", Fault.raw_stream(*map(json.dumps, events), done=True))

    async def consume() -> str:
        stream = await policyroute.acompletion(
            policy=_policy(workdir, fp), messages=MESSAGES, stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert arun(consume()) == TEXT
    _assert_counted_locally(workdir)


def test_sound_usage_is_not_marked(fp: FakeProvider, workdir: Path) -> None:
    fp.script("odd-counts", Reply(text=TEXT, usage=Usage(30, 6)))

    policyroute.completion(policy=_policy(workdir, fp), messages=MESSAGES)

    (attempt,) = _receipts(workdir, "attempt")
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (30, 6)
    assert attempt["usage_estimated"] is False
