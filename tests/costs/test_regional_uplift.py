"""A deployment served from a regional endpoint is charged the region's uplift, streamed or not.

OpenAI bills requests to its regional hosts (``eu.api.openai.com``, ``us.api.openai.com``) 10%
more on the models that list it; litellm prices the answers it returns at that uplift (from the
``api_base``), but ``completion_cost`` of a response adds it only when told the region, as for
a stream assembled afterwards. Vertex AI's regional endpoints (every location but ``global``,
``us-central1`` by default) are the same.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import httpx
import litellm
import pytest
import respx
from litellm.llms.openai.data_residency import infer_openai_data_residency

import policyroute
from policyroute.costs.actual import actual_cost, cost_from_usage, to_decimal
from policyroute.costs.estimate import worst_case
from policyroute.execution.hooks import Usage
from policyroute.request import Request

from .helpers import FAKE_KEY, candidate

MODEL = "gpt-5.4-nano"
MESSAGES = [{"role": "user", "content": "hello"}]
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
POLICY = """
policyroute: 1
name: regional
models:
  m:
    model: openai/{model}
    api_base: https://eu.api.openai.com/v1
    api_key: ${{PR_REGION_KEY}}
routes:
  - name: default
    to: m
receipts: {{sink: none}}
"""


def _sse() -> bytes:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    events = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**head, "choices": [], "usage": USAGE},
    ]
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return text.encode()


def _body() -> dict[str, Any]:
    return {
        "id": "chatcmpl-eu",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }


def test_an_eu_hosted_answer_costs_the_same_streamed_or_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PR_REGION_KEY", FAKE_KEY)
    policy = POLICY.format(model=MODEL)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(url__regex=r"https://eu\.api\.openai\.com/.*")
        route.mock(return_value=httpx.Response(200, json=_body()))
        response = policyroute.completion(policy=policy, messages=MESSAGES, max_tokens=500)
        route.mock(
            return_value=httpx.Response(
                200, content=_sse(), headers={"content-type": "text/event-stream"}
            )
        )
        stream = policyroute.completion(
            policy=policy, messages=MESSAGES, max_tokens=500, stream=True
        )
        list(stream)
    uplifted = Decimal(
        repr(
            litellm.completion_cost(
                completion_response=response, model=f"openai/{MODEL}", data_residency="eu"
            )
        )
    )
    assert uplifted > Decimal(
        repr(litellm.completion_cost(completion_response=response, model=f"openai/{MODEL}"))
    )
    unary = Decimal(response._hidden_params["policyroute"]["cost"])
    streamed = Decimal(stream.policyroute["cost"])
    assert abs(unary - uplifted) < Decimal("1e-6")
    assert abs(streamed - uplifted) < Decimal("1e-6")


def test_a_vertex_answer_is_priced_at_its_regional_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("VERTEXAI_LOCATION", "VERTEX_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    model = "vertex_ai/claude-haiku-4-5"
    response = litellm.ModelResponse(
        model="claude-haiku-4-5",
        choices=[{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
        usage=litellm.Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500),
    )
    regional = Decimal(
        repr(
            litellm.completion_cost(
                completion_response=response, model=model, vertex_location="us-central1"
            )
        )
    )
    cand = candidate(model)
    # The default location is regional: 10% over the global price (here $0.0035).
    assert regional == Decimal("0.00385")
    assert actual_cost(response, cand).cost == regional
    usage = Usage(input_tokens=1000, output_tokens=500)
    assert cost_from_usage(usage, cand).cost == regional


@pytest.mark.parametrize(
    ("model", "api_base", "place"),
    [
        ("openai/gpt-5.4-nano", "https://eu.api.openai.com/v1", {"data_residency": "eu"}),
        ("vertex_ai/claude-haiku-4-5", None, {"vertex_location": "us-central1"}),
    ],
)
def test_the_worst_case_covers_the_regional_uplift(
    model: str, api_base: str | None, place: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VERTEXAI_LOCATION", "VERTEX_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    cand = candidate(model)
    if api_base is not None:
        cand = dataclasses.replace(cand, litellm_params={"model": model, "api_base": api_base})
    est = worst_case(Request(messages=MESSAGES), cand, {"max_tokens": 500}, default_max_tokens=None)
    usage = litellm.Usage(
        prompt_tokens=est.input_tokens,
        completion_tokens=500,
        total_tokens=est.input_tokens + 500,
    )
    prompt_cost, completion_cost = litellm.cost_per_token(model=model, usage_object=usage, **place)
    # As a receipt reads litellm's figure: to the nano-dollar.
    assert est.cost >= to_decimal(prompt_cost + completion_cost)


def test_the_worst_case_follows_the_region_the_environment_names_call_after_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A deployment without api_base is served from OPENAI_BASE_URL's host, as litellm sends
    # it there: what is kept per deployment must not keep the region of an earlier call.
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(litellm, "api_base", None)
    cand = dataclasses.replace(
        candidate("openai/gpt-5.4-nano"), litellm_params={"model": "openai/gpt-5.4-nano"}
    )
    request = Request(messages=MESSAGES)

    def cost() -> Decimal:
        return worst_case(request, cand, {"max_tokens": 500}, default_max_tokens=None).cost

    global_cost = cost()
    monkeypatch.setenv("OPENAI_BASE_URL", "https://eu.api.openai.com/v1")
    eu_cost = cost()
    # litellm 1.110 reads the environment for the region; 1.106 looks at api_base only.
    read = infer_openai_data_residency("openai", None) == "eu"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert eu_cost == global_cost * (Decimal("1.1") if read else 1)
    assert cost() == global_cost


def test_litellm_resolves_a_deployments_provider_once_not_on_every_estimate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    resolve = litellm.get_llm_provider

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("model", ""))
        return resolve(*args, **kwargs)

    monkeypatch.setattr(litellm, "get_llm_provider", counted)
    # A base of its own, so that no earlier test's estimate resolved this deployment.
    base = "https://eu.api.openai.com/v1?once"
    cand = dataclasses.replace(
        candidate("openai/gpt-5.4-nano"),
        litellm_params={"model": "openai/gpt-5.4-nano", "api_base": base},
    )
    costs = {
        worst_case(Request(messages=MESSAGES), cand, {"max_tokens": 500}, default_max_tokens=None)
        for _ in range(5)
    }
    assert len(costs) == 1
    assert calls == ["openai/gpt-5.4-nano"]
