"""Receipt records: one flat, JSON-ready dict per attempt and one per call.

A receipt says what was asked of which deployment, what came back, what it cost and what the
budgets looked like afterwards. Money is a decimal string with 6 places (``"0.000125"``);
times are UTC ISO 8601; token counts follow :class:`~policyroute.execution.hooks.Usage`.
There is no prompt text unless the policy sets ``receipts.include_prompt``, and error
messages are scrubbed of anything that looks like a credential.

Records are plain dicts so every sink (JSON lines, SQLite, a user callable) sees the same
thing; ``schema_version`` changes whenever a field changes meaning or disappears.

Example:
    >>> scrub("401: bad key sk-proj-abcdefghijklmnop", secrets=())
    '401: bad key [REDACTED]'
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from policyroute._lazy import litellm_version
from policyroute.costs.actual import CostResult
from policyroute.costs.pricing import lookup_litellm_entry
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
    Usage,
)
from policyroute.policy.model import PolicySpec, Secret
from policyroute.routing.decision import Candidate

__all__ = [
    "SCHEMA_VERSION",
    "BudgetChargeLike",
    "attempt_record",
    "call_record",
    "format_usd",
    "policy_identity",
    "policy_secrets",
    "policy_spec",
    "scrub",
]

SCHEMA_VERSION = 1
"""Version of the record layout below."""

_USD_PLACES = Decimal("0.000001")
_ERROR_MAX_CHARS = 300
_REDACTED = "[REDACTED]"
_SECRET_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),  # OpenAI / Anthropic style keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|authorization|access[_-]?token|secret)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    ),
)


class BudgetChargeLike(Protocol):
    """What a receipt reads from a budget charge (``policyroute.budgets.guard.BudgetCharge``)."""

    @property
    def budget(self) -> str: ...
    @property
    def scope(self) -> object: ...
    @property
    def window(self) -> object: ...
    @property
    def limit(self) -> Decimal: ...
    @property
    def spent_after(self) -> Decimal: ...
    @property
    def reserved_after(self) -> Decimal: ...
    @property
    def thresholds_crossed(self) -> Sequence[float]: ...


class _HasSpec(Protocol):
    @property
    def spec(self) -> PolicySpec: ...


@functools.lru_cache(maxsize=1)
def _litellm_version() -> str:
    # Reading package metadata parses a file (milliseconds); the version cannot change
    # while the process runs.
    return litellm_version()


def format_usd(amount: Decimal | None) -> str | None:
    """A USD amount as a decimal string with 6 places (``None`` stays ``None``).

    Example:
        >>> format_usd(Decimal("0.0000004999"))
        '0.000000'
    """
    if amount is None:
        return None
    return f"{amount.quantize(_USD_PLACES):f}"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="milliseconds")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


# --------------------------------------------------------------------------- policy


def policy_spec(policy: object) -> PolicySpec | None:
    """The :class:`PolicySpec` behind a compiled policy (or the spec itself)."""
    if isinstance(policy, PolicySpec):
        return policy
    spec = getattr(policy, "spec", None)
    return spec if isinstance(spec, PolicySpec) else None


def policy_identity(policy: object) -> tuple[str, str]:
    """The policy's name and content hash.

    The compiled policy's own hash is used when it has one; else a SHA-256 of the spec's
    ``repr`` (secrets show as ``${VAR}`` there, so the hash never depends on a key).
    """
    spec = policy_spec(policy)
    name = spec.name if spec is not None else str(getattr(policy, "name", "") or "")
    for attr in ("content_hash", "hash", "sha256"):
        value = getattr(policy, attr, None)
        if isinstance(value, str) and value:
            return name, value
    basis = repr(spec) if spec is not None else repr(policy)
    return name, hashlib.sha256(basis.encode("utf-8")).hexdigest()


def policy_secrets(policy: object) -> tuple[str, ...]:
    """The API key values of the policy's models, for scrubbing (longest first)."""
    spec = policy_spec(policy)
    if spec is None:
        return ()
    values = {
        value
        for model in spec.models.values()
        if isinstance(model.api_key, Secret)
        if (value := model.api_key.reveal())
    }
    return tuple(sorted(values, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with known secret values and anything shaped like a credential redacted.

    Example:
        >>> scrub("Authorization: Bearer abc.def.ghi123", secrets=())
        'Authorization: [REDACTED]'
    """
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: (m.group(1) if m.re.groups else "") + _REDACTED,
            text,
        )
    return text


def _error_message(error: BaseException | None, secrets: Iterable[str]) -> str | None:
    if error is None:
        return None
    text = " ".join(str(error).split()) or type(error).__name__
    text = scrub(text, secrets)
    if len(text) > _ERROR_MAX_CHARS:
        text = text[: _ERROR_MAX_CHARS - 1] + "…"
    return text


# --------------------------------------------------------------------------- facts


def _dotted(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _json_ready(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return str(value)


def _reporting_metadata(call: CallInfo) -> dict[str, Any]:
    """The metadata values budgets are scoped by (``per: metadata.x``), keyed ``x``."""
    spec = policy_spec(call.policy)
    budgets = spec.budgets if spec is not None else call.decision.budgets
    selected: dict[str, Any] = {}
    for budget in budgets:
        if budget.per and budget.per.startswith("metadata."):
            path = budget.per[len("metadata.") :]
            value = _dotted(call.request.metadata, path)
            if value is not None:
                selected[path] = _json_ready(value)
    return selected


def _user(call: CallInfo, selected: Mapping[str, Any]) -> str | None:
    for key in ("user_id", "user"):
        value = call.request.metadata.get(key)
        if value is not None:
            return str(value)
    for key, value in selected.items():
        if "user" in key.rsplit(".", 1)[-1]:
            return str(value)
    return None


def _provider(candidate: Candidate, response: Any) -> str:
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping) and hidden.get("custom_llm_provider"):
        return str(hidden["custom_llm_provider"])
    prefix, sep, _ = candidate.model.partition("/")
    if sep:
        return prefix
    entry = lookup_litellm_entry(candidate.model)
    return str(entry.get("litellm_provider", "")) if entry else ""


def _window_label(window: object) -> str:
    describe = getattr(window, "describe", None)
    return str(describe()) if callable(describe) else str(window)


def _budget_state(charge: BudgetChargeLike) -> dict[str, Any]:
    remaining = max(Decimal(0), charge.limit - charge.spent_after - charge.reserved_after)
    return {
        "budget": charge.budget,
        "scope": str(charge.scope),
        "window": _window_label(charge.window),
        "limit": format_usd(charge.limit),
        "spent": format_usd(charge.spent_after),
        "reserved": format_usd(charge.reserved_after),
        "remaining": format_usd(remaining),
        "thresholds_crossed": [float(t) for t in charge.thresholds_crossed],
    }


def _prompt(call: CallInfo) -> list[Any]:
    return [_json_ready(dict(m)) for m in call.request.messages]


def _common(call: CallInfo, *, include_prompt: bool) -> dict[str, Any]:
    name, content_hash = policy_identity(call.policy)
    selected = _reporting_metadata(call)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "request_id": call.request.request_id,
        "run_id": call.request.run_id,
        "policy": name,
        "policy_hash": content_hash,
        "route": call.decision.route,
        "user": _user(call, selected),
        "metadata": selected,
        "tags": list(call.request.tags),
        "litellm_version": _litellm_version(),
    }
    if include_prompt:
        record["prompt"] = _prompt(call)
    return record


# --------------------------------------------------------------------------- records


def attempt_record(
    attempt: AttemptInfo,
    admission: Admission | None,
    outcome: AttemptOutcome,
    *,
    usage: Usage,
    cost: CostResult,
    charges: Sequence[BudgetChargeLike] = (),
    include_prompt: bool = False,
    secrets: Iterable[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """The receipt of one attempt (``kind: "attempt"``).

    Example:
        >>> rec = attempt_record(attempt, admission, outcome, usage=usage,
        ...                      cost=CostResult(Decimal("0.0001"), "litellm"))  # doctest: +SKIP
        >>> rec["cost"]  # doctest: +SKIP
        '0.000100'
    """
    ended = time.time() if now is None else now
    call, candidate = attempt.call, attempt.candidate
    record = _common(call, include_prompt=include_prompt)
    secrets = tuple(secrets) + tuple(
        str(v.reveal() if isinstance(v, Secret) else v)
        for k, v in candidate.litellm_params.items()
        if k == "api_key" and v
    )
    threshold = any(c.thresholds_crossed for c in charges)
    record.update(
        {
            "kind": "attempt",
            "ts": _iso(ended),
            "started_at": _iso(ended - max(outcome.latency_s, 0.0)),
            "litellm_call_id": outcome.litellm_call_id,
            "attempt": attempt.number,
            "retry": attempt.retry,
            "route": attempt.route or call.decision.route,
            "deployment": candidate.alias,
            "via": candidate.via,
            "model": candidate.model,
            "provider": _provider(candidate, outcome.response),
            "input_tokens": usage.input_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "estimated_cost": format_usd(admission.estimate if admission else None),
            "cost": format_usd(cost.cost),
            "price_source": cost.source,
            "latency_ms": _ms(outcome.latency_s),
            "ttft_ms": _ms(outcome.time_to_first_token_s),
            "status": outcome.status,
            "error_class": outcome.error_class,
            "error": _error_message(outcome.error, secrets),
            "provider_billed": outcome.provider_billed,
            "budgets": [_budget_state(c) for c in charges],
            "threshold_crossed": threshold,
        }
    )
    return record


def call_record(
    call: CallInfo,
    outcome: CallOutcome,
    *,
    cost: Decimal,
    usage: Usage,
    model: str | None = None,
    provider: str | None = None,
    include_prompt: bool = False,
    secrets: Iterable[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """The receipt of a whole call (``kind: "call"``): the sum of its attempts.

    Example:
        >>> call_record(call, outcome, cost=Decimal("0.0002"), usage=Usage())["kind"]
        ...     # doctest: +SKIP
        'call'
    """
    ended = time.time() if now is None else now
    record = _common(call, include_prompt=include_prompt)
    error_class = getattr(outcome.error, "error_class", None) if outcome.error else None
    record.update(
        {
            "kind": "call",
            "ts": _iso(ended),
            "started_at": _iso(call.started_at),
            "deployment": outcome.deployment,
            "model": model,
            "provider": provider,
            "attempts": outcome.attempts,
            "input_tokens": usage.input_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cost": format_usd(cost),
            "latency_ms": _ms(outcome.latency_s),
            "ttft_ms": _ms(outcome.time_to_first_token_s),
            "status": outcome.status,
            "error_class": error_class if isinstance(error_class, str) else None,
            "error": _error_message(outcome.error, secrets),
        }
    )
    return record
