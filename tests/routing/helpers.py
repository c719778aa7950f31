"""Builders for PolicySpec objects in routing tests (no YAML needed), and the policy text of a
one-group route for tests that call through the fake provider."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from policyroute.policy.model import (
    FactCondition,
    GroupSpec,
    ModelSpec,
    PolicySpec,
    PriceSpec,
    Requirements,
    RouteSpec,
    Strategy,
    TargetSpec,
    Test,
)

ALL_CAPS = {"tools": True, "vision": True, "json_schema": True, "reasoning": False}


def model(
    alias: str,
    *,
    price: tuple[str, str] | None = ("1", "2"),
    window: int | None = 100_000,
    caps: Mapping[str, bool] | None = None,
    **kwargs: Any,
) -> ModelSpec:
    """A deployment under a made-up litellm name, so nothing comes from litellm's map."""
    return ModelSpec(
        alias=alias,
        model=kwargs.pop("model", f"test/{alias}"),
        price=None if price is None else PriceSpec(Decimal(price[0]), Decimal(price[1])),
        context_window=window,
        capabilities=dict(ALL_CAPS if caps is None else caps),
        **kwargs,
    )


def fc(fact: str, op: str, value: Any) -> FactCondition:
    return FactCondition(fact, (Test(op, value),))  # type: ignore[arg-type]


def route(name: str, to: str | tuple[str, ...], when: Any = None, **kwargs: Any) -> RouteSpec:
    names = (to,) if isinstance(to, str) else to
    return RouteSpec(name=name, to=TargetSpec(names), when=when, **kwargs)


def group(
    name: str, members: tuple[str, ...], strategy: Strategy = "ordered", **kwargs: Any
) -> GroupSpec:
    return GroupSpec(name=name, strategy=strategy, models=members, **kwargs)


def policy(
    routes: Iterable[RouteSpec],
    models: Iterable[ModelSpec] = (),
    groups: Iterable[GroupSpec] = (),
    **kwargs: Any,
) -> PolicySpec:
    model_list = list(models) or [model("a"), model("b"), model("c")]
    return PolicySpec(
        name="test",
        version=1,
        models={m.alias: m for m in model_list},
        groups={g.name: g for g in groups},
        routes=tuple(routes),
        **kwargs,
    )


def msgs(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


__all__ = ["Requirements", "fc", "group", "model", "msgs", "policy", "route"]


_POOL_MODEL = """
  {alias}: {{model: openai/{alias}, api_base: "{base}", api_key: "${{POLICYROUTE_TEST_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}"""


def pool_policy(base: str, name: str, aliases: Iterable[str], strategy: str = "fastest") -> str:
    """The text of a policy whose one route goes to the group ``pool`` of ``aliases`` (each
    ``openai/<alias>`` at ``base``) ordered by ``strategy``; no retries, and a breaker that opens
    only after 1000 failures, so routing alone decides each attempt.

    >>> "strategy: fastest, models: [a, b]" in pool_policy("http://x", "p", ["a", "b"])
    True
    """
    aliases = list(aliases)
    models = "".join(_POOL_MODEL.format(alias=a, base=base) for a in aliases)
    return f"""policyroute: 1
name: {name}
models:{models}
groups:
  pool: {{strategy: {strategy}, models: [{", ".join(aliases)}]}}
routes:
  - name: default
    to: pool
defaults:
  retry: {{attempts: 0}}
  circuit_breaker: {{failures: 1000, cooldown: 30s}}
receipts: {{sink: none}}
"""
