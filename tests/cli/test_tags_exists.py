"""``tags: {exists: ...}`` tests whether the call has any tag.

Tags are a list, empty when the call has none; an empty list counted as present, so
``tags: {exists: false}`` never held and ``exists: true`` held for every call. A call without
tags has no ``tags`` fact, as a call without ``metadata.user`` has no ``metadata.user``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: tagged
models:
  mini: {{model: openai/gpt-4o-mini}}
routes:
  - name: {first}
    when: {{tags: {{exists: {first_exists}}}}}
    to: mini
  - name: {second}
    when: {{tags: {{exists: {second_exists}}}}}
    to: mini
  - name: anonymous
    when: {{metadata.user: {{exists: false}}}}
    to: mini
  - name: default
    to: mini
"""


def _policy(tmp_path: Path, *, tagged_first: bool) -> Path:
    order = [("untagged", "false"), ("tagged", "true")]
    if tagged_first:
        order.reverse()
    (first, first_exists), (second, second_exists) = order
    path = tmp_path / "policy.yaml"
    path.write_text(
        POLICY.format(
            first=first, first_exists=first_exists, second=second, second_exists=second_exists
        ),
        encoding="utf-8",
    )
    return path


def _explain(
    tmp_path: Path, policy: Path, request: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(path), "--format", "json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


@pytest.mark.parametrize(
    ("request_", "route"),
    [
        ({"messages": "hi"}, "untagged"),
        ({"messages": "hi", "tags": []}, "untagged"),
        ({"messages": "hi", "tags": ["beta"]}, "tagged"),
    ],
)
@pytest.mark.parametrize("tagged_first", [False, True])
def test_exists_on_tags_tells_calls_with_tags_from_calls_without(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_: dict[str, Any],
    route: str,
    tagged_first: bool,
) -> None:
    policy = _policy(tmp_path, tagged_first=tagged_first)
    assert main(["validate", "--strict", str(policy)]) == 0
    capsys.readouterr()
    assert _explain(tmp_path, policy, request_, capsys)["route"] == route


def test_explain_says_a_call_without_tags_has_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, tagged_first=True)
    trace = _explain(tmp_path, policy, {"messages": "hi"}, capsys)["trace"]
    skipped = next(line for line in trace if "'tagged'" in line)
    assert "tags is absent" in skipped, trace
    matched = next(line for line in trace if "'untagged'" in line)
    assert "tags absent" in matched, trace


def test_policy_tests_see_the_same_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(tmp_path, tagged_first=True)
    path = tmp_path / "policy.tests.yaml"
    path.write_text(
        "policy: policy.yaml\ncases:\n"
        "  - name: no tags\n    request: {messages: hi}\n    expect: {route: untagged}\n"
        "  - name: empty tags\n    request: {messages: hi, tags: []}\n"
        "    expect: {route: untagged}\n"
        "  - name: a tag\n    request: {messages: hi, tags: [beta]}\n"
        "    expect: {route: tagged}\n",
        encoding="utf-8",
    )
    assert main(["test", str(path)]) == 0, capsys.readouterr().out


METADATA_POLICY = """\
policyroute: 1
name: users
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - {name: anonymous, when: {metadata.user: {exists: false}}, to: mini}
  - {name: known, when: {metadata.user: {exists: true}}, to: mini}
  - {name: default, to: mini}
"""


@pytest.mark.parametrize(
    ("metadata", "route"),
    [
        (None, "anonymous"),
        ({}, "anonymous"),
        ({"user": None}, "anonymous"),
        ({"user": "u1"}, "known"),
        ({"user": ""}, "known"),
        ({"user": {}}, "known"),
    ],
)
def test_exists_on_metadata_is_false_only_for_a_missing_or_null_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], metadata: Any, route: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(METADATA_POLICY, encoding="utf-8")
    request: dict[str, Any] = {"messages": "hi"}
    if metadata is not None:
        request["metadata"] = metadata
    assert _explain(tmp_path, policy, request, capsys)["route"] == route
