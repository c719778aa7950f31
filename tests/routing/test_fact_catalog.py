"""The policy checks and the router agree on every fact: its name and the type of its value."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute.policy import facts as facts_module
from policyroute.policy.facts import CHEAP_FACTS, MISSING, RequestFacts
from policyroute.policy.facts_catalog import (
    DERIVED_FACTS,
    FACT_PREFIXES,
    FACT_ROOTS,
    fact_type,
    is_known_fact,
)
from policyroute.policy.schema import load_schema
from policyroute.policy.validate import validate_text
from policyroute.request import Request

SEGMENTS = st.sampled_from([*FACT_ROOTS, "", "user", "tier", "x", "Tags", "input"])
PATHS = st.lists(SEGMENTS, min_size=1, max_size=3).map(".".join) | st.text(max_size=12)

FITS: Mapping[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "str_or_null": lambda v: isinstance(v, str),  # null is absent: MISSING
    "list": lambda v: isinstance(v, (list, tuple)),
}


def checker_accepts(path: str) -> bool:
    """Whether validation accepts a policy with a route condition on ``path``."""
    policy = {
        "policyroute": 1,
        "name": "t",
        "models": {"mini": {"model": "openai/gpt-4o-mini"}},
        "routes": [
            {"name": "r", "when": {path: {"exists": True}}, "to": "mini"},
            {"name": "default", "to": "mini"},
        ],
    }
    return validate_text(json.dumps(policy), environ={}).ok


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        out = {key: out}
    return out


def full_request(path: str) -> RequestFacts:
    """A request that has every derived fact, and ``path`` too if it names a field."""
    head, _, rest = path.partition(".")
    mappings: dict[str, dict[str, Any]] = {prefix: {} for prefix in FACT_PREFIXES}
    if head in FACT_PREFIXES and rest:
        mappings[head] = _nest(rest.split("."), "value")
    request = Request(
        messages=[{"role": "user", "content": "hi"}],
        model="m",
        run_id="r",
        tags=("t",),
        metadata=mappings["metadata"],
        params=mappings["params"],
    )
    return RequestFacts(request, token_counter=lambda r: 3)


@settings(max_examples=200, deadline=None)
@given(PATHS)
def test_the_checks_accept_exactly_the_facts_the_router_resolves(path: str) -> None:
    accepted = checker_accepts(path)
    assert accepted == is_known_fact(path)
    assert accepted == (full_request(path).get(path) is not MISSING)


def test_every_derived_fact_has_a_getter_and_every_getter_a_catalogue_entry() -> None:
    assert set(facts_module._DERIVED_GETTERS) == set(DERIVED_FACTS)
    assert CHEAP_FACTS.issubset(DERIVED_FACTS)
    for name in DERIVED_FACTS:
        assert checker_accepts(name)
        assert full_request(name).get(name) is not MISSING


def test_the_facts_module_reexports_the_catalogue() -> None:
    assert facts_module.DERIVED_FACTS is DERIVED_FACTS
    assert facts_module.FACT_PREFIXES is FACT_PREFIXES
    assert facts_module.is_known_fact is is_known_fact


messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "human"]),
            "content": st.none()
            | st.text(max_size=5)
            | st.lists(
                st.sampled_from(
                    [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]
                ),
                max_size=2,
            ),
        }
    ),
    max_size=3,
)
requests = st.builds(
    Request,
    messages=messages,
    model=st.none() | st.text(max_size=3),
    tools=st.none() | st.just([{"type": "function", "function": {"name": "f"}}]),
    stream=st.booleans(),
    tags=st.lists(st.text(max_size=3), max_size=2).map(tuple),
    run_id=st.none() | st.text(max_size=3),
)


@settings(max_examples=100, deadline=None)
@given(requests)
def test_every_derived_fact_has_the_catalogued_type(request: Request) -> None:
    facts = RequestFacts(request, token_counter=lambda r: len(r.messages))
    for name, kind in DERIVED_FACTS.items():
        value = facts.get(name)
        assert value is MISSING or FITS[kind](value), (name, value)
        assert fact_type(name) == kind


def _descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from _descriptions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _descriptions(item)


def test_the_published_schema_lists_every_fact() -> None:
    (listing,) = (d for d in _descriptions(load_schema()) if d.startswith("A fact path ("))
    listed = {name.split(".")[0] for name in listing.split("(")[1].split(")")[0].split(", ")}
    assert listed == set(FACT_ROOTS)
