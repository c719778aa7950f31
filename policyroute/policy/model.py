"""The validated policy, as plain frozen data.

A policy file is loaded, checked against the JSON Schema and the semantic checks, and then built
into a :class:`PolicySpec`. The spec holds what the file says, with durations in seconds, money
as :class:`~decimal.Decimal` and conditions as a small tree; :mod:`policyroute.policy.compile`
turns it into a :class:`~policyroute.policy.compile.CompiledPolicy` that routes requests.

Nothing here does I/O and every object is immutable, so a spec can be shared across threads.

Example:
    >>> spec = ModelSpec(alias="mini", model="openai/gpt-4o-mini")
    >>> spec.weight
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeAlias

from policyroute.errors import ErrorClass
from policyroute.retries import TRANSIENT

__all__ = [
    "AllOf",
    "AnyOf",
    "BackoffSpec",
    "BudgetSpec",
    "CircuitBreakerSpec",
    "Condition",
    "DefaultsSpec",
    "FactCondition",
    "GroupSpec",
    "ModelInfo",
    "ModelSpec",
    "Not",
    "OnExceed",
    "Operator",
    "PolicySpec",
    "PriceSpec",
    "ReceiptsSpec",
    "Requirements",
    "RetrySpec",
    "RouteSpec",
    "Secret",
    "StoreSpec",
    "Strategy",
    "TargetSpec",
    "Test",
    "UnsetVariable",
    "WindowSpec",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Secret:
    """A value that must never be shown: ``repr`` and ``str`` mask it.

    Example:
        >>> s = Secret("sk-live-123", source="OPENAI_API_KEY")
        >>> s
        Secret('${OPENAI_API_KEY}')
        >>> s.reveal()
        'sk-live-123'
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str | None, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str | None:
        """The secret value itself; ``None`` when the environment variable is unset."""
        return self._value

    @property
    def is_set(self) -> bool:
        """Whether the environment provided a value."""
        return self._value is not None

    def __repr__(self) -> str:
        return f"Secret('${{{self.source}}}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def _redacted_repr(obj: Any, **shown: Any) -> str:
    """The dataclass ``repr`` of ``obj`` with the ``shown`` fields redacted of credentials."""
    from policyroute.costs.redact import redact_params  # the data model imports nothing else

    redacted = redact_params({k: v for k, v in shown.items() if isinstance(v, (str, Mapping))})
    items = (f"{f.name}={redacted.get(f.name, getattr(obj, f.name))!r}" for f in fields(obj))
    return f"{type(obj).__name__}({', '.join(items)})"


# --------------------------------------------------------------------------- conditions

Operator = Literal["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "regex", "contains", "exists"]


@dataclass(frozen=True, slots=True)
class Test:
    """One operator applied to a fact, e.g. ``gt: 1000``."""

    op: Operator
    value: Any


@dataclass(frozen=True, slots=True)
class FactCondition:
    """All ``tests`` must hold for the fact at dotted path ``fact`` (``metadata.user.tier``)."""

    fact: str
    tests: tuple[Test, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every item must hold (an empty ``AllOf`` always holds)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one item must hold."""

    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The item must not hold."""

    item: Condition


Condition: TypeAlias = FactCondition | AllOf | AnyOf | Not

# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """A price given in the policy, USD per million tokens; overrides litellm's."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    reasoning_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is known about a deployment: prices per token, limits and capabilities.

    Resolved once at compile time from the policy's overrides, else litellm's model data.
    The ``*_max`` prices are the highest tier (e.g. above 200k tokens), for worst-case
    estimates; the plain prices are the base tier. The ``audio_*`` prices are those of audio input
    and output where they differ from text; ``cache_write_1h_cost_per_token`` that of cache
    writes kept for an hour (Anthropic's ``ttl: 1h``). ``price_source`` is ``"policy"``,
    ``"litellm"`` or ``"none"`` (cannot be priced).
    """

    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    cache_read_cost_per_token: Decimal | None = None
    cache_write_cost_per_token: Decimal | None = None
    cache_write_1h_cost_per_token: Decimal | None = None
    reasoning_cost_per_token: Decimal | None = None
    input_cost_per_token_max: Decimal | None = None
    output_cost_per_token_max: Decimal | None = None
    audio_input_cost_per_token: Decimal | None = None
    audio_output_cost_per_token: Decimal | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    supports_tools: bool = False
    supports_vision: bool = False
    supports_json_schema: bool = False
    supports_reasoning: bool = False
    price_source: Literal["policy", "litellm", "none"] = "none"

    @property
    def priced(self) -> bool:
        """Whether both input and output prices are known."""
        return self.input_cost_per_token is not None and self.output_cost_per_token is not None


class UnsetVariable(NamedTuple):
    """A field of a deployment that reads an environment variable the environment did not set
    when the policy loaded (``api_base: ${GATEWAY_URL}`` with ``GATEWAY_URL`` unset).

    Example:
        >>> UnsetVariable("api_key", "OPENAI_API_KEY").variable
        'OPENAI_API_KEY'
    """

    field: Literal["api_base", "api_key"]
    variable: str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One deployment from ``models:``: an alias for a litellm model plus how to reach it."""

    alias: str
    model: str
    api_base: str | None = None
    api_key: Secret | None = None
    api_version: str | None = None
    timeout: float | None = None
    price: PriceSpec | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    max_image_tokens: int | None = None
    max_server_tool_cost_usd: Decimal | None = None
    capabilities: Mapping[str, bool] = field(default_factory=lambda: _EMPTY)
    tier: str | None = None
    weight: float = 1.0
    tags: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    unset_env: tuple[UnsetVariable, ...] = ()
    """Where ``api_base`` and ``api_key`` read a variable that was not set when the policy
    loaded (``UnsetVariable("api_base", "GATEWAY_URL")``): the deployment is then refused
    every call."""

    def __repr__(self) -> str:
        # ``api_base`` may carry a password or a key in its query string and ``params`` a
        # credential header: shown redacted, as the key is.
        return _redacted_repr(self, api_base=self.api_base, params=self.params)


Strategy = Literal["ordered", "cheapest", "fastest", "weighted", "least_busy"]


@dataclass(frozen=True, slots=True)
class Requirements:
    """Capabilities a candidate must have; ``None`` means "no requirement"."""

    tools: bool | None = None
    vision: bool | None = None
    json_schema: bool | None = None
    reasoning: bool | None = None
    min_context_window: int | None = None

    def merge(self, other: Requirements) -> Requirements:
        """The stricter of the two, field by field."""
        mcw = [v for v in (self.min_context_window, other.min_context_window) if v is not None]
        return Requirements(
            tools=self.tools or other.tools or None,
            vision=self.vision or other.vision or None,
            json_schema=self.json_schema or other.json_schema or None,
            reasoning=self.reasoning or other.reasoning or None,
            min_context_window=max(mcw) if mcw else None,
        )


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A named pool of models and the strategy that orders it for each request."""

    name: str
    strategy: Strategy
    models: tuple[str, ...]
    require: Requirements = Requirements()


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Where a route sends a request: model aliases and/or groups, tried left to right."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One entry of ``routes:``; ``when is None`` means the route matches every request."""

    name: str
    to: TargetSpec
    when: Condition | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    require: Requirements = Requirements()
    description: str | None = None

    def __repr__(self) -> str:
        # ``params`` may carry a credential header (``extra_headers: {Authorization: ...}``).
        return _redacted_repr(self, params=self.params)


# --------------------------------------------------------------------------- budgets


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A budget window: ``call``, ``rolling`` (``seconds`` long), ``day``, ``week``, ``month``."""

    kind: Literal["call", "rolling", "day", "week", "month"]
    seconds: float | None = None
    timezone: str = "UTC"

    def describe(self) -> str:
        """A short label, e.g. ``day`` or ``rolling 6h``."""
        if self.kind == "rolling" and self.seconds is not None:
            return f"rolling {self.seconds:g}s"
        return self.kind


@dataclass(frozen=True, slots=True)
class OnExceed:
    """What happens when a call would break a budget.

    ``block`` refuses; ``downgrade`` re-routes to ``target`` (a route or group name) and checks
    again; ``clamp_max_tokens`` lowers max_tokens to fit and refuses below ``min_tokens``.
    """

    action: Literal["block", "downgrade", "clamp_max_tokens"] = "block"
    target: str | None = None
    min_tokens: int = 1


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One budget: a USD limit per window, for one scope or one per distinct fact value."""

    name: str
    limit_usd: Decimal
    window: WindowSpec
    per: str | None = None
    warn_at: tuple[float, ...] = ()
    on_exceed: OnExceed = OnExceed()
    routes: tuple[str, ...] | None = None


# --------------------------------------------------------------------------- defaults


@dataclass(frozen=True, slots=True)
class BackoffSpec:
    """Exponential backoff with full jitter, in seconds."""

    initial: float = 0.5
    max: float = 8.0
    multiplier: float = 2.0
    jitter: bool = True


# By default the same deployment is retried on what may not happen again a moment later.
_RETRY_ON: frozenset[ErrorClass] = TRANSIENT
NEVER_RETRIED: frozenset[ErrorClass] = frozenset({"context_window", "content_policy"})
"""Classes never retried on the same deployment, whatever ``retry.on`` says: the same prompt
to the same model meets the same limit or filter."""
_FALLBACK_ON: frozenset[ErrorClass] = frozenset(
    {
        "rate_limit",
        "timeout",
        "server_error",
        "connection",
        "malformed_response",
        "context_window",
        "content_policy",
        "authentication",
        "not_found",
    }
)


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """Retries of the same deployment: how many, on which error classes, and the backoff.

    ``attempts`` counts retries after the first try (``attempts: 2`` means at most three tries
    of one deployment). Classes in ``fallback_on`` but not ``on`` move straight to the next
    candidate; classes in neither stop the call. Context-window and content-policy errors are
    never retried on the same deployment, whatever ``on`` says.
    """

    attempts: int = 2
    backoff: BackoffSpec = BackoffSpec()
    on: frozenset[ErrorClass] = _RETRY_ON
    fallback_on: frozenset[ErrorClass] = _FALLBACK_ON
    retry_after_max: float = 30.0


@dataclass(frozen=True, slots=True)
class CircuitBreakerSpec:
    """Skip a deployment for ``cooldown`` seconds after ``failures`` failures in a row."""

    failures: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class DefaultsSpec:
    """Execution defaults; ``None`` timeouts mean "not limited by policyroute"."""

    retry: RetrySpec = RetrySpec()
    timeout: float | None = 600.0
    first_token_timeout: float | None = None
    idle_timeout: float | None = None
    circuit_breaker: CircuitBreakerSpec = CircuitBreakerSpec()
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Where budget state lives: ``memory``, ``sqlite`` (``path``) or ``redis`` (``url``).

    ``lock_timeout`` (seconds, SQLite only) bounds the wait for another process's write lock
    on the file; past it an operation fails with ``BudgetStoreError``.
    """

    backend: Literal["memory", "sqlite", "redis"] = "sqlite"
    path: str = ".policyroute/budgets.sqlite3"
    url: Secret | str | None = None
    lease: float = 300.0
    prefix: str = "policyroute"
    lock_timeout: float = 30.0

    def __repr__(self) -> str:
        # A literal Redis URL may carry its password (``redis://:pw@host``).
        return _redacted_repr(self, url=self.url)


@dataclass(frozen=True, slots=True)
class ReceiptsSpec:
    """Where receipts go: ``jsonl`` (``path`` may contain ``{date}``), ``sqlite`` or ``none``."""

    sink: Literal["jsonl", "sqlite", "none"] = "jsonl"
    path: str = ".policyroute/receipts/{date}.jsonl"
    include_prompt: bool = False


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A whole validated policy."""

    name: str
    version: int
    models: Mapping[str, ModelSpec]
    groups: Mapping[str, GroupSpec]
    routes: tuple[RouteSpec, ...]
    budgets: tuple[BudgetSpec, ...] = ()
    defaults: DefaultsSpec = DefaultsSpec()
    store: StoreSpec = StoreSpec()
    receipts: ReceiptsSpec = ReceiptsSpec()
    description: str | None = None
