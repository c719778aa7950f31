"""Python's warnings about a regex become diagnostics, the same every time, never exceptions."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from policyroute.policy.loader import load_policy
from policyroute.policy.regexes import compile_quietly, regex_warnings
from policyroute.policy.validate import validate_text

FIXTURE = (
    Path(__file__).resolve().parent.parent / "policies" / "invalid" / "regex-future-meaning.yaml"
)


@pytest.mark.parametrize("pattern", ["[[a]", "[a-b--c]", "[a&&b]", "[a~~b]", "[a||b]"])
def test_every_future_meaning_warning_is_reported_on_every_call(pattern: str) -> None:
    re.compile("(?:)")  # other patterns in the cache must not matter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        re.compile(pattern)  # now cached: re would not warn again by itself
    assert len(regex_warnings(pattern)) == 1
    assert regex_warnings(pattern) == regex_warnings(pattern)


def test_a_broken_regex_still_raises() -> None:
    with pytest.raises(re.error):
        regex_warnings("[unclosed")
    with pytest.raises(re.error):
        regex_warnings("[a--b]")  # re warns, then fails: the failure wins
    with pytest.raises(re.error):
        compile_quietly("[unclosed")


def test_validation_reports_a_warning_twice_in_a_row_and_never_raises() -> None:
    text = FIXTURE.read_text()
    first, second = (validate_text(text, environ={}) for _ in range(2))
    assert first.diagnostics == second.diagnostics
    ((d),) = first.diagnostics
    assert (d.code, d.severity) == ("PR115", "warning")
    assert "Possible nested set" in d.message


def test_a_policy_with_such_a_regex_loads_and_routes_without_warning() -> None:
    # pytest turns warnings into errors: loading would raise if the compiler warned
    policy = load_policy(FIXTURE)
    assert policy.route({"messages": "[a]"}).route == "r"
