"""``yes``, ``no``, ``on`` and ``off`` are booleans in YAML 1.1 but text in YAML 1.2, which a
policy is read as: where a boolean is wanted, the diagnostic says so and what to write, instead
of a bare "expected boolean, got string" about a value that looks like a boolean.
"""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

BASE = """policyroute: 1
name: words
models:
  mini: {model: openai/gpt-4o-mini, capabilities: {tools: true}}
routes:
  - {name: tools, to: mini, when: {has_tools: true}}
  - {name: default, to: mini, params: {parallel_tool_calls: true}}
receipts: {include_prompt: false}
"""


def _only(text: str, code: str) -> tuple[str, str, str | None]:
    (d,) = validate_text(text, environ={}).diagnostics
    assert d.code == code
    return d.path, d.message, d.hint


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("include_prompt: false", "include_prompt: yes", "receipts.include_prompt"),
        (
            "capabilities: {tools: true}",
            "capabilities: {tools: Off}",
            "models.mini.capabilities.tools",
        ),
        (
            "parallel_tool_calls: true",
            "parallel_tool_calls: no",
            "routes[1].params.parallel_tool_calls",
        ),
    ],
)
def test_a_yaml11_boolean_word_where_a_boolean_belongs_says_to_write_true_or_false(
    old: str, new: str, path: str
) -> None:
    word = new.rstrip("}").rsplit(" ", 1)[1]
    assert _only(BASE.replace(old, new), "PR012") == (
        path,
        "expected boolean, got string",
        f"YAML 1.2 reads {word!r} as text, not a boolean: write true or false",
    )


def test_other_text_where_a_boolean_belongs_gets_no_yaml_hint() -> None:
    text = BASE.replace("include_prompt: false", "include_prompt: sometimes")
    assert _only(text, "PR012")[2] is None


def test_a_yaml11_boolean_word_tested_against_a_boolean_fact_says_to_write_true_or_false() -> None:
    text = BASE.replace("has_tools: true", "has_tools: yes")
    assert _only(text, "PR117") == (
        "routes[0].when.has_tools",
        "has_tools: 'yes' can never equal this fact, which is true or false",
        "YAML 1.2 reads 'yes' as text, not a boolean: write true or false",
    )


def test_the_hint_for_another_value_on_a_boolean_fact_names_that_fact() -> None:
    text = BASE.replace("has_tools: true", "stream: {eq: 1}")
    assert _only(text, "PR117") == (
        "routes[0].when.stream.eq",
        "stream: 1 can never equal this fact, which is true or false",
        "this fact is true or false: use e.g. stream: true",
    )
