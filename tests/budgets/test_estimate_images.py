"""The worst case bounds images by what their provider bills, not litellm's 250 tokens.

litellm's counter, told not to fetch image URLs, counts every image as 250 tokens. gpt-4o
bills a 2048 x 768 image at 1,445 tokens at ``detail: high``, so four of them passed a budget
at 1,000 tokens that the provider billed at 5,780.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import policyroute
from budgets.helpers import candidate
from policyroute._lazy import import_litellm
from policyroute.costs.estimate import count_input_tokens, worst_case
from policyroute.costs.image_families import UNKNOWN, image_family
from policyroute.errors import BudgetExceeded
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply, Usage

D = Decimal


def png_url(width: int, height: int) -> str:
    """A data URL whose PNG header gives the size (the pixels are never read)."""
    ihdr = struct.pack(">II", width, height) + bytes([8, 6, 0, 0, 0])
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + bytes(64)
    return "data:image/png;base64," + base64.b64encode(data).decode()


def ask(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "Describe."}, *parts]}]


def image(url: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if detail is not None:
        body["detail"] = detail
    return {"type": "image_url", "image_url": body}


def text_only(model: str) -> int:
    return count_input_tokens(model, ask(), None)


def litellm_default(messages: list[dict[str, Any]]) -> int:
    return int(
        import_litellm().token_counter(
            model="gpt-4o", messages=messages, use_default_image_token_count=True
        )
    )


# ---------------------------------------------------------------- documented bills, per family


@pytest.mark.parametrize(
    ("model", "size", "detail", "billed"),
    [
        # OpenAI's vision guide: 1024 x 1024 high is 765; 2048 x 4096 high is 1,105; low is 85.
        ("openai/gpt-4o", (1024, 1024), "high", 765),
        ("openai/gpt-4o", (2048, 4096), "high", 1105),
        ("openai/gpt-4o", (4096, 8192), "low", 85),
        ("openai/gpt-4o", (512, 512), None, 255),
        ("gpt-4o-mini", (1024, 1024), "high", 2833 + 4 * 5667),
        ("gpt-4o-mini", (1024, 1024), "low", 2833),
        ("o3", (1024, 1024), "high", 75 + 4 * 150),
        # Patches: 1024 x 1024 is 1,024 patches; times 1.62 for 4.1-mini; low changes nothing.
        ("gpt-4.1-mini", (1024, 1024), "low", 1659),
        ("gpt-4.1-nano", (1800, 2400), "high", 3779),  # above 1,536 patches: the cap
        # Claude: 1000 x 1000 / 750; 200 x 200 is 54 in Anthropic's table.
        ("anthropic/claude-sonnet-4-5-20250929", (1000, 1000), None, 1334),
        ("anthropic/claude-sonnet-4-5-20250929", (200, 200), None, 54),
        # Gemini 2.x: one tile up to 384 x 384; 1024 x 1024 makes 682 px crops, 2 x 2 of them.
        ("gemini/gemini-2.5-flash", (384, 384), None, 258),
        ("gemini/gemini-2.5-flash", (1024, 1024), None, 4 * 258),
    ],
)
def test_a_readable_image_is_charged_its_documented_bill(
    model: str, size: tuple[int, int], detail: str | None, billed: int
) -> None:
    messages = ask(image(png_url(*size), detail))
    assert count_input_tokens(model, messages, None) - text_only(model) == billed


@pytest.mark.parametrize(
    ("model", "ceiling"),
    [
        ("openai/gpt-4o", 1445),  # 85 + 8 tiles of 170 (2048 x 768)
        ("gpt-4.1-mini", 2489),  # 1,536 patches x 1.62
        ("claude-3-5-sonnet-20241022", 1700),
        ("anthropic/claude-opus-4-7", 5000),  # 3.75 MP / 750
        ("gemini/gemini-2.0-flash", 6192),  # 24 crops of 258
        ("vertex_ai/gemini-3-pro-preview", 2240),  # ultra high resolution
    ],
)
def test_a_url_is_charged_its_family_ceiling(model: str, ceiling: int) -> None:
    messages = ask(image("https://example.com/cat.png", "high"))
    assert count_input_tokens(model, messages, None) - text_only(model) == ceiling


def test_the_ceiling_bounds_every_size_it_stands_for() -> None:
    sizes = [
        (w, h)
        for w in (1, 257, 384, 385, 767, 1092, 1568, 2048, 3072, 9000)
        for h in (1, 256, 383, 768, 1000, 2049, 2817, 4096, 8000)
    ]
    for model in (
        "gpt-4o",
        "gpt-4o-mini",
        "o4-mini",
        "gpt-5",
        "claude-opus-4-1",
        "claude-opus-4-8",
        "gemini-2.5-pro",
        "gemini-3-flash",
        "custom/x",
    ):
        family = image_family(model)
        for size in sizes:
            assert family.tokens(size, "high") <= family.tokens(None, "high"), (model, size)
            assert family.tokens(size, "high") <= UNKNOWN.tokens(None), (model, size)


def test_detail_low_is_a_fixed_85_for_4o_whatever_the_source() -> None:
    for url in (png_url(4096, 4096), "https://example.com/a.png", "data:image/png;base64,AAAA"):
        messages = ask(image(url, "low"))
        assert count_input_tokens("gpt-4o", messages, None) - text_only("gpt-4o") == 85


def test_an_unreadable_header_falls_back_to_the_ceiling() -> None:
    heic = "data:image/heic;base64," + base64.b64encode(b"\0\0\0\x18ftypheic" + bytes(40)).decode()
    messages = ask(image(heic))
    assert count_input_tokens("gpt-4o", messages, None) - text_only("gpt-4o") == 1445


def test_an_unknown_family_takes_the_largest_known_ceiling() -> None:
    messages = ask(image("https://example.com/a.png"))
    extra = count_input_tokens("hosted_vllm/llava-next", messages, None) - text_only("gpt-4o")
    assert extra == 2833 + 8 * 5667 == UNKNOWN.tokens(None)
    # A provider whose families are known bounds an unknown name by those alone.
    assert image_family("anthropic/some-new-claude-proxy").tokens(None) == 5000
    assert image_family("azure/my-deployment").tokens(None) == UNKNOWN.tokens(None)


def test_anthropic_langchain_and_tool_result_images_are_bounded_too() -> None:
    data = png_url(2000, 1500).partition(",")[2]
    blocks = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "image", "base64": data, "mime_type": "image/png"},  # LangChain v1
        {"type": "image", "source_type": "base64", "data": data, "mime_type": "image/png"},
        {"type": "file", "file": {"file_data": "data:image/png;base64," + data}},
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}
            ],
        },
    ]
    model = "anthropic/claude-sonnet-4-5-20250929"
    # 2000 x 1500 fits 1568 x 1176: 2,459 tokens, over the ceiling: 1,700 each; the URL too.
    assert count_input_tokens(model, ask(*blocks), None) - text_only(model) >= 5 * 1700 - 10


def test_worst_case_uses_the_deployments_family() -> None:
    messages = ask(image(png_url(2048, 768), "high"))
    request = Request(messages=messages)
    gpt = worst_case(
        request, candidate("g", "openai/gpt-4o"), {"max_tokens": 1}, default_max_tokens=None
    )
    claude = worst_case(
        request,
        candidate("c", "anthropic/claude-3-7-sonnet"),
        {"max_tokens": 1},
        default_max_tokens=None,
    )
    gemini = worst_case(
        request,
        candidate("v", "custom/flash", params={"custom_llm_provider": "gemini"}),
        {"max_tokens": 1},
        default_max_tokens=None,
    )
    assert gpt.input_tokens - litellm_default(messages) == 1445 - 250
    # Claude: 1568 x 588 after fitting, 1,230 tokens (its tokenizer stands in for text alike).
    assert claude.input_tokens - gpt.input_tokens == 1230 - 1445
    assert gemini.input_tokens - gpt.input_tokens == max(258 * 24, 2240) - 1445


# --------------------------------------------------------------------------- through a call

POLICY = """
policyroute: 1
name: image-budget
models:
  vision:
    model: openai/gpt-4o
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
routes:
  - name: default
    to: vision
budgets:
  - name: per-call
    limit_usd: {limit}
    window: call
store: {{backend: memory}}
receipts: {{sink: none}}
"""

FOUR_WIDE = ask(*(image(png_url(2048, 768), "high") for _ in range(4)))
# What OpenAI bills: four images at 1,445 (85 + 8 tiles of 170) and the text.
BILLED = Usage(prompt=4 * 1445 + text_only("gpt-4o"), completion=100)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="Four wide pictures.", usage=BILLED))
        yield fp


def _policy(provider: FakeProvider, limit: str) -> Any:
    return load_policy_text(POLICY.format(base=provider.openai_base, limit=limit))


def test_images_that_passed_the_budget_at_250_tokens_are_refused(provider: FakeProvider) -> None:
    # Billed: 5,790 + 100 tokens at $1/M, $0.00589, over the $0.003 limit. Before, the
    # reservation was litellm's count, 4 x 250 + text + 100 output, about $0.0011.
    assert (litellm_default(FOUR_WIDE) + 100) / 1_000_000 < 0.003
    with pytest.raises(BudgetExceeded) as info:
        policyroute.completion(
            policy=_policy(provider, "0.003"), messages=FOUR_WIDE, max_tokens=100
        )
    assert provider.requests == []
    assert info.value.estimate >= D(BILLED.prompt + BILLED.completion) / 1_000_000


def test_image_urls_are_refused_at_their_ceiling_async(provider: FakeProvider) -> None:
    urls = ask(*(image(f"https://example.com/{i}.png") for i in range(4)))
    call = policyroute.acompletion(policy=_policy(provider, "0.003"), messages=urls, max_tokens=100)
    with pytest.raises(BudgetExceeded):
        asyncio.run(call)
    assert provider.requests == []


def test_the_bound_covers_the_bill_of_a_call_it_lets_through(provider: FakeProvider) -> None:
    answer = policyroute.completion(
        policy=_policy(provider, "1"), messages=FOUR_WIDE, max_tokens=100
    )
    assert answer.usage.prompt_tokens == BILLED.prompt
    sent = provider.requests[-1].body["messages"][0]["content"]
    assert sum(part["type"] == "image_url" for part in sent) == 4
    bound = worst_case(
        Request(messages=FOUR_WIDE),
        candidate("vision", "openai/gpt-4o"),
        {"max_tokens": 100},
        default_max_tokens=None,
    )
    assert bound.input_tokens >= BILLED.prompt
