"""A model that can answer with images is bounded at its image-output price.

Gemini's image models bill the tokens of an image they draw at their own rate (Gemini 2.5
Flash Image: $30/M, twelve times its $2.50/M for text): litellm prices an answer's image tokens
at it, so the worst case reserved before the call must too.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest
import respx

import policyroute

MODEL = "gemini-2.5-flash-image"
MESSAGES = [{"role": "user", "content": "draw a cat"}]
IMAGE_TOKENS = 1290  # one 1024x1024 image
MAX_TOKENS = 1400

POLICY = """
policyroute: 1
name: image-output
models:
  m:
    model: gemini/{model}
    api_key: ${{PR_IMAGE_KEY}}
budgets:
  - name: global
    limit_usd: 10
    window: day
routes:
  - name: default
    to: m
receipts: {{sink: jsonl, path: {path}}}
"""


def _body(prompt: int) -> dict[str, Any]:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "here it is"},
                        {"inlineData": {"mimeType": "image/png", "data": png}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": IMAGE_TOKENS + 10,
            "totalTokenCount": prompt + IMAGE_TOKENS + 10,
            "candidatesTokensDetails": [
                {"modality": "IMAGE", "tokenCount": IMAGE_TOKENS},
                {"modality": "TEXT", "tokenCount": 10},
            ],
        },
        "modelVersion": MODEL,
    }


def test_the_reserved_worst_case_covers_an_answer_with_an_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PR_IMAGE_KEY", "fake-gemini-key-0123456789")
    monkeypatch.chdir(tmp_path)  # the budget's default store is relative to it
    receipts = tmp_path / "receipts.jsonl"
    policy = POLICY.format(model=MODEL, path=json.dumps(str(receipts)))
    with respx.mock(assert_all_called=True) as mock:
        mock.post(url__regex=r"https://generativelanguage\.googleapis\.com/.*").mock(
            return_value=httpx.Response(200, json=_body(prompt=8))
        )
        response = policyroute.completion(
            policy=policy,
            messages=MESSAGES,
            max_tokens=MAX_TOKENS,
            modalities=["image", "text"],
        )
    assert response.usage.completion_tokens <= MAX_TOKENS
    (record,) = [
        r for r in map(json.loads, receipts.read_text().splitlines()) if r["kind"] == "attempt"
    ]
    charged = Decimal(record["cost"])
    litellm_cost = litellm.completion_cost(completion_response=response, model=f"gemini/{MODEL}")
    assert abs(charged - Decimal(repr(litellm_cost))) < Decimal("1e-6")
    # The image's tokens at $30/M: more than all the output allowed at the text rate.
    assert charged > MAX_TOKENS * Decimal("2.5e-6")
    assert Decimal(record["estimated_cost"]) >= charged
