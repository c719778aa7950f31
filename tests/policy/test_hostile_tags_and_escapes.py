"""Tags on lists and mappings, explicit !!bool/!!null on other text, and escapes past U+10FFFF
are diagnostics naming the place, never a silent value or a traceback."""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

BASE = """policyroute: 1
name: demo
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
"""


def _codes(text: str) -> list[tuple[str, int, str]]:
    return [(d.code, d.line, d.path) for d in validate_text(text, environ={}).diagnostics]


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['echo hi']",
        "!!python/object:collections.OrderedDict {a: 1}",
        "!!set {a, b}",
        "!!omap [a: 1]",
        "!foo {a: 1}",
        "!!int {a: 1}",
    ],
)
def test_a_tag_on_a_list_or_mapping_is_refused(value: str) -> None:
    result = validate_text(BASE + f"description: {value}\n", environ={})
    assert not result.ok
    assert [(d.code, d.line, d.path) for d in result.diagnostics] == [("PR008", 8, "description")]
    assert "unsupported YAML tag" in result.diagnostics[0].message


def test_a_tagged_mapping_where_a_mapping_belongs_is_refused_too() -> None:
    text = BASE.replace("{model: openai/gpt-4o-mini}", "!!python/object:x {model: m}")
    assert ("PR008", 4, "models.mini") in _codes(text)


def test_plain_map_and_seq_tags_are_plain_data() -> None:
    text = BASE.replace("to: mini", "to: !!seq [mini]").replace(
        "{model: openai/gpt-4o-mini}", "!!map {model: openai/gpt-4o-mini}"
    )
    assert validate_text(text, environ={}).ok


@pytest.mark.parametrize(("tag", "text"), [("!!bool", "maybe"), ("!!null", "nothing")])
def test_an_explicit_scalar_tag_on_text_it_cannot_read_is_refused(tag: str, text: str) -> None:
    policy = BASE.replace("    to: mini", f"    to: mini\n    params: {{stream: {tag} {text}}}")
    result = validate_text(policy, environ={})
    assert not result.ok
    assert result.diagnostics[0].code == "PR004"
    assert repr(text) in result.diagnostics[0].message


def test_explicit_bool_and_null_tags_on_their_own_values_still_read() -> None:
    from policyroute.policy.load import load_yaml

    doc = load_yaml("a: !!bool True\nb: !!bool false\nc: !!null ~\nd: !!null\n")
    assert doc.diagnostics == []
    assert doc.data == {"a": True, "b": False, "c": None, "d": None}


@pytest.mark.parametrize("escape", ["\\UFFFFFFFF", "\\U00110000"])
def test_an_escape_past_the_last_unicode_character_is_a_located_syntax_error(
    escape: str,
) -> None:
    result = validate_text(BASE + f'description: "x{escape}"\n', environ={})
    (d,) = result.diagnostics
    assert (d.code, d.line, d.column) == ("PR002", 8, 16)
    assert escape in d.message


def test_a_bad_header_name_is_called_a_header_name() -> None:
    text = BASE.replace("    to: mini", "    to: mini\n    params: {extra_headers: {'a:b': x}}")
    (d,) = validate_text(text, environ={}).diagnostics
    assert (d.code, d.path) == ("PR013", 'routes[0].params.extra_headers["a:b"]')
    assert d.message == "'a:b' is not a valid HTTP header name"
