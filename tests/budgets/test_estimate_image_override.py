"""A policy states what one image costs on a model policyroute does not recognise.

An unrecognised model is charged the largest image ceiling of every known family (48,169
tokens, gpt-4o-mini's), which refuses image calls to a self-hosted vision model that any
realistic budget could afford. ``max_image_tokens`` on the model replaces the family's bound
for every image, and no image is charged more than the model's input window.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import policyroute
from budgets.helpers import candidate
from policyroute.costs.estimate import worst_case
from policyroute.costs.image_families import UNKNOWN
from policyroute.errors import BudgetExceeded
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply, Usage

URLS = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare."},
            *(
                {"type": "image_url", "image_url": {"url": f"https://example.com/{i}.png"}}
                for i in range(3)
            ),
        ],
    }
]
TEXT = [{"role": "user", "content": "Compare."}]


def _input(**spec: Any) -> int:
    return worst_case(
        Request(messages=URLS),
        candidate("local", "hosted_vllm/llava-next", **spec),
        {"max_tokens": 1},
        default_max_tokens=None,
    ).input_tokens


def _text(**spec: Any) -> int:
    return worst_case(
        Request(messages=TEXT),
        candidate("local", "hosted_vllm/llava-next", **spec),
        {"max_tokens": 1},
        default_max_tokens=None,
    ).input_tokens


def test_max_image_tokens_replaces_the_unknown_ceiling() -> None:
    assert _input() - _text() == 3 * UNKNOWN.tokens(None)
    assert _input(max_image_tokens=1_200) - _text(max_image_tokens=1_200) == 3 * 1_200


def test_no_image_is_charged_more_than_the_input_window() -> None:
    assert _input(context_window=8_192) - _text(context_window=8_192) == 3 * 8_192


def test_the_field_is_read_from_the_policy() -> None:
    policy = load_policy_text(POLICY.format(base="http://127.0.0.1:9", limit="1"))
    assert policy.spec.models["local"].max_image_tokens == 1_500


POLICY = """
policyroute: 1
name: local-vision
models:
  local:
    model: hosted_vllm/llava-next
    api_base: {base}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
    capabilities: {{vision: true}}
    max_image_tokens: 1500
routes:
  - name: default
    to: local
budgets:
  - name: per-call
    limit_usd: {limit}
    window: call
store: {{backend: memory}}
receipts: {{sink: none}}
"""


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="Alike.", usage=Usage(prompt=4_000, completion=10)))
        yield fp


def test_a_budget_admits_images_at_the_stated_cost(provider: FakeProvider) -> None:
    # Three images at 1,500 plus text and 100 output at $1/M: under $0.005. At the unknown
    # ceiling, 3 x 48,169 tokens, the same call was refused.
    policy = load_policy_text(POLICY.format(base=provider.openai_base, limit="0.005"))
    answer = policyroute.completion(policy=policy, messages=URLS, max_tokens=100)
    assert answer.choices[0].message.content == "Alike."
    unstated = load_policy_text(
        POLICY.format(base=provider.openai_base, limit="0.005").replace(
            "    max_image_tokens: 1500\n", ""
        )
    )
    with pytest.raises(BudgetExceeded):
        policyroute.completion(policy=unstated, messages=URLS, max_tokens=100)
    assert len(provider.requests) == 1
