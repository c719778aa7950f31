"""Builders for PolicySpec objects in routing tests (no YAML needed)."""

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
