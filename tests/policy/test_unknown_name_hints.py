"""A name that is no model, group or route, and close to none, is answered with the names the
policy does define, so the reader need not look them up; a close one is still suggested."""

from __future__ import annotations

from policyroute.policy.validate import validate_text

POLICY = """policyroute: 1
name: names
models:
  mini: {{model: openai/gpt-4o-mini}}
  sonnet: {{model: anthropic/claude-sonnet-4-5}}
groups:
  cheap: {{models: [mini]}}
routes:
  - {{name: default, to: [{target}, sonnet, cheap]}}
budgets:
  - name: b
    limit_usd: 1
    window: day
    routes: [{route}]
    on_exceed: {{downgrade: {downgrade}}}
"""


def _hints(target: str = "mini", route: str = "default", downgrade: str = "cheap") -> dict:
    text = POLICY.format(target=target, route=route, downgrade=downgrade)
    report = validate_text(text, environ={})
    return {(d.code, d.path): (d.message, d.hint) for d in report.diagnostics}


def test_an_unknown_target_lists_the_models_and_groups_defined() -> None:
    assert _hints(target="gpt4")[("PR101", "routes[0].to[0]")] == (
        "unknown model or group 'gpt4'",
        "models and groups defined: 'cheap', 'mini', 'sonnet'",
    )


def test_an_unknown_budget_route_lists_the_routes_defined() -> None:
    assert _hints(route="xyz")[("PR104", "budgets[0].routes[0]")] == (
        "unknown route 'xyz'",
        "routes defined: 'default'",
    )


def test_an_unknown_downgrade_target_lists_the_routes_and_groups_defined() -> None:
    assert _hints(downgrade="fallback")[("PR103", "budgets[0].on_exceed.downgrade")] == (
        "unknown route or group 'fallback'",
        "routes and groups defined: 'cheap', 'default'",
    )


def test_a_close_name_is_still_suggested() -> None:
    assert _hints(target="sonet")[("PR101", "routes[0].to[0]")] == (
        "unknown model or group 'sonet'",
        "did you mean 'sonnet'?",
    )


def test_a_long_list_is_cut_short() -> None:
    models = "".join(f"  m{i:02d}: {{{{model: openai/gpt-4o-mini}}}}\n" for i in range(20))
    text = POLICY.replace("models:\n", "models:\n" + models).format(
        target="zzz", route="default", downgrade="cheap"
    )
    (hint,) = [d.hint for d in validate_text(text, environ={}).diagnostics if d.code == "PR101"]
    assert hint is not None
    assert hint.startswith("models and groups defined: 'cheap', 'm00', 'm01',")
    assert hint.endswith(" and 11 more")
