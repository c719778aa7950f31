"""policyroute.completion as a drop-in for litellm.completion: the arguments litellm users pass.

litellm arguments that would take over what the policy decides (retries, fallbacks,
credentials, deployments and SDK clients, per-call prices, mocks) are refused before anything
is routed, reserved or sent; the others reach litellm as they would have.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import openai
import pytest

import policyroute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.errors import AllCandidatesFailedError, RequestError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: api-kwargs
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
        ("retry_policy", {"RateLimitErrorRetries": 3}, "defaults.retry"),
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
        extra_headers={"X-Trace": "yes"},
        unknown_to_litellm="kept",
    )
    request = provider.requests[0]
    assert request.body["seed"] == 7
    assert request.body["logprobs"] is True
    assert request.body["top_logprobs"] == 2
    assert request.body["unknown_to_litellm"] == "kept"
    assert request.headers["x-trace"] == "yes"
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
name: api-prices
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


# --------------------------------------------------------------------------- sent elsewhere
#
# With bare litellm, ``deployment_id`` and ``azure=True`` make any call an Azure one and
# ``model_list`` sends it to the deployments listed there; passed through policyroute they
# reached every candidate of the route, each failing (or answering) as a deployment the policy
# never declared, and counting against the route's breakers. A price given with the call
# litellm keeps for the rest of the process.


def _elsewhere(provider: FakeProvider) -> list[dict[str, Any]]:
    return [
        {
            "model_name": "gpt-4o-mini",
            "litellm_params": {
                "model": "anthropic/claude-haiku-4-5",
                "api_base": provider.anthropic_base,
                "api_key": "sk-elsewhere",
            },
        }
    ]


def _call(policy: Path | str, entry: str, arguments: dict[str, Any]) -> Any:
    if entry == "async":
        return asyncio.run(policyroute.acompletion(policy=policy, messages=MESSAGES, **arguments))
    stream = entry == "stream"
    return policyroute.completion(policy=policy, messages=MESSAGES, stream=stream, **arguments)


def _client(provider: FakeProvider) -> Any:
    # An SDK client of the caller's, to another endpoint with another key: litellm sends
    # every openai/ candidate's call through it.
    return openai.OpenAI(base_url=provider.anthropic_base, api_key="sk-elsewhere")


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("deployment_id", "my-azure-deployment", "policy's model"),
        ("azure", True, "policy's model"),
        ("model_list", _elsewhere, "other deployments than the route's"),
        ("client", _client, "api_base and api_key of the policy's models"),
    ],
)
@pytest.mark.parametrize("entry", ["sync", "async", "stream"])
def test_an_argument_that_sends_the_call_elsewhere_is_refused(
    provider: FakeProvider,
    policy: Path,
    tmp_path: Path,
    name: str,
    value: Any,
    hint: str,
    entry: str,
) -> None:
    given = value(provider) if callable(value) else value
    with pytest.raises(RequestError, match=f"request parameter '{name}' is not accepted") as info:
        _call(policy, entry, {name: given})
    if isinstance(given, openai.OpenAI):
        given.close()
    assert hint in str(info.value)
    assert "sk-elsewhere" not in str(info.value)
    assert provider.requests == []
    assert not (tmp_path / "receipts" / "calls.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "value"), [("deployment_id", None), ("azure", False), ("client", None)]
)
def test_their_unset_values_pass(
    provider: FakeProvider, policy: Path, name: str, value: Any
) -> None:
    response = policyroute.completion(policy=policy, messages=MESSAGES, **{name: value})
    assert response.choices[0].message.content == "hi you"
    assert [r.path for r in provider.requests] == ["/v1/chat/completions"]


PRICED_POLICY = """
policyroute: 1
name: api-takeover-prices
models:
  n:
    model: openai/gpt-4.1-nano
    api_base: {base}
    api_key: ${{PR_REVIEW_KEY}}
routes:
  - name: default
    to: n
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""


@pytest.mark.parametrize(
    "prices",
    [
        {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002},
        {"cost_per_second": 0.5},
        {"output_cost_per_second": 0.5},
        {"input_cost_per_token": 0, "output_cost_per_token": 0},
        {"cache_read_input_token_cost": 0.001},
    ],
)
@pytest.mark.parametrize("entry", ["sync", "async", "stream"])
def test_a_price_given_with_the_call_is_refused_and_prices_nothing(
    provider: FakeProvider,
    policy: Path,
    tmp_path: Path,
    prices: dict[str, float],
    entry: str,
) -> None:
    # litellm keeps a price given with a call in its price map for the rest of the process:
    # every later call of the model, on every policy, was charged it by budgets and receipts.
    provider.set_default("gpt-4.1-nano", Reply(text="ok", usage=Usage(prompt=1000, completion=500)))
    priced = PRICED_POLICY.format(base=provider.openai_base)
    first = next(iter(prices))
    with pytest.raises(RequestError, match=f"request parameter '{first}' is not accepted") as info:
        _call(priced, entry, prices)
    assert "price: {input_per_mtok" in str(info.value)
    assert provider.requests == []
    assert not (tmp_path / "receipts" / "calls.jsonl").exists()

    response = policyroute.completion(policy=priced, messages=MESSAGES)
    charged = response._hidden_params["response_cost"]
    assert charged == pytest.approx(litellm.completion_cost(completion_response=response))
    # gpt-4.1-nano's list price: $0.10 per million input tokens, $0.40 per million output.
    assert charged == pytest.approx(1000 * 0.10e-6 + 500 * 0.40e-6)


@pytest.mark.parametrize("mode", ["sync", "sync-stream", "async", "async-stream"])
def test_litellms_global_num_retries_adds_no_hidden_retries(
    provider: FakeProvider, policy: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # An application that sets litellm.num_retries for its own litellm calls: litellm's sync
    # completion reads the call's num_retries=0 as unset (`0 or litellm.num_retries`) and
    # retried each policyroute attempt 3 times inside it, unseen by receipts and breakers.
    import_litellm()  # policyroute's first use sets it to 0; the application's comes after
    monkeypatch.setattr(litellm, "num_retries", 3)
    provider.script("fake-a", *[Fault.status(500)] * 4)

    async def acall() -> None:
        answer = await _acall(policy, stream=mode == "async-stream")
        if mode == "async-stream":
            [chunk async for chunk in answer]

    def call() -> None:
        if mode.startswith("async"):
            asyncio.run(acall())
        else:
            list(policyroute.completion(policy=policy, messages=MESSAGES, stream=mode != "sync"))

    with pytest.raises(AllCandidatesFailedError) as info:
        call()
    assert len(info.value.attempts) == 1
    assert provider.attempts("fake-a") == 1
