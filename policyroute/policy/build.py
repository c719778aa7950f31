"""Build a :class:`PolicySpec` from a loaded tree that passed the schema and semantic checks.

Durations become float seconds, money becomes :class:`~decimal.Decimal` parsed from the YAML
source text (never through a float), ``api_key: ${VAR}`` becomes a :class:`Secret`, and
``${VAR}`` in ``api_base`` and ``store.url`` is expanded from ``environ``. Lists in condition
values become tuples so the spec stays immutable.

Example:
    >>> parse_duration("1.5s"), parse_duration("6h"), parse_duration(2)
    (1.5, 21600.0, 2.0)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, cast

from policyroute.policy.envrefs import env_names, expand_env, is_single_ref
from policyroute.policy.load import JsonPath, LoadedDocument
from policyroute.policy.model import (
    AllOf,
    AnyOf,
    BackoffSpec,
    BudgetSpec,
    CircuitBreakerSpec,
    Condition,
    DefaultsSpec,
    FactCondition,
    GroupSpec,
    ModelSpec,
    Not,
    OnExceed,
    PolicySpec,
    PriceSpec,
    ReceiptsSpec,
    Requirements,
    RetrySpec,
    RouteSpec,
    Secret,
    StoreSpec,
    TargetSpec,
    Test,
    UnsetVariable,
    WindowSpec,
)

__all__ = ["build_condition", "build_spec", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")


def parse_duration(value: float | str) -> float:
    """Seconds in a duration: a number of seconds or ``<number><ms|s|m|h|d>``."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


# Call parameters the schema types as integers.
_INTEGER_PARAMS = ("max_tokens", "seed")


def _whole(value: Any) -> Any:
    """A number the schema took as an integer as an ``int``: JSON Schema counts ``100.0`` as
    one, and token counts multiply ``Decimal`` prices, which a float cannot."""
    return int(value) if isinstance(value, float) else value


def _params(tree: Mapping[str, Any]) -> Any:
    return _frozen({k: _whole(v) if k in _INTEGER_PARAMS else v for k, v in tree.items()})


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def build_condition(tree: Mapping[str, Any]) -> Condition:
    """The Condition tree for one ``when`` mapping (several keys become an ``AllOf``)."""
    items: list[Condition] = []
    for key, value in tree.items():
        if key == "all":
            items.append(AllOf(tuple(build_condition(c) for c in value)))
        elif key == "any":
            items.append(AnyOf(tuple(build_condition(c) for c in value)))
        elif key == "not":
            items.append(Not(build_condition(value)))
        elif isinstance(value, dict):
            tests = tuple(Test(op, _frozen(v)) for op, v in value.items())
            items.append(FactCondition(key, tests))
        else:
            items.append(FactCondition(key, (Test("eq", value),)))
    return items[0] if len(items) == 1 else AllOf(tuple(items))


class _Builder:
    def __init__(self, doc: LoadedDocument, environ: Mapping[str, str]) -> None:
        self.doc = doc
        self.environ = environ

    def money(self, value: Any, path: JsonPath) -> Decimal:
        raw = self.doc.raw_scalars.get(path)
        if raw is not None:
            return Decimal(raw.replace("_", ""))
        return Decimal(str(value))

    def price(self, tree: Mapping[str, Any], path: JsonPath) -> PriceSpec:
        def get(key: str) -> Decimal | None:
            return self.money(tree[key], (*path, key)) if key in tree else None

        return PriceSpec(
            input_per_mtok=self.money(tree["input_per_mtok"], (*path, "input_per_mtok")),
            output_per_mtok=self.money(tree["output_per_mtok"], (*path, "output_per_mtok")),
            cache_read_per_mtok=get("cache_read_per_mtok"),
            cache_write_per_mtok=get("cache_write_per_mtok"),
            reasoning_per_mtok=get("reasoning_per_mtok"),
        )

    def model(self, alias: str, tree: Mapping[str, Any]) -> ModelSpec:
        path: JsonPath = ("models", alias)
        key = tree.get("api_key")
        secret = None
        if isinstance(key, str) and is_single_ref(key):
            name = env_names(key)[0]
            secret = Secret(self.environ.get(name), source=name)
        base = tree.get("api_base")
        return ModelSpec(
            alias=alias,
            model=tree["model"],
            api_base=expand_env(base, self.environ) if base is not None else None,
            api_key=secret,
            api_version=tree.get("api_version"),
            timeout=parse_duration(tree["timeout"]) if "timeout" in tree else None,
            price=self.price(tree["price"], (*path, "price")) if "price" in tree else None,
            context_window=_whole(tree.get("context_window")),
            max_output_tokens=_whole(tree.get("max_output_tokens")),
            max_image_tokens=_whole(tree.get("max_image_tokens")),
            max_server_tool_cost_usd=(
                self.money(tree["max_server_tool_cost_usd"], (*path, "max_server_tool_cost_usd"))
                if "max_server_tool_cost_usd" in tree
                else None
            ),
            capabilities=MappingProxyType(dict(tree.get("capabilities", {}))),
            tier=tree.get("tier"),
            weight=float(tree.get("weight", 1)),
            tags=tuple(tree.get("tags", ())),
            params=_params(tree.get("params", {})),
            unset_env=_unset_env(base, secret, self.environ),
        )

    def budget(self, i: int, tree: Mapping[str, Any]) -> BudgetSpec:
        zone = tree.get("timezone", "UTC")
        window = tree["window"]
        if window in ("call", "day", "week", "month"):
            spec = WindowSpec(kind=window, timezone=zone)
        else:
            spec = WindowSpec(kind="rolling", seconds=parse_duration(window), timezone=zone)
        on_exceed = tree.get("on_exceed", "block")
        if isinstance(on_exceed, dict) and "downgrade" in on_exceed:
            action = OnExceed("downgrade", target=on_exceed["downgrade"])
        elif isinstance(on_exceed, dict):
            clamp = on_exceed["clamp_max_tokens"]
            action = OnExceed("clamp_max_tokens", min_tokens=_whole(clamp.get("min_tokens", 1)))
        else:
            action = OnExceed("block")
        routes = tree.get("routes")
        return BudgetSpec(
            name=tree["name"],
            limit_usd=self.money(tree["limit_usd"], ("budgets", i, "limit_usd")),
            window=spec,
            per=tree.get("per"),
            warn_at=tuple(float(w) for w in tree.get("warn_at", ())),
            on_exceed=action,
            routes=tuple(routes) if routes is not None else None,
        )

    def store(self, tree: Mapping[str, Any]) -> StoreSpec:
        url: Secret | str | None = tree.get("url")
        if isinstance(url, str) and "${" in url:
            # The URL may carry a password taken from the environment: keep it masked.
            url = Secret(expand_env(url, self.environ), source="+".join(env_names(url)))
        base = StoreSpec()
        return StoreSpec(
            backend=tree.get("backend", base.backend),
            path=tree.get("path", base.path),
            url=url,
            lease=parse_duration(tree.get("lease", base.lease)),
            prefix=tree.get("prefix", base.prefix),
            lock_timeout=parse_duration(tree.get("lock_timeout", base.lock_timeout)),
        )


def _requirements(tree: Mapping[str, Any] | None) -> Requirements:
    if not tree:
        return Requirements()
    return Requirements(
        **{k: _whole(v) if k == "min_context_window" else v for k, v in tree.items()}
    )


def _retry(tree: Mapping[str, Any]) -> RetrySpec:
    base = RetrySpec()
    b = tree.get("backoff", {})
    backoff = BackoffSpec(
        initial=parse_duration(b.get("initial", base.backoff.initial)),
        max=parse_duration(b.get("max", base.backoff.max)),
        multiplier=float(b.get("multiplier", base.backoff.multiplier)),
        jitter=b.get("jitter", base.backoff.jitter),
    )
    return RetrySpec(
        attempts=_whole(tree.get("attempts", base.attempts)),
        backoff=backoff,
        on=frozenset(tree["on"]) if "on" in tree else base.on,
        fallback_on=frozenset(tree["fallback_on"]) if "fallback_on" in tree else base.fallback_on,
        retry_after_max=parse_duration(tree.get("retry_after_max", base.retry_after_max)),
    )


def _defaults(tree: Mapping[str, Any]) -> DefaultsSpec:
    base = DefaultsSpec()

    def dur(key: str, default: float | None) -> float | None:
        return parse_duration(tree[key]) if key in tree else default

    cb = tree.get("circuit_breaker", {})
    return DefaultsSpec(
        retry=_retry(tree.get("retry", {})),
        timeout=dur("timeout", base.timeout),
        first_token_timeout=dur("first_token_timeout", base.first_token_timeout),
        idle_timeout=dur("idle_timeout", base.idle_timeout),
        circuit_breaker=CircuitBreakerSpec(
            failures=_whole(cb.get("failures", base.circuit_breaker.failures)),
            cooldown=parse_duration(cb.get("cooldown", base.circuit_breaker.cooldown)),
        ),
        max_tokens=_whole(tree.get("max_tokens", base.max_tokens)),
    )


def build_spec(doc: LoadedDocument, *, environ: Mapping[str, str]) -> PolicySpec:
    """The :class:`PolicySpec` for a document that validated without errors."""
    data = cast(dict[str, Any], doc.data)
    b = _Builder(doc, environ)
    models = {alias: b.model(alias, tree) for alias, tree in data["models"].items()}
    groups = {
        name: GroupSpec(
            name=name,
            strategy=tree.get("strategy", "ordered"),
            models=tuple(tree["models"]),
            require=_requirements(tree.get("require")),
        )
        for name, tree in data.get("groups", {}).items()
    }
    routes = tuple(
        RouteSpec(
            name=tree["name"],
            to=TargetSpec((tree["to"],) if isinstance(tree["to"], str) else tuple(tree["to"])),
            when=build_condition(tree["when"]) if "when" in tree else None,
            params=_params(tree.get("params", {})),
            require=_requirements(tree.get("require")),
            description=tree.get("description"),
        )
        for tree in data["routes"]
    )
    receipts = data.get("receipts", {})
    receipts_base = ReceiptsSpec()
    return PolicySpec(
        name=data["name"],
        version=int(data["policyroute"]),
        models=MappingProxyType(models),
        groups=MappingProxyType(groups),
        routes=routes,
        budgets=tuple(b.budget(i, t) for i, t in enumerate(data.get("budgets", ()))),
        defaults=_defaults(data.get("defaults", {})),
        store=b.store(data.get("store", {})),
        receipts=ReceiptsSpec(
            sink=receipts.get("sink", receipts_base.sink),
            path=receipts.get("path", receipts_base.path),
            include_prompt=receipts.get("include_prompt", receipts_base.include_prompt),
        ),
        description=data.get("description"),
    )


def _unset_env(
    base: Any, key: Secret | None, environ: Mapping[str, str]
) -> tuple[UnsetVariable, ...]:
    """Where a model's ``api_base`` and ``api_key`` read a variable the environment does not
    set; calls refuse to send such a deployment anything."""
    unset: list[UnsetVariable] = []
    if isinstance(base, str):
        unset.extend(
            UnsetVariable("api_base", n) for n in env_names(base) if environ.get(n) is None
        )
    if key is not None and not key.is_set:
        unset.append(UnsetVariable("api_key", key.source))
    return tuple(unset)
