"""Last places a credential could show: a :class:`Request`'s ``repr``, a failed policy-test
case's report, and the structured fields (``body``) of a provider exception."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from secret_support import HEADER, KEY, PASSWORD, assert_clean

from policyroute.cli import main
from policyroute.costs.redact import scrub_exception
from policyroute.policytest import CaseResult, run_tests_file
from policyroute.request import Request

# --------------------------------------------------------------------------- Request repr


def test_request_repr_redacts_params_and_keeps_the_rest() -> None:
    request = Request(
        messages=[{"role": "user", "content": "what is the weather like"}],
        model="gpt-4o-mini",
        params={
            "temperature": 0.2,
            "api_key": KEY,
            "api_base": f"https://user:{PASSWORD}@gw.example/v1",
            "extra_headers": {"Authorization": f"Bearer {HEADER}", "X-Trace": "t-7"},
        },
    )
    shown = repr(request)
    assert_clean(shown, "repr of Request")
    assert shown.startswith("Request(messages=")
    # Only credentials go: the prompt, the model, other params and headers still show.
    for kept in ("what is the weather like", "'gpt-4o-mini'", "0.2", "gw.example/v1", "t-7"):
        assert kept in shown
    assert "[REDACTED]" in shown
    assert f"request_id={request.request_id!r}" in shown


def test_request_repr_leaves_params_untouched() -> None:
    params = {"extra_headers": {"Authorization": f"Bearer {HEADER}"}}
    request = Request(messages=[], params=params)
    repr(request)
    assert request.params["extra_headers"]["Authorization"] == f"Bearer {HEADER}"


# --------------------------------------------------------------------------- policy tests

_POLICY = f"""policyroute: 1
name: header-route
models:
  gw:
    model: openai/gpt-4o-mini
routes:
  - name: default
    to: gw
    params: {{temperature: 0, extra_headers: {{Authorization: Bearer {HEADER}, X-Team: a}}}}
"""


def _tests_file(tmp_path: Path, expected_params: str) -> Path:
    (tmp_path / "p.yaml").write_text(_POLICY, encoding="utf-8")
    path = tmp_path / "p.tests.yaml"
    path.write_text(
        "policy: p.yaml\n"
        "cases:\n"
        "  - name: header case\n"
        "    request: {messages: [{role: user, content: hi}]}\n"
        f"    expect: {{route: default, params: {expected_params}}}\n",
        encoding="utf-8",
    )
    return path


def test_failed_case_diff_shows_no_route_credential(tmp_path: Path) -> None:
    path = _tests_file(tmp_path, "{temperature: 1}")
    (case,) = run_tests_file(path).cases
    assert not case.passed
    diff = case.diff()
    assert_clean(diff, "policy-test diff")
    assert_clean(repr(case), "repr of CaseResult")
    assert "[REDACTED]" in diff
    assert "-  temperature: 1" in diff
    assert "+  temperature: 0" in diff
    assert "X-Team: a" in diff


def test_expected_credential_header_still_compared_on_raw_values(tmp_path: Path) -> None:
    expected = f"{{temperature: 0, extra_headers: {{Authorization: Bearer {HEADER}, X-Team: a}}}}"
    (case,) = run_tests_file(_tests_file(tmp_path, expected)).cases
    assert case.passed, case.diff()


def test_case_differing_only_in_a_credential_says_so(tmp_path: Path) -> None:
    expected = "{temperature: 0, extra_headers: {Authorization: Bearer other-token, X-Team: a}}"
    (case,) = run_tests_file(_tests_file(tmp_path, expected)).cases
    assert not case.passed
    diff = case.diff()
    assert_clean(diff, "policy-test diff")
    assert "other-token" not in diff
    # The failure still reads as one: the diff names the redacted difference.
    assert diff
    assert "redacted" in diff


def test_policy_test_cli_output_shows_no_route_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _tests_file(tmp_path, "{temperature: 1}")
    assert main(["test", str(path)]) == 1
    out = capsys.readouterr()
    assert "FAILED" in out.out
    assert_clean(out.out + out.err, "policyroute test output")


def test_case_result_diff_without_params_is_unchanged() -> None:
    case = CaseResult("t.tests.yaml", 3, "review", {"route": "code"}, {"route": "chat"})
    assert case.diff().splitlines()[-2:] == ["-route: code", "+route: chat"]


# --------------------------------------------------------------------------- exception fields


def _status_error() -> openai.AuthenticationError:
    request = httpx.Request(
        "POST",
        f"https://user:{PASSWORD}@gw.example/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    response = httpx.Response(401, request=request)
    body = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}.",
            "code": "invalid_api_key",
            "echo": {"headers": {"Authorization": f"Bearer {HEADER}"}, "n": 2},
            "tried": [f"https://u:{PASSWORD}@gw.example/v1"],
        }
    }
    return openai.AuthenticationError("Error code: 401", response=response, body=body)


def test_exception_body_is_scrubbed_as_a_copy() -> None:
    exc = _status_error()
    original = exc.body
    scrub_exception(exc, (HEADER,))
    assert_clean(exc.body, "exception body")
    assert isinstance(exc.body, dict)
    error = exc.body["error"]
    assert error["code"] == "invalid_api_key"
    assert error["echo"]["n"] == 2
    assert "gw.example/v1" in error["tried"][0]
    # The provider's object is not mutated: a copy replaces it.
    assert isinstance(original, dict)
    assert KEY in original["error"]["message"]


def test_exception_body_scrubbed_through_the_cause_chain() -> None:
    cause = _status_error()
    outer = RuntimeError("provider failed")
    outer.__cause__ = cause
    scrub_exception(outer, ())
    assert_clean(cause.body, "cause body")


def test_exception_type_status_and_response_are_kept() -> None:
    exc = _status_error()
    response, request = exc.response, exc.request
    scrub_exception(exc, ())
    assert isinstance(exc, openai.AuthenticationError)
    assert exc.status_code == 401
    assert exc.response is response
    assert exc.request is request
    assert exc.response.status_code == 401


def test_litellm_debug_info_is_scrubbed() -> None:
    import litellm

    exc = litellm.exceptions.AuthenticationError(
        message="bad key",
        llm_provider="openai",
        model="gpt-4o-mini",
        litellm_debug_info=f"api_base=https://u:{PASSWORD}@gw/v1 key {HEADER}",
    )
    scrub_exception(exc, (HEADER,))
    assert_clean(exc.litellm_debug_info, "litellm_debug_info")
    assert isinstance(exc, litellm.exceptions.AuthenticationError)
    assert exc.status_code == 401
