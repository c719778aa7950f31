"""A mapping missing several required properties names every one of them in its PR011
diagnostic: one was named and the others went unsaid until it was fixed."""

from __future__ import annotations

from policyroute.policy.validate import validate_text


def _messages(text: str) -> list[tuple[str, str, str]]:
    result = validate_text(text, environ={})
    return [(d.code, d.path, d.message) for d in result.diagnostics]


def test_every_missing_top_level_property_is_named() -> None:
    assert _messages("name: bare\n") == [
        ("PR011", "", "missing required properties 'policyroute', 'models' and 'routes'")
    ]


def test_two_missing_properties_are_named_together() -> None:
    assert _messages("policyroute: 1\nname: bare\n") == [
        ("PR011", "", "missing required properties 'models' and 'routes'")
    ]


def test_one_missing_property_reads_as_before() -> None:
    text = "policyroute: 1\nname: bare\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    assert ("PR011", "", "missing required property 'routes'") in _messages(text)
