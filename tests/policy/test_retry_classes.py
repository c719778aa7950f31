"""PR142: retry.on entries that a retry of the same deployment cannot fix are warned about."""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

HEAD = """policyroute: 1
name: t
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - {name: default, to: mini}
defaults:
  retry:
"""


def _found(retry: str) -> list[tuple[str, str, str | None]]:
    result = validate_text(HEAD + retry, environ={})
    return [(d.path, d.message, d.hint) for d in result.diagnostics if d.code == "PR142"]


@pytest.mark.parametrize("name", ["context_window", "content_policy"])
def test_a_class_never_retried_and_also_in_fallback_on_does_nothing_in_on(name: str) -> None:
    # fallback_on left out: its default lists both classes.
    ((path, message, hint),) = _found(f"    on: [timeout, {name}]\n")
    assert path == "defaults.retry.on[1]"
    assert f"'{name}'" in message
    assert "never retried" in message
    assert "does nothing" in message
    assert hint == "remove it from retry.on"


def test_a_class_never_retried_only_in_on_is_told_to_move_to_fallback_on() -> None:
    ((path, message, hint),) = _found("    on: [context_window]\n    fallback_on: [timeout]\n")
    assert path == "defaults.retry.on[0]"
    assert "only falls over to the next deployment" in message
    assert hint == "move it to fallback_on"


@pytest.mark.parametrize("name", ["authentication", "not_found"])
def test_a_refusal_retried_as_asked_is_warned_with_the_fallback_way(name: str) -> None:
    ((path, message, hint),) = _found(f"    on: [{name}, timeout]\n")
    assert path == "defaults.retry.on[0]"
    assert f"'{name}'" in message
    assert "only adds attempts and waits" in message
    assert hint == "remove it from retry.on; fallback_on moves to the next deployment at once"
    ((_, _, hint),) = _found(f"    on: [{name}]\n    fallback_on: [timeout]\n")
    assert hint is not None
    assert "add it to fallback_on" in hint


def test_a_bad_request_in_on_is_warned_without_pointing_at_fallback_on() -> None:
    ((path, message, hint),) = _found("    on: [bad_request]\n")
    assert path == "defaults.retry.on[0]"
    assert "the same request is refused again" in message
    assert hint == "remove it from retry.on"


def test_the_warning_does_not_make_the_policy_invalid_unless_strict() -> None:
    text = HEAD + "    on: [not_found]\n"
    assert validate_text(text, environ={}).ok
    assert not validate_text(text, environ={}, strict=True).ok


@pytest.mark.parametrize(
    "retry",
    [
        "    on: [rate_limit, timeout, server_error, connection, malformed_response]\n",
        "    on: []\n    fallback_on: [context_window, authentication, not_found, bad_request]\n",
        "    attempts: 3\n",
    ],
)
def test_retry_classes_a_retry_can_fix_are_not_warned_about(retry: str) -> None:
    assert _found(retry) == []
