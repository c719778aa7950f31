"""explain names the budget lines a call is charged to exactly as the budget guard keys them.

It used to write the scope with ``str()`` and join tags with commas, while the guard charges
one line per distinct tag and writes other values as JSON: explain showed ``tags=a,b,a`` for a
call charged to ``a`` and to ``b``, ``True`` for the line ``budget status`` lists as ``true``,
and raised a bare ``ValueError`` on an integer too long for ``str()``.
"""

from __future__ import annotations

from typing import Any

import pytest

from policyroute.budgets.windows import MISSING_SCOPE, scope_values
from policyroute.errors import RequestError
from policyroute.explain import explain, render_text
from policyroute.policy.facts import request_from_mapping
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request

POLICY = """policyroute: 1
name: scopes
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
defaults: {max_tokens: 100}
budgets:
  - {name: per-tag, per: tags, limit_usd: 5, window: day}
  - {name: per-user, per: metadata.user, limit_usd: 5, window: day}
"""


def _one(request: Request) -> int:
    return 1


def _explained(request: dict[str, Any]) -> list[tuple[str, str | None]]:
    ex = explain(load_policy_text(POLICY), request, token_counter=_one)
    return [(b.name, b.scope) for b in ex.budgets]


def _charged(request: dict[str, Any]) -> list[tuple[str, str | None]]:
    spec = load_policy_text(POLICY).spec
    req = request_from_mapping(request)
    return [
        (b.name, None if scope == MISSING_SCOPE else scope)
        for b in spec.budgets
        for scope in scope_values(b.per, req, route="default", model="mini")
    ]


@pytest.mark.parametrize(
    "request_",
    [
        {"messages": "hi", "tags": ["a", "b", "a"], "metadata": {"user": True}},
        {"messages": "hi", "metadata": {"user": {"id": 1, "teams": ["x", "y"]}}},
        {"messages": "hi", "metadata": {"user": 1.0}},
        {"messages": "hi", "metadata": {"user": "u7"}, "tags": []},
        {"messages": "hi"},
    ],
)
def test_explain_lists_the_lines_the_guard_charges(request_: dict[str, Any]) -> None:
    assert _explained(request_) == _charged(request_)


def test_each_tag_is_a_line_of_its_own_in_the_text() -> None:
    request = {"messages": "hi", "tags": ["a", "b"]}
    text = render_text(explain(load_policy_text(POLICY), request, token_counter=_one))
    assert "tags=a " in text
    assert "tags=b " in text
    assert "tags=a,b" not in text


def test_a_scope_value_that_cannot_be_written_is_a_request_error() -> None:
    request = {"messages": "hi", "metadata": {"user": 10**5000}}
    with pytest.raises(RequestError, match=r"budget scope 'metadata\.user'"):
        explain(load_policy_text(POLICY), request, token_counter=_one)
