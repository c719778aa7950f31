"""A call litellm cannot turn into a provider's request is the caller's bad request.

litellm translates OpenAI-format messages into each provider's format before sending; a
message it cannot translate (a tool message without ``tool_call_id``, a role the provider has
no place for) fails inside litellm with a ``KeyError`` wrapped as a 400, a 500 or a connection
error. (Tool-call arguments that are not JSON no longer reach litellm as such: each attempt
sends them as ``{}`` where the deployment would refuse them, see
``policyroute.execution.tool_arguments``.) Nothing
was sent: retrying it, falling over with it, or counting it against the deployment's
circuit breaker would turn one caller's malformed message into an outage for everyone.
"""

from __future__ import annotations

from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, candidate, run_in_mode

from policyroute.errors import BadRequestError, ProviderError
from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import Executor
from policyroute.policy.model import CircuitBreakerSpec
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

ANTHROPIC = "anthropic/claude-3-5-sonnet-20241022"
GEMINI = "gemini/gemini-1.5-flash"

_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
MESSAGES: dict[str, list[dict[str, Any]]] = {
    "tool message without tool_call_id": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "content": "42"},
    ],
    "a role the provider has no place for": [{"role": "robot", "content": "hi"}],
}


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
@pytest.mark.parametrize("model", [ANTHROPIC, GEMINI])
@pytest.mark.parametrize("case", list(MESSAGES))
def test_an_untranslatable_call_stops_at_once_and_leaves_the_breaker_closed(
    fp: FakeProvider, mode: str, model: str, case: str
) -> None:
    base = fp.anthropic_base if model == ANTHROPIC else fp.openai_base
    fp.set_default("*", Reply(text="never asked"))
    policy = StubPolicy([candidate("a", base, model=model), candidate("b", fp.openai_base)])
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=60))
    acct = RecordingAccounting()
    ex = Executor(policy, accounting=acct, breakers=breakers, sleep=lambda s: None)

    with pytest.raises(ProviderError) as caught:
        run_in_mode(ex, Request(messages=MESSAGES[case]), mode)

    err = caught.value
    assert isinstance(err, BadRequestError), err
    assert err.error_class == "bad_request"
    assert err.status_code is None  # nothing was sent; litellm's 400/500 is its own
    assert "could not turn the call into this provider's request" in str(err)
    assert [(a.alias, a.error_class) for a in err.attempts] == [("a", "bad_request")]
    assert fp.requests == []
    assert breakers.state("a") == "closed"


# Parameters litellm cannot map to Anthropic's request: it fails with a KeyError while mapping
# them (get_optional_params), before anything is sent.
PARAMS: dict[str, dict[str, Any]] = {
    "a tool without a function": {"tools": [{"x": 1}]},
    "a json_schema format without a schema": {
        "response_format": {"type": "json_schema", "json_schema": {"name": "P"}}
    },
}


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
@pytest.mark.parametrize("case", list(PARAMS))
def test_parameters_litellm_cannot_map_stop_the_call_and_leave_the_breaker_closed(
    fp: FakeProvider, mode: str, case: str
) -> None:
    fp.set_default("*", Reply(text="never asked"))
    policy = StubPolicy(
        [candidate("a", fp.anthropic_base, model=ANTHROPIC), candidate("b", fp.openai_base)]
    )
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=60))
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers, sleep=lambda s: None)
    request = Request(messages=[{"role": "user", "content": "hi"}], **PARAMS[case])

    with pytest.raises(BadRequestError) as caught:
        run_in_mode(ex, request, mode)

    err = caught.value
    assert err.status_code is None
    assert "could not turn the call into this provider's request" in str(err)
    assert [(a.alias, a.error_class) for a in err.attempts] == [("a", "bad_request")]
    assert fp.requests == []
    assert breakers.state("a") == "closed"


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_the_error_says_what_litellm_expected_not_only_the_index_error_under_it(
    fp: FakeProvider, mode: str
) -> None:
    # litellm raises "Image url not in expected format ... Error: list index out of range"
    # around an IndexError, and wraps that with the caller's messages appended.
    secret_text = "the caller's own words"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": secret_text},
                {"type": "image_url", "image_url": {"url": "not-a-url"}},
            ],
        }
    ]
    policy = StubPolicy([candidate("a", fp.anthropic_base, model=ANTHROPIC)])
    ex = Executor(policy, accounting=RecordingAccounting(), sleep=lambda s: None)

    with pytest.raises(ProviderError) as caught:
        run_in_mode(ex, Request(messages=messages), mode)

    text = str(caught.value)
    assert "litellm could not turn the call into this provider's request" in text
    assert "Image url not in expected format" in text
    assert "list index out of range" in text
    assert secret_text not in text
    assert "Received Messages" not in text
    assert fp.requests == []
