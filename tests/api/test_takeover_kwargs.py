"""litellm arguments that would send a call elsewhere than the policy says, or price it
otherwise, are refused before anything is routed, reserved or sent.

With bare litellm, ``deployment_id`` and ``azure=True`` make any call an Azure one and
``model_list`` sends it to the deployments listed there; passed through policyroute they
reached every candidate of the route, each failing (or answering) as a deployment the policy
never declared, and counting against the route's breakers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import openai
import pytest

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: api-takeover-kwargs
models:
  a:
    model: openai/gpt-4o-mini
    api_base: {base}
    api_key: ${{PR_TAKEOVER_KEY}}
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
) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)  # the policy's store and receipts are relative to the cwd
    monkeypatch.setenv("PR_TAKEOVER_KEY", "sk-policy")
    provider.reset()
    provider.set_default("gpt-4o-mini", Reply(text="hi you", usage=Usage(prompt=7, completion=3)))
    clear_cache()
    yield POLICY.format(base=provider.openai_base)
    clear_cache()


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


def _call(policy: str, entry: str, arguments: dict[str, Any]) -> Any:
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
    policy: str,
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
    provider: FakeProvider, policy: str, name: str, value: Any
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
    api_key: ${{PR_TAKEOVER_KEY}}
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
    policy: str,
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
