"""A value ending in a line break is not a name, a duration or an amount.

JSON Schema's ``pattern`` is an ECMA-262 regex, whose ``$`` holds only at the end of the text:
an editor using the published schema refuses ``name: "demo\\n"`` (which a ``|`` block scalar
also gives). Python's ``$`` also holds before a final line break, and validation used to accept
such names, a window ``"day\\n"`` crashed the builder with a ValueError, and a path holding the
key printed its line break raw, splitting the diagnostic's line.
"""

from __future__ import annotations

import pytest

from policyroute.policy.load import format_path
from policyroute.policy.schema import ecma_pattern
from policyroute.policy.validate import validate_text

HEAD = "policyroute: 1\nname: demo\n"
MODELS = "models:\n  mini: {model: openai/gpt-4o-mini}\n"
ROUTES = "routes:\n  - {name: default, to: mini}\n"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("policyroute: 1\nname: |\n  demo\n" + MODELS + ROUTES, "name"),
        (HEAD + MODELS + 'routes:\n  - {name: "default\\n", to: mini}\n', "routes[0].name"),
        (
            HEAD + 'models:\n  "mini\\n": {model: openai/gpt-4o-mini}\n' + ROUTES,
            'models["mini\\n"]',
        ),
        (
            HEAD + MODELS + ROUTES + 'budgets: [{name: b, limit_usd: 1, window: "day\\n"}]\n',
            "budgets[0].window",
        ),
        (
            HEAD + MODELS + ROUTES + 'budgets: [{name: b, limit_usd: "2.50\\n", window: day}]\n',
            "budgets[0].limit_usd",
        ),
        (
            HEAD + 'models:\n  mini: {model: openai/gpt-4o-mini, timeout: "10s\\n"}\n' + ROUTES,
            "models.mini.timeout",
        ),
        (
            HEAD
            + "models:\n  mini: {model: openai/gpt-4o-mini,"
            + ' params: {extra_headers: {"X-A\\n": v}}}\n'
            + ROUTES,
            'models.mini.params.extra_headers["X-A\\n"]',
        ),
        (
            HEAD
            + MODELS
            + ROUTES
            + 'budgets: [{name: b, per: "route\\n", limit_usd: 1, window: day}]\n',
            "budgets[0].per",
        ),
    ],
)
def test_a_trailing_line_break_fails_the_pattern_as_editors_check_it(text: str, path: str) -> None:
    result = validate_text(text, environ={})
    assert not result.ok
    assert ("PR013", path) in [(d.code, d.path) for d in result.errors]
    assert all("\n" not in d.format() for d in result.diagnostics)


def test_an_api_key_reference_ending_in_a_line_break_is_not_one_reference() -> None:
    text = HEAD + 'models:\n  mini: {model: openai/gpt-4o-mini, api_key: "${OPENAI_API_KEY}\\n"}\n'
    result = validate_text(text + ROUTES, environ={"OPENAI_API_KEY": "sk-test"})
    assert [(d.code, d.path) for d in result.errors] == [("PR120", "models.mini.api_key")]


@pytest.mark.parametrize(
    ("pattern", "python"),
    [
        ("^[a-z]+$", r"^[a-z]+\Z"),
        ("^(?:a|b)$|^c$", r"^(?:a|b)\Z|^c\Z"),
        (r"^\$\{[A-Z]+\}$", r"^\$\{[A-Z]+\}\Z"),
        ("^[#$%]+$", r"^[#$%]+\Z"),
        (r"^[\]$]x$", r"^[\]$]x\Z"),
    ],
)
def test_ecma_pattern_anchors_only_unescaped_dollars_outside_classes(
    pattern: str, python: str
) -> None:
    assert ecma_pattern(pattern) == python


def test_a_key_holding_a_line_break_is_quoted_in_a_path() -> None:
    assert format_path(("models", "mini\n", "model")) == 'models["mini\\n"].model'
