"""No key and no environment value ever shows in a diagnostic, a repr or an error message."""

from __future__ import annotations

import pytest

from policyroute.errors import PolicyValidationError
from policyroute.policy.loader import load_policy_text
from policyroute.policy.validate import validate_text

LITERAL = "sk-live-0123456789abcdefSECRET"
ENV_VALUE = "sk-env-9876543210zyxwvuENVSECRET"
HOST_SECRET = "hunter2-password"


def _everything_shown(result: object) -> str:
    parts = [repr(result)]
    for d in getattr(result, "diagnostics", ()):
        parts += [d.format(), repr(d), str(d.as_dict())]
    return "\n".join(parts)


def test_literal_api_key_never_leaks() -> None:
    text = (
        "policyroute: 1\nname: t\n"
        f"models:\n  m:\n    model: openai/gpt-4o-mini\n    api_key: {LITERAL}\n"
        f"    api_base: 7\n    tmeout: {LITERAL}\n"
        "routes: [{name: d, to: m}]\n"
        f"store: {{url: 5, prefix: ''}}\n"
    )
    result = validate_text(text, environ={})
    assert {d.code for d in result.diagnostics} >= {"PR120", "PR010", "PR012"}
    shown = _everything_shown(result)
    assert "sk-live" not in shown
    assert "SECRET" not in shown
    with pytest.raises(PolicyValidationError) as info:
        load_policy_text(text)
    assert "sk-live" not in str(info.value)


def test_wrong_typed_or_patterned_key_values_are_not_quoted() -> None:
    text = (
        "policyroute: 1\nname: t\n"
        "models:\n  m: {model: openai/gpt-4o-mini, api_key: '${NOT A VAR sk-live-x}'}\n"
        "routes: [{name: d, to: m}]\n"
    )
    shown = _everything_shown(validate_text(text, environ={}))
    assert "sk-live" not in shown


def test_environment_values_never_leak() -> None:
    environ = {"OPENAI_API_KEY": ENV_VALUE, "REDIS_PASSWORD": HOST_SECRET}
    text = (
        "policyroute: 1\nname: t\n"
        "models:\n  m: {model: openai/gpt-4o-mini, api_key: '${OPENAI_API_KEY}'}\n"
        "routes: [{name: d, to: m}]\n"
        "store: {backend: redis, url: 'redis://:${REDIS_PASSWORD}@cache:6379'}\n"
    )
    result = validate_text(text, environ=environ)
    assert result.ok
    assert result.spec is not None
    shown = _everything_shown(result) + repr(result.spec) + str(result.spec)
    assert ENV_VALUE not in shown
    assert HOST_SECRET not in shown
    key = result.spec.models["m"].api_key
    assert key is not None
    assert key.reveal() == ENV_VALUE
    assert repr(key) == "Secret('${OPENAI_API_KEY}')"


def test_unset_variable_names_the_variable_only() -> None:
    text = (
        "policyroute: 1\nname: t\n"
        "models:\n  m: {model: openai/gpt-4o-mini, api_key: '${MISSING_KEY}'}\n"
        "routes: [{name: d, to: m}]\n"
    )
    result = validate_text(text, environ={})
    (d,) = result.diagnostics
    assert (d.code, d.severity) == ("PR119", "warning")
    assert "MISSING_KEY" in d.message
    assert result.ok
    strict = validate_text(text, environ={}, strict=True)
    assert strict.diagnostics[0].severity == "error"
    assert not strict.ok
    assert result.spec is not None
    secret = result.spec.models["m"].api_key
    assert secret is not None
    assert not secret.is_set
