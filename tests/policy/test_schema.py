"""The published schema is valid 2020-12, closed everywhere, documented everywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from policyroute.policy.schema import load_schema
from policyroute.policy.validate import validate_text

ROOT = Path(__file__).resolve().parents[2]
# The only open maps: keys are user-chosen names, each value checked by a schema.
OPEN_MAPS = {"models", "groups", "Condition", "extra_headers"}


def _objects(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" or "object" in node.get("type", []):
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


def test_published_and_packaged_schemas_are_identical() -> None:
    published = (ROOT / "schemas" / "policy.schema.json").read_bytes()
    packaged = (ROOT / "policyroute" / "schema" / "policy.schema.json").read_bytes()
    assert published == packaged


def test_schema_is_valid_2020_12() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert schema["title"]


def test_every_object_is_closed_and_every_property_described() -> None:
    schema = load_schema()
    for where, node in _objects(schema, "#"):
        closed = node.get("additionalProperties")
        name = where.rsplit("/", 1)[-1]
        if closed is False:
            continue
        assert isinstance(closed, dict), f"{where} leaves additionalProperties open"
        assert name in OPEN_MAPS, f"{where} is an open map but not a known one"
        for props in ("properties", "patternProperties"):
            for prop, sub in node.get(props, {}).items():
                assert sub.get("description"), f"{where}/{prop} has no description"
    for where, node in _objects(schema, "#"):
        for props in ("properties", "patternProperties"):
            for prop, sub in node.get(props, {}).items():
                assert sub.get("description"), f"{where}/{props}/{prop} has no description"


def test_every_def_named_in_the_brief_exists() -> None:
    defs = load_schema()["$defs"]
    for name in ("Duration", "Condition", "Test", "CallParams", "Requirements", "Price", "Target"):
        assert name in defs


def test_valid_fixture_validates_against_the_raw_schema() -> None:
    # The schema is usable on its own (by editors), without policyroute's mapping layer.
    from policyroute.policy.load import load_yaml

    text = (ROOT / "tests" / "policies" / "valid" / "everything.yaml").read_text()
    data = load_yaml(text).data
    errors = list(Draft202012Validator(json.loads(json.dumps(load_schema()))).iter_errors(data))
    assert errors == []


def _codes(text: str) -> list[tuple[str, str, str | None]]:
    return [(d.code, d.path, d.hint) for d in validate_text(text, environ={}).diagnostics]


HEAD = "policyroute: 1\nname: t\nmodels: {m: {model: openai/gpt-4o-mini}}\n"


def test_condition_errors_are_one_readable_message_each() -> None:
    text = HEAD + "routes:\n  - {name: r, when: {any: [{not: {stream: {exist: true}}}]}, to: m}\n"
    text += "  - {name: d, to: m}\n"
    assert _codes(text) == [
        ("PR010", "routes[0].when.any[0].not.stream.exist", "did you mean 'exists'?")
    ]


def test_wrong_type_in_call_params_names_the_expected_type() -> None:
    text = HEAD + "routes: [{name: d, to: m, params: {stop: 3}}]\n"
    result = validate_text(text, environ={})
    (d,) = result.diagnostics
    assert (d.code, d.path) == ("PR012", "routes[0].params.stop")
    assert d.message == "expected stop sequence or list of them, got integer"


def test_reference_documents_every_code() -> None:
    from policyroute.policy.codes import CODES

    text = (ROOT / "docs" / "policy-language.md").read_text()
    for code in CODES:
        assert f"`{code}`" in text, code


def test_a_string_condition_is_told_how_conditions_are_written() -> None:
    text = HEAD + "routes:\n  - {name: r, when: \"metadata.tier == 'gold'\", to: m}\n"
    text += "  - {name: d, to: m}\n"
    ((code, path, hint),) = _codes(text)
    assert (code, path) == ("PR012", "routes[0].when")
    assert "when: {metadata.tier: gold" in str(hint)


def test_keys_from_litellm_router_configs_say_what_the_policy_uses() -> None:
    text = HEAD + "routes:\n  - {name: d, to: m, fallbacks: [m]}\n"
    text += "budgets: [{name: b, max_budget: 5, limit_usd: 5, window: day}]\n"
    hints = {path: hint for _, path, hint in _codes(text)}
    assert "later entries of 'to'" in str(hints["routes[0].fallbacks"])
    assert "'limit_usd'" in str(hints["budgets[0].max_budget"])


def test_a_near_spelling_wins_over_a_foreign_key_hint() -> None:
    # 'retries' is both a near spelling of 'retry' (under defaults) and a Router key.
    text = HEAD + "routes: [{name: d, to: m}]\ndefaults: {retries: {attempts: 2}}\n"
    ((code, path, hint),) = _codes(text)
    assert (code, path, hint) == ("PR010", "defaults.retries", "did you mean 'retry'?")
