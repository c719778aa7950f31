"""A module litellm needs but cannot import is named as such, not passed off as a connection
failure: nothing was sent, so the deployment is not retried (the import fails again every
time) and the call moves on to its next candidate, whose provider may not need the module;
the error that ends the call says why its last attempt failed."""

from __future__ import annotations

from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate

from policyroute._lazy import import_litellm
from policyroute.errors import AllCandidatesRefusedError, BadRequestError
from policyroute.execution.classify import classify
from policyroute.execution.executor import Executor
from policyroute.policy.model import DefaultsSpec, RetrySpec

litellm = import_litellm()
pytestmark = pytest.mark.timeout(20)


def _missing(name: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"No module named '{name}'", name=name)


def _wrapped(name: str) -> BaseException:
    # What litellm raises when an import inside a call fails: its own error, the import
    # error as the cause.
    outer = litellm.APIConnectionError(f"No module named '{name}'", "openai", "gpt-x")
    outer.__cause__ = _missing(name)
    return outer


@pytest.mark.parametrize("make", [_missing, _wrapped])
def test_classify_names_the_missing_module(make: Any) -> None:
    err = classify(make("mcp"), deployment="mini")
    assert "litellm could not import 'mcp'" in str(err)
    assert "install the package that provides it" in str(err)
    assert str(err).startswith("deployment 'mini': ")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_candidate_missing_a_module_ends_with_the_reason(mode: str) -> None:
    def completion(**_: Any) -> Any:
        raise _wrapped("mcp")

    async def acompletion(**_: Any) -> Any:
        raise _wrapped("mcp")

    policy = StubPolicy(
        [candidate("a", "http://127.0.0.1:9"), candidate("b", "http://127.0.0.1:9")]
    )
    ex = Executor(
        policy, accounting=RecordingAccounting(), completion=completion, acompletion=acompletion
    )
    with pytest.raises(AllCandidatesRefusedError) as info:
        ex.complete(ask()) if mode == "sync" else arun(ex.acomplete(ask()))
    # Refused everywhere for a reason the same call meets again: not worth retrying whole.
    assert "last error: deployment 'b': litellm could not import 'mcp'" in str(info.value)
    assert [e.status_code for e in info.value.errors] == [None, None]
    # retries were allowed (FAST_RETRY): each deployment was tried once, then the next
    assert [(a.alias, a.error_class, a.retry) for a in info.value.attempts] == [
        ("a", "bad_request", 0),
        ("b", "bad_request", 0),
    ]
    assert ex.breakers.state("a") == ex.breakers.state("b") == "closed"


def test_the_error_that_ends_the_call_has_litellms_as_its_cause() -> None:
    async def acompletion(**_: Any) -> Any:
        raise _wrapped("mcp")

    policy = StubPolicy([candidate("a", "http://127.0.0.1:9")])
    policy.defaults = DefaultsSpec(retry=RetrySpec(attempts=0))
    ex = Executor(policy, accounting=RecordingAccounting(), acompletion=acompletion)
    with pytest.raises(BadRequestError) as info:
        arun(ex.acomplete(ask()))
    assert isinstance(info.value.__cause__, litellm.APIConnectionError)
