"""Where an exception was raised tells a failure in this process (nothing sent) from one met
on the wire or reading an answer; an exception made but never raised gives no such evidence."""

from __future__ import annotations

import httpx
import pytest

from policyroute._lazy import import_litellm
from policyroute.execution.classify import classify

litellm = import_litellm()

SECRET = "sk-proj-abcdefghijklmnopqrstuvwx"


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _wrapped(cause: BaseException) -> BaseException:
    """litellm's connection error raised from ``cause``, as its exception mapping raises it."""
    try:
        raise litellm.APIConnectionError(str(cause), "openai", "gpt-x") from cause
    except litellm.APIConnectionError as caught:
        return caught


def test_a_failure_raised_in_this_process_is_a_bad_request_without_status() -> None:
    err = classify(_wrapped(_raised(TypeError(f"bad value {SECRET}"))), secrets=[SECRET])
    assert err.error_class == "bad_request"
    assert err.failed_locally
    assert err.status_code is None
    assert "the call failed in this process, not at the provider (TypeError: bad value" in str(err)
    assert "raised in test_classify_failed_locally._raised" in str(err)
    assert SECRET not in str(err)


def test_an_exception_made_without_being_raised_classifies_by_its_type() -> None:
    outer = litellm.APIConnectionError("refused", "openai", "gpt-x")
    outer.__cause__ = RuntimeError("refused")
    err = classify(outer)
    assert (err.error_class, err.failed_locally) == ("connection", False)


@pytest.mark.parametrize(
    "raised", [ConnectionRefusedError(111, "refused"), OSError(113, "no route to host")]
)
def test_an_os_error_stays_the_networks(raised: OSError) -> None:
    err = classify(_wrapped(_raised(raised)))
    assert (err.error_class, err.failed_locally) == ("connection", False)


def test_an_exception_raised_while_the_http_client_sends_is_not_local() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the transport failed")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        try:
            client.get("http://provider.test/v1")
        except RuntimeError as exc:
            err = classify(_wrapped(exc))
    assert (err.error_class, err.failed_locally) == ("connection", False)


def test_a_missing_module_is_a_bad_request_moved_on_from() -> None:
    err = classify(_wrapped(_raised(ModuleNotFoundError("No module named 'mcp'", name="mcp"))))
    assert (err.error_class, err.failed_locally, err.status_code) == ("bad_request", True, None)
    assert "litellm could not import 'mcp'" in str(err)
