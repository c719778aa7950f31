"""policyroute.completion as a drop-in for litellm.completion: the arguments litellm users pass.

litellm arguments that would take over what the policy decides (retries, fallbacks,
credentials, mocks) are refused before anything is routed, reserved or sent; the others reach
litellm as they would have.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: api-review-kwargs
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_REVIEW_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: total
    limit_usd: 5
    window: day
store: {{backend: sqlite, path: state/budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def policy(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # the policy's store and receipts are relative to the cwd
    monkeypatch.setenv("PR_REVIEW_KEY", "sk-policy")
    provider.reset()
    provider.set_default("fake-a", Reply(text="hi you", usage=Usage(prompt=7, completion=3)))
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=provider.openai_base))
    clear_cache()
    yield path
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _receipts(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "receipts" / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("num_retries", 3, "defaults.retry"),
        ("max_retries", 2, "defaults.retry"),
        ("fallbacks", ["openai/gpt-4o"], "'to'"),
        ("context_window_fallback_dict", {"openai/fake-a": "openai/big"}, "'to'"),
        ("api_key", "sk-caller-openai", "api_key: ${ENV_VAR}"),
        ("api_base", "http://127.0.0.1:9/v1", "policy's model"),
        ("base_url", "http://127.0.0.1:9/v1", "policy's model"),
        ("custom_llm_provider", "anthropic", "policy's model"),
        ("mock_response", "mocked!", "FakeProvider"),
        ("mock_tool_calls", [{"type": "function"}], "FakeProvider"),
        ("mock_timeout", True, "FakeProvider"),
    ],
)
def test_litellm_arguments_that_override_the_policy_are_refused_before_sending(
    provider: FakeProvider, policy: Path, tmp_path: Path, name: str, value: Any, hint: str
) -> None:
    with pytest.raises(RequestError, match=name) as info:
        policyroute.completion(policy=policy, messages=MESSAGES, **{name: value})
    assert hint in str(info.value)
    assert provider.requests == []
    assert _receipts(tmp_path) == []


def test_a_refused_argument_names_no_secret(policy: Path) -> None:
    with pytest.raises(RequestError) as info:
        policyroute.completion(policy=policy, messages=MESSAGES, api_key="sk-caller-secret")
    assert "sk-caller-secret" not in str(info.value)


async def _acall(policy: Path, **params: Any) -> Any:
    return await policyroute.acompletion(policy=policy, messages=MESSAGES, **params)


@pytest.mark.asyncio
async def test_acompletion_refuses_them_too(provider: FakeProvider, policy: Path) -> None:
    with pytest.raises(RequestError, match="mock_response"):
        await _acall(policy, mock_response="x")
    with pytest.raises(RequestError, match="num_retries"):
        await _acall(policy, num_retries=1, stream=True)
    assert provider.requests == []


def test_retry_counts_of_zero_and_unset_mocks_pass(provider: FakeProvider, policy: Path) -> None:
    response = policyroute.completion(
        policy=policy,
        messages=MESSAGES,
        num_retries=0,
        max_retries=0,
        mock_response=None,
        mock_timeout=False,
    )
    assert response.choices[0].message.content == "hi you"
    assert len(provider.requests) == 1


def test_metadata_reaches_litellm_for_its_callbacks(
    policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    real = litellm.completion

    def recording(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(litellm, "completion", recording)
    metadata = {"user_id": "u1", "trace_name": "checkout"}
    policyroute.completion(policy=policy, messages=MESSAGES, metadata=metadata)
    assert seen[0]["metadata"].items() >= metadata.items()
    # litellm adds keys of its own to the dict it is given; the caller's stays as it was
    assert metadata == {"user_id": "u1", "trace_name": "checkout"}


def test_passed_through_parameters_reach_the_provider(provider: FakeProvider, policy: Path) -> None:
    policyroute.completion(
        policy=policy,
        messages=MESSAGES,
        seed=7,
        logprobs=True,
        top_logprobs=2,
        timeout=9,
        extra_headers={"X-Review": "yes"},
        unknown_to_litellm="kept",
    )
    request = provider.requests[0]
    assert request.body["seed"] == 7
    assert request.body["logprobs"] is True
    assert request.body["top_logprobs"] == 2
    assert request.body["unknown_to_litellm"] == "kept"
    assert request.headers["x-review"] == "yes"
    assert request.headers["authorization"] == "Bearer sk-policy"


def test_response_cost_is_filled_when_litellm_cannot_price_the_model(policy: Path) -> None:
    response = policyroute.completion(policy=policy, messages=MESSAGES)
    # 7 input tokens at $0.001 + 3 output tokens at $0.002, as the policy prices them
    assert response._hidden_params["response_cost"] == pytest.approx(0.013)
    assert response._hidden_params["litellm_call_id"]
    assert response.model == "fake-a"


def test_n_above_one_returns_every_choice(provider: FakeProvider, policy: Path) -> None:
    response = policyroute.completion(policy=policy, messages=MESSAGES, n=2)
    assert isinstance(response, litellm.ModelResponse)
    assert [c.message.content for c in response.choices] == ["hi you", "hi you"]
    assert provider.requests[0].body["n"] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", [("user_id", "u1")]),
        ("metadata", "user_id=u1"),
        ("tags", "prod"),
        ("tags", ["prod", 3]),
        ("model", 4),
    ],
)
def test_routing_facts_of_the_wrong_shape_are_request_errors(
    provider: FakeProvider, policy: Path, field: str, value: Any
) -> None:
    with pytest.raises(RequestError, match=f"'{field}'"):
        policyroute.completion(policy=policy, messages=MESSAGES, **{field: value})
    assert provider.requests == []


def test_tags_may_be_any_collection_of_strings(policy: Path) -> None:
    response = policyroute.completion(policy=policy, messages=MESSAGES, tags={"prod"})
    assert response.choices[0].message.content == "hi you"


PRICED = """
policyroute: 1
name: api-review-prices
models:
  listed:
    model: openai/gpt-4o-mini
    api_base: {base}
    api_key: ${{PR_REVIEW_KEY}}
  negotiated:
    model: openai/gpt-4o-mini
    api_base: {base}
    api_key: ${{PR_REVIEW_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: negotiated
    when: {{metadata.deal: true}}
    to: negotiated
  - name: default
    to: listed
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10}}
"""


def test_response_cost_is_what_the_policy_charged(
    provider: FakeProvider, policy: Path, tmp_path: Path
) -> None:
    provider.set_default("gpt-4o-mini", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
    priced = tmp_path / "priced.yaml"
    priced.write_text(PRICED.format(base=provider.openai_base))

    listed = policyroute.completion(policy=priced, messages=MESSAGES)
    negotiated = policyroute.completion(policy=priced, messages=MESSAGES, metadata={"deal": True})

    # litellm's list price where the policy gives none, the policy's own price where it does
    assert listed._hidden_params["response_cost"] == pytest.approx(
        litellm.completion_cost(completion_response=listed)
    )
    assert negotiated._hidden_params["response_cost"] == pytest.approx(0.013)
    assert negotiated._hidden_params["policyroute"]["cost"] == "0.013000000"
