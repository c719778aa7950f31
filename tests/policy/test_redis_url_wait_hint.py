"""PR139 on a store URL whose form is right but whose ``wait_replicas`` or ``wait_timeout`` is
wrong (or misspelt) says what those arguments take, instead of listing URL forms the URL
already has; a URL of the wrong form keeps the list of forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main

HEAD = (
    "policyroute: 1\nname: redis-wait-hint\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    "routes: [{name: r, to: m}]\n"
)

# Each URL with what the message says of it.
WAIT_PROBLEMS = [
    ("redis://cache:6379/0?wait_replicas=1&wait_timeout=5", "gives wait_timeout 5 s"),
    ("redis://cache:6379/0?wait_timeout=0.05", "passes wait_timeout without wait_replicas"),
    ("redis://cache:6379/0?wait_replicas=one", "gives wait_replicas a value that is not"),
    ("redis+cluster://n1:7000,n2:7001?wait_replicas=1", "which a cluster does not take"),
    (
        "redis://cache:6379/0?wait_replica=1",
        "passes the query argument 'wait_replica', which no redis-py connection takes"
        " (did you mean wait_replicas?)",
    ),
    (
        "redis://cache:6379/0?wait_replicas=1&wait_timout=0.05",
        "passes the query argument 'wait_timout', which no redis-py connection takes"
        " (did you mean wait_timeout?)",
    ),
]


def _diagnostic(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str) -> dict[str, Any]:
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + f'store: {{backend: redis, url: "{url}"}}\n', encoding="utf-8")
    assert main(["validate", "--format", "json", str(path)]) == 1
    (found,) = json.loads(capsys.readouterr().out)["files"][0]["diagnostics"]
    assert (found["code"], found["path"]) == ("PR139", "store.url")
    return found  # type: ignore[no-any-return]


@pytest.mark.parametrize(("url", "problem"), WAIT_PROBLEMS)
def test_a_wait_argument_problem_hints_at_what_the_arguments_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    found = _diagnostic(tmp_path, capsys, url)

    assert problem in found["message"]
    assert found["hint"].startswith("wait_replicas takes a whole number of replicas")
    assert "0.1 s below socket_timeout" in found["hint"]
    assert "redis+sentinel://host" not in found["hint"]


def test_a_url_of_the_wrong_form_still_lists_the_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _diagnostic(tmp_path, capsys, "redis://cache:63x9/0?wait_replicas=1")

    assert "has a malformed host or port" in found["message"]
    assert found["hint"].startswith("write redis://host:6379/0")


def test_a_wait_timeout_exactly_the_overrun_below_the_command_timeout_is_refused_as_the_hint_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Redis may wait 0.1 s past wait_timeout; 4.9 + 0.1 reaches the 5 s socket timeout.
    found = _diagnostic(tmp_path, capsys, "redis://cache:6379/0?wait_replicas=1&wait_timeout=4.9")

    assert "gives wait_timeout 4.9 s" in found["message"]
    assert "more than 0.1 s below socket_timeout" in found["hint"]
