"""A deployment that cannot take the call's parameters is passed over, like a missing capability.

litellm checks each call's parameters against the target provider before sending and raises
``UnsupportedParamsError`` (a 400 of its own) for one the provider does not take: ``thinking``
on gpt-4o, ``parallel_tool_calls`` on o1. Nothing was sent, and the next deployment of the
route, another provider, may take the same call. It used to be an ordinary bad request, which
stops the call under the default ``fallback_on``: a mixed route with a Claude-only setting failed
on its first, OpenAI, deployment although Claude stood behind it.
"""

from __future__ import annotations

import pytest
from exec_support import RecordingAccounting, StubPolicy, candidate, run_in_mode

from policyroute.errors import BadRequestError
from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import Executor
from policyroute.policy.model import CircuitBreakerSpec
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

CLAUDE = "anthropic/claude-sonnet-4-5-20250929"
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_the_call_moves_on_to_a_deployment_that_takes_its_parameters(
    fp: FakeProvider, mode: str
) -> None:
    fp.set_default("*", Reply(text="thought it through", thinking="hmm"))
    policy = StubPolicy(
        [
            candidate("gpt", fp.openai_base, model="openai/gpt-4o"),
            candidate("claude", fp.anthropic_base, model=CLAUDE),
        ]
    )
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=60))
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers, sleep=lambda s: None)

    run_in_mode(ex, Request(messages=[{"role": "user", "content": "hi"}], params=THINKING), mode)

    assert [r.model for r in fp.requests] == ["claude-sonnet-4-5-20250929"]
    assert breakers.state("gpt") == "closed"  # the deployment is healthy; the call was not for it


def test_with_no_deployment_left_the_error_is_the_bad_request_itself(fp: FakeProvider) -> None:
    policy = StubPolicy([candidate("gpt", fp.openai_base, model="openai/gpt-4o")])
    ex = Executor(policy, accounting=RecordingAccounting(), sleep=lambda s: None)

    with pytest.raises(BadRequestError) as caught:
        ex.complete(Request(messages=[{"role": "user", "content": "hi"}], params=THINKING))

    err = caught.value
    assert err.status_code is None  # nothing was sent
    assert "does not take a parameter of the call" in str(err)
    assert "openai does not support parameters: ['thinking'], for model=gpt-4o" in str(err)
    # The last deployment's error is the call's: it cannot say the call moved on.
    assert "the call moves on" not in str(err)
    assert "a route passes over such a deployment to its next one, if it has one" in str(err)
    assert [(a.alias, a.error_class) for a in err.attempts] == [("gpt", "bad_request")]
    assert fp.requests == []


POLICY = """
policyroute: 1
name: mixed
models:
  gpt: {{model: openai/gpt-4o, api_base: "{openai}", api_key: "${{POLICYROUTE_TEST_KEY}}"}}
  claude:
    model: anthropic/claude-sonnet-4-5-20250929
    api_base: "{anthropic}"
    api_key: "${{POLICYROUTE_TEST_KEY}}"
routes:
  - name: default
    to: [gpt, claude]
receipts: {{sink: none}}
store: {{backend: memory}}
"""


def test_a_chat_model_with_a_claude_setting_on_a_mixed_route_answers_from_claude(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policyroute.langchain import ChatPolicyRoute

    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-test")
    fp.set_default("*", Reply(text="considered", thinking="hmm"))
    chat = ChatPolicyRoute(
        policy=POLICY.format(openai=fp.openai_base, anthropic=fp.anthropic_base),
        model_kwargs={"thinking": THINKING["thinking"]},
        max_tokens=2048,
    )

    answer = chat.invoke("hi")

    assert answer.text == "considered"
    assert answer.response_metadata["model_name"].endswith("claude-sonnet-4-5-20250929")
    assert [r.model for r in fp.requests] == ["claude-sonnet-4-5-20250929"]


@pytest.mark.parametrize("where", ["model", "route"])
def test_drop_params_sends_the_call_without_what_the_provider_does_not_take(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from policyroute.langchain import ChatPolicyRoute

    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-test")
    fp.set_default("*", Reply(text="plain"))
    policy = POLICY.format(openai=fp.openai_base, anthropic=fp.anthropic_base)
    if where == "model":
        policy = policy.replace(
            'api_key: "${POLICYROUTE_TEST_KEY}"}',
            'api_key: "${POLICYROUTE_TEST_KEY}", params: {drop_params: true}}',
            1,
        )
    else:
        policy = policy.replace(
            "    to: [gpt, claude]", "    to: [gpt, claude]\n    params: {drop_params: true}"
        )
    chat = ChatPolicyRoute(
        policy=policy, model_kwargs={"thinking": THINKING["thinking"]}, max_tokens=2048
    )

    answer = chat.invoke("hi")

    assert answer.text == "plain"
    (request,) = fp.requests
    assert request.model == "gpt-4o"  # answered where it was sent first, not passed over
    assert "thinking" not in request.body
    assert "drop_params" not in request.body


def test_validate_refuses_a_drop_params_that_is_not_a_boolean() -> None:
    from policyroute.policy.validate import validate_text

    text = POLICY.format(openai="http://127.0.0.1:9/v1", anthropic="http://127.0.0.1:9").replace(
        'api_key: "${POLICYROUTE_TEST_KEY}"}',
        'api_key: "${POLICYROUTE_TEST_KEY}", params: {drop_params: "yes"}}',
        1,
    )
    diagnostics = validate_text(text, environ={"POLICYROUTE_TEST_KEY": "k"}).diagnostics
    assert [(d.code, d.path) for d in diagnostics] == [("PR012", "models.gpt.params.drop_params")]
