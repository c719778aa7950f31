"""``load_policy`` takes a policy's YAML text as well as its path, as every other API that takes
"a path or the text" does (``policyroute.completion(policy=...)``, ``ChatPolicyRoute(policy=...)``):
a string with a line break is the text. Given text, it used to look for a file named by the whole
policy and fail with PR001 "No such file or directory", quoting the policy twice as the file name.
"""

from __future__ import annotations

import random

import pytest

import policyroute
from policyroute.policy.facts import request_from_mapping

POLICY = """\
policyroute: 1
name: from-text
models:
  mini: {model: openai/gpt-4o-mini}
  big: {model: openai/gpt-4o}
groups:
  drawn: {strategy: weighted, models: [mini, big]}
routes:
  - name: code
    when: {metadata.task: code}
    to: big
  - name: default
    to: drawn
"""


def test_load_policy_takes_yaml_text_and_routes_by_it() -> None:
    policy = policyroute.load_policy(POLICY)
    assert policy.spec.name == "from-text"
    code = request_from_mapping({"messages": "hi", "metadata": {"task": "code"}})
    assert policy.route(code).route == "code"
    assert policy.route(request_from_mapping({"messages": "hi"})).route == "default"


def test_load_policy_text_keeps_the_seeded_order_of_weighted_groups() -> None:
    def orders(seed: int) -> list[list[str]]:
        policy = policyroute.load_policy(POLICY, rng=random.Random(seed))
        request = request_from_mapping({"messages": "hi"})
        return [[c.alias for c in policy.route(request).candidates] for _ in range(20)]

    assert orders(7) == orders(7)


def test_invalid_text_is_reported_at_its_line_not_as_a_missing_file() -> None:
    with pytest.raises(policyroute.PolicyValidationError) as caught:
        policyroute.load_policy(POLICY.replace("to: big", "to: bgi"))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "PR101"
    assert (diagnostic.file, diagnostic.line) == ("<string>", 11)
    assert "policyroute: 1" not in str(caught.value)


def test_strict_applies_to_text_too() -> None:
    unused = POLICY.replace(
        "  big: {model: openai/gpt-4o}\n",
        "  big: {model: openai/gpt-4o}\n  spare: {model: openai/gpt-4o}\n",
    )
    assert policyroute.load_policy(unused).spec.name == "from-text"
    with pytest.raises(policyroute.PolicyValidationError) as caught:
        policyroute.load_policy(unused, strict=True)
    assert [d.code for d in caught.value.diagnostics] == ["PR105"]
