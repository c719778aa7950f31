"""Mutated policies never crash validation, and every diagnostic is well formed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyroute.policy.load import load_yaml
from policyroute.policy.validate import validate_text

VALID = sorted((Path(__file__).resolve().parent.parent / "policies" / "valid").glob("*.yaml"))
TEXTS = [p.read_text() for p in VALID]
TREES = [load_yaml(t).data for t in TEXTS]
WHOLE_FILE = {"PR001", "PR005", "PR009"}


def _strings(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node}
    children = [*node, *node.values()] if isinstance(node, dict) else node
    return set().union(*map(_strings, children)) if isinstance(children, list) else set()


# Strings the policies already use, so that a mutation can make a reference resolve or a name
# collide (paths random text almost never reaches), and regexes that Python warns about.
KNOWN_STRINGS = sorted(set().union(*map(_strings, TREES)) | {"[[a]", "[a-b--c]", "${UNSET_VAR}"})

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(KNOWN_STRINGS),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _check(text: str) -> None:
    result = validate_text(text, environ={})
    for d in result.diagnostics:
        assert d.code.startswith("PR")
        assert d.message
        assert d.line >= 1 or d.code in WHOLE_FILE, d


def _containers(node: Any) -> list[Any]:
    found = [node] if isinstance(node, (dict, list)) and node else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found += _containers(child)
    return found


@st.composite
def mutated_trees(draw: st.DrawFn) -> str:
    tree = copy.deepcopy(draw(st.sampled_from(TREES)))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(_containers(tree)))
        action = draw(st.sampled_from(["delete", "replace", "insert"]))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target)))
            if action == "delete":
                del target[key]
            elif action == "replace":
                target[key] = draw(json_values)
            else:
                key = draw(st.text(min_size=1, max_size=8) | st.sampled_from(KNOWN_STRINGS))
                target[key] = draw(json_values)
        elif target:
            index = draw(st.integers(0, len(target) - 1))
            if action == "delete":
                del target[index]
            else:
                target[index] = draw(json_values)
        if not _containers(tree):
            break
    return json.dumps(tree)  # JSON is YAML


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    lines = text.splitlines(keepends=True)
    action = draw(st.sampled_from(["truncate", "insert", "duplicate"]))
    if action == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if action == "insert":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.text(min_size=1, max_size=5)) + text[at:]
    i = draw(st.integers(0, len(lines) - 1))
    return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_trees())
def test_mutated_trees_never_crash(text: str) -> None:
    _check(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_texts())
def test_mutated_texts_never_crash(text: str) -> None:
    _check(text)
