"""Messages spell null, true and false as the request or policy wrote them.

A request field given as ``null`` was reported as ``got None`` and one given ``true`` as
``got True``: Python's spelling of a value the user wrote in YAML or JSON, which sends them
looking for a ``None`` they never wrote. Request checks (``policyroute explain --request``,
and calls through the library) and the policy's condition diagnostics now say ``null``,
``true`` and ``false``, inside lists and mappings too; text in quotes stays as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute._written import written
from policyroute.cli import main


def _explain_error(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: str
) -> str:
    path = tmp_path / "req.yaml"
    path.write_text(request, encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(path)]) == 1
    err = capsys.readouterr().err
    prefix = f"policyroute explain: error: {path}:"
    assert err.startswith(prefix)
    return err.removeprefix(prefix).split(": ", 1)[1].strip()


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        (
            "messages: hi\ntags: [null, true]\n",
            "request field 'tags' must be a list of strings, got [null, true]",
        ),
        (
            "messages: hi\ntool_choice: true\n",
            "request field 'tool_choice' must be a string such as 'auto' or a mapping, got true",
        ),
        (
            "messages: hi\nmax_tokens: false\n",
            "request parameter 'max_tokens' must be a whole number of at least 1, got false",
        ),
        (
            "messages: hi\nstop: ['END', null]\n",
            "request parameter 'stop' must be a string or a list of strings, got ['END', null]",
        ),
        (
            "messages: [{role: null, content: hi}]\n",
            "request field 'messages[0].role' must be a non-empty string such as 'user', got null",
        ),
        (
            "messages: [null]\n",
            "request field 'messages[0]' must be a mapping with 'role' and 'content', got null",
        ),
        (
            "messages: [{role: user, content: [null]}]\n",
            "request field 'messages[0].content[0]' must be a mapping with a 'type', got null",
        ),
        (
            "messages: hi\nresponse_format: {type: json_schema, json_schema: null}\n",
            "request field 'response_format.json_schema' must be a mapping such as"
            " {'name': 'answer', 'schema': {...}}, got null",
        ),
    ],
)
def test_explain_names_a_request_value_as_written(
    policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_text: str,
    message: str,
) -> None:
    error = _explain_error(policy_path, tmp_path, capsys, request_text)
    assert error == message


POLICY = """\
policyroute: 1
name: conditions
models: {m: {model: openai/gpt-4o-mini}}
routes:
  - {name: a, when: {tags: {contains: true}}, to: m}
  - {name: b, when: {tags: {in: [null, false]}}, to: m}
  - {name: c, when: {model: true}, to: m}
  - {name: d, when: {model: {contains: false}}, to: m}
  - {name: e, when: {model: {in: [true, 3]}}, to: m}
  - {name: f, to: m}
"""


def test_validate_names_a_condition_value_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")

    main(["validate", str(policy)])

    out = capsys.readouterr().out
    assert "tags are text: no tag can equal true (" in out
    assert "tags are text: no value in [null, false] can equal a tag (" in out
    assert "model: true can never equal this fact, which is text or null (" in out
    assert "'contains' finds text in text, but false is not text (" in out
    assert "no value in [true, 3] can equal this fact, which is " in out
    for python in ("None", "True", "False"):
        assert python not in out


def test_written_keeps_reprs_cycles_and_the_limit() -> None:
    looped: list[object] = [None]
    looped.append(looped)
    assert written(looped) == "[null, [...]]"
    assert written((None,)) == "(null,)"
    assert written({"None": True, 2: "True"}) == "{'None': true, 2: 'True'}"
    assert written(list(range(10**6)), limit=20) == "[0, 1, 2, 3, 4, 5..."
    assert written("x" * 60, limit=60) == "'" + "x" * 56 + "..."
