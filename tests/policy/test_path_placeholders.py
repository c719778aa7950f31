"""PR143: a {placeholder} in a file path that nothing fills is warned about; the JSON lines
sink's {date} is not."""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

HEAD = """policyroute: 1
name: t
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - {name: default, to: mini}
"""


def _found(tail: str) -> list[tuple[str, str]]:
    result = validate_text(HEAD + tail, environ={})
    return [(d.path, d.message) for d in result.diagnostics if d.code == "PR143"]


@pytest.mark.parametrize(
    "tail",
    [
        'receipts: {sink: jsonl, path: "logs/{date}.jsonl"}\n',
        'receipts: {sink: jsonl, path: "logs/receipts.jsonl"}\n',
        # a path the chosen sink or backend does not read is another warning's business
        'receipts: {sink: none, path: "logs/{host}.jsonl"}\n',
        'store: {backend: memory, path: "b-{date}.sqlite3"}\n',
    ],
)
def test_paths_without_unfilled_placeholders_are_not_warned_about(tail: str) -> None:
    assert _found(tail) == []


def test_each_unfilled_placeholder_of_a_receipts_path_is_named_once() -> None:
    found = _found('receipts: {path: "logs/{host}/{pid}-{host}-{date}.jsonl"}\n')
    assert [path for path, _ in found] == ["receipts.path", "receipts.path"]
    assert "{host}" in found[0][1]
    assert "{pid}" in found[1][1]
    assert all("only {date} is filled" in message for _, message in found)


def test_date_is_unfilled_in_the_sqlite_sink_and_store_paths() -> None:
    found = _found(
        'receipts: {sink: sqlite, path: "r-{date}.sqlite3"}\nstore: {path: "b-{date}.sqlite3"}\n'
    )
    assert [path for path, _ in found] == ["receipts.path", "store.path"]
    assert all("{date}" in m and "nothing is filled" in m for _, m in found)


def test_an_environment_reference_is_not_taken_for_a_placeholder() -> None:
    result = validate_text(HEAD + 'receipts: {path: "logs/${HOST}.jsonl"}\n', environ={})
    assert [d.code for d in result.diagnostics] == ["PR121"]
