"""A request too large for one deployment falls over to the next, as a context-window error.

Providers say "too large" in more than one way: OpenAI's ``context_length_exceeded`` error
code with a message in other words, an HTTP 413 (Anthropic's ``request_too_large``, which
litellm reports as a 400, or a proxy's byte limit). Each is a ``context_window`` failure:
never retried on the same deployment, tried on the route's next candidate, which may take
a larger request. A plain 400 still stops the call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate

from policyroute.errors import BadRequestError
from policyroute.execution.executor import Executor
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

ANTHROPIC = "anthropic/claude-3-5-sonnet-20241022"


def _openai(message: str, code: str | None) -> str:
    body = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return json.dumps({"error": body})


TOO_LARGE: dict[str, tuple[str | None, Fault]] = {
    "openai context_length_exceeded code, other words": (
        None,
        Fault.raw(
            _openai("Input is too long for this model.", "context_length_exceeded"), status=400
        ),
    ),
    "anthropic request_too_large 413": (
        ANTHROPIC,
        Fault.raw(
            json.dumps(
                {
                    "type": "error",
                    "error": {
                        "type": "request_too_large",
                        "message": "Request exceeds the maximum allowed number of bytes.",
                    },
                }
            ),
            status=413,
        ),
    ),
    "a proxy's 413 page": (
        None,
        Fault.raw(
            "<html><h1>413 Request Entity Too Large</h1></html>",
            status=413,
            content_type="text/html",
        ),
    ),
}


def _run(ex: Executor, mode: str) -> Any:
    if mode == "sync":
        return ex.complete(ask())
    if mode == "async":
        return arun(ex.acomplete(ask()))
    return list(ex.stream(ask()))[-1].result


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
@pytest.mark.parametrize("case", list(TOO_LARGE))
def test_too_large_for_one_deployment_falls_over_to_the_next(
    fp: FakeProvider, mode: str, case: str
) -> None:
    model, fault = TOO_LARGE[case]
    base = fp.anthropic_base if model == ANTHROPIC else fp.openai_base
    served = "claude-3-5-sonnet-20241022" if model == ANTHROPIC else "a"
    fp.set_default(served, fault)
    fp.set_default("b", Reply(text="fits here"))
    policy = StubPolicy([candidate("a", base, model=model), candidate("b", fp.openai_base)])
    ex = Executor(policy, accounting=RecordingAccounting(), sleep=lambda s: None)

    result = _run(ex, mode)

    assert result.deployment == "b"
    assert [(a.alias, a.error_class) for a in result.attempts] == [
        ("a", "context_window"),
        ("b", None),
    ]


def test_a_plain_400_still_stops_the_call(fp: FakeProvider) -> None:
    fp.set_default(
        "a", Fault.raw(_openai("Unknown parameter 'foo'.", "unknown_parameter"), status=400)
    )
    fp.set_default("b", Reply(text="never asked"))
    policy = StubPolicy([candidate("a", fp.openai_base), candidate("b", fp.openai_base)])
    ex = Executor(policy, sleep=lambda s: None)

    with pytest.raises(BadRequestError):
        ex.complete(ask())
    assert [r.model for r in fp.requests] == ["a"]
