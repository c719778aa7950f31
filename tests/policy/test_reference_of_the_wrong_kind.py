"""A reference to a name the policy defines, but as another kind of thing (a route listed in a
group or in a route's ``to``, a model alias as a downgrade target), says what the name is and
what belongs there, instead of calling a defined name unknown with no hint.
"""

from __future__ import annotations

from policyroute.policy.validate import validate_text

BASE = """policyroute: 1
name: kinds
models:
  mini: {model: openai/gpt-4o-mini}
  haiku: {model: anthropic/claude-haiku-4-5}
routes:
  - name: code
    when: {metadata.task: code}
    to: haiku
  - name: default
    to: mini
"""


def _only(text: str, code: str) -> tuple[str, str, str | None]:
    (d,) = [d for d in validate_text(text, environ={}).diagnostics if d.code == code]
    return d.path, d.message, d.hint


def test_a_route_named_in_a_routes_to_is_called_a_route() -> None:
    text = BASE.replace("    to: haiku", "    to: [haiku, default]")
    path, message, hint = _only(text, "PR101")
    assert path == "routes[0].to[1]"
    assert message == "'default' is a route, not a model or group"
    assert hint is not None
    assert "models or groups" in hint


def test_a_route_listed_in_a_group_is_called_a_route() -> None:
    groups = "groups:\n  pool: {models: [haiku, code]}\n"
    text = BASE.replace("    to: haiku", "    to: pool") + groups
    path, message, _ = _only(text, "PR102")
    assert path == "groups.pool.models[1]"
    assert message == "'code' is a route, not a model or group"


def test_a_model_as_a_downgrade_target_is_called_a_model() -> None:
    budget = "budgets:\n  - {name: b, limit_usd: 1, window: day, on_exceed: {downgrade: mini}}\n"
    path, message, hint = _only(BASE + budget, "PR103")
    assert path == "budgets[0].on_exceed.downgrade"
    assert message == "'mini' is a model alias, not a route or group"
    assert hint is not None
    assert "group" in hint


def test_a_misspelt_name_still_gets_its_suggestion() -> None:
    _, message, hint = _only(BASE.replace("to: mini", "to: mnii"), "PR101")
    assert (message, hint) == ("unknown model or group 'mnii'", "did you mean 'mini'?")
    budget = "budgets:\n  - {name: b, limit_usd: 1, window: day, on_exceed: {downgrade: cod}}\n"
    _, message, hint = _only(BASE + budget, "PR103")
    assert (message, hint) == ("unknown route or group 'cod'", "did you mean 'code'?")
