"""A module litellm needs but cannot import is named as such, not passed off as a connection
failure, and the error that ends the call says why its last attempt failed."""

from __future__ import annotations

from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate

from policyroute._lazy import import_litellm
from policyroute.errors import AllCandidatesFailedError
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
    policy.defaults = DefaultsSpec(retry=RetrySpec(attempts=0))
    ex = Executor(
        policy, accounting=RecordingAccounting(), completion=completion, acompletion=acompletion
    )
    with pytest.raises(AllCandidatesFailedError) as info:
        ex.complete(ask()) if mode == "sync" else arun(ex.acomplete(ask()))
    message = str(info.value)
    assert message.startswith("route 'default': all 2 attempt(s) failed (a: connection, b: ")
    assert "last error: deployment 'b': litellm could not import 'mcp'" in message


def test_the_last_failure_is_the_cause_of_the_error_that_ends_the_call() -> None:
    async def acompletion(**_: Any) -> Any:
        raise _wrapped("mcp")

    policy = StubPolicy([candidate("a", "http://127.0.0.1:9")])
    policy.defaults = DefaultsSpec(retry=RetrySpec(attempts=0))
    ex = Executor(policy, accounting=RecordingAccounting(), acompletion=acompletion)
    with pytest.raises(AllCandidatesFailedError) as info:
        arun(ex.acomplete(ask()))
    assert info.value.__cause__ is info.value.errors[-1]
    assert isinstance(info.value.__cause__.__cause__, litellm.APIConnectionError)
