"""Receipt records: one flat, JSON-ready dict per attempt and one per call.

A receipt says what was asked of which deployment, what came back, what it cost and what the
budgets looked like afterwards. Money is a decimal string with 6 places (``"0.000125"``);
times are UTC ISO 8601; token counts follow :class:`~policyroute.execution.hooks.Usage`.
There is no prompt text unless the policy sets ``receipts.include_prompt`` (not even echoed
in a provider's error message), and error messages are scrubbed of anything that looks like a
credential (see :mod:`policyroute.costs.redact`).

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
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from policyroute._lazy import litellm_version
from policyroute._money import EXACT
from policyroute.costs.actual import CostResult
from policyroute.costs.pricing import lookup_litellm_entry
from policyroute.costs.redact import param_secrets, prompt_texts, redact_prompt, scrub
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
    Usage,
)
from policyroute.policy.facts import MISSING, metadata_at
from policyroute.policy.model import PolicySpec
from policyroute.routing.decision import Candidate

__all__ = [
    "SCHEMA_VERSION",
    "BudgetChargeLike",
    "attempt_record",
    "call_record",
    "format_exact_usd",
    "format_usd",
    "policy_identity",
    "policy_secrets",
    "policy_spec",
    "scrub",
]

SCHEMA_VERSION = 1
"""Version of the record layout below."""

_USD_PLACES = Decimal("0.000001")
_ZERO = Decimal(0)
_ERROR_MAX_CHARS = 300
_JSON_READY_DEPTH = 32


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
    # A quantized amount has exponent -6, which ``str`` always writes in plain notation:
    # the same text as ``f"{q:f}"`` at a quarter of the cost.
    return str(amount.quantize(_USD_PLACES, context=EXACT))  # the app's context may be too narrow


def format_exact_usd(amount: Decimal) -> str:
    """A USD amount as a plain decimal string, every digit kept (trailing zeros dropped).

    ``cost`` is rounded to 6 places as receipts have always written it; summed over many
    calls cheaper than a few millionths of a dollar, those rounded figures drift from what
    the calls cost (1,000 calls at $0.00000525 are $0.00525, not the $0.005 of 1,000 times
    "0.000005"). ``cost_exact`` carries the figure itself, which ``receipts report`` sums.

    Example:
        >>> format_exact_usd(Decimal("0.000005250")), format_exact_usd(Decimal("0E-9"))
        ('0.00000525', '0')
    """
    if not amount:
        return "0"
    return f"{amount.normalize(EXACT):f}"


# "YYYY-MM-DDTHH:MM:SS" of recent whole UTC seconds; a call's timestamps share a few of them.
_ISO_SECONDS: dict[int, str] = {}
_ISO_SECONDS_MAX = 64


def _iso(ts: float) -> str:
    """``datetime.fromtimestamp(ts, utc).isoformat(timespec="milliseconds")``, cheaper.

    ``fromtimestamp`` rounds the fraction to microseconds half-to-even (so does ``round``)
    and ``isoformat`` truncates microseconds to milliseconds; only the whole second goes
    through ``datetime``, once per second.
    """
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    prefix = _ISO_SECONDS.get(second)
    if prefix is None:
        if len(_ISO_SECONDS) >= _ISO_SECONDS_MAX:
            _ISO_SECONDS.clear()
        stamp = dt.datetime.fromtimestamp(second, tz=dt.timezone.utc)
        prefix = _ISO_SECONDS[second] = stamp.isoformat(timespec="seconds")[:19]
    return f"{prefix}.{micros // 1000:03d}+00:00"


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
    return _identity(policy, policy_spec(policy))


def _identity(policy: object, spec: PolicySpec | None) -> tuple[str, str]:
    name = spec.name if spec is not None else str(getattr(policy, "name", "") or "")
    for attr in ("content_hash", "hash", "sha256"):
        value = getattr(policy, attr, None)
        if isinstance(value, str) and value:
            return name, value
    basis = repr(spec) if spec is not None else repr(policy)
    return name, hashlib.sha256(basis.encode("utf-8")).hexdigest()


def policy_secrets(policy: object) -> tuple[str, ...]:
    """The credential values of the policy's models (API keys, ``api_base`` passwords and
    credential query values, credential headers), for scrubbing (longest first)."""
    spec = policy_spec(policy)
    if spec is None:
        return ()
    values = {
        value
        for model in spec.models.values()
        for value in param_secrets(
            {**model.params, "api_key": model.api_key, "api_base": model.api_base}
        )
    }
    return tuple(sorted(values, key=len, reverse=True))


def _error_message(
    error: BaseException | None,
    secrets: Iterable[str],
    messages: Sequence[Mapping[str, Any]] | None = None,
) -> str | None:
    """The error's text for a receipt: one line, scrubbed, cut to 300 characters; without
    the prompt's text when ``messages`` (the request's, unless the policy keeps the prompt)
    are given, as providers echo the request back."""
    if error is None:
        return None
    text = " ".join(_text(error).split()) or type(error).__name__
    if messages is not None:
        text = redact_prompt(text, prompt_texts(messages))
    text = scrub(text, secrets)
    if len(text) > _ERROR_MAX_CHARS:
        text = text[: _ERROR_MAX_CHARS - 1] + "…"
    return text


# --------------------------------------------------------------------------- facts


def _text(value: object) -> str:
    """``str(value)``; a caller's object whose ``__str__`` raises must not lose the receipt."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _json_ready(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth >= _JSON_READY_DEPTH:  # a cyclic or absurdly deep value from the caller
        return "<too deep>"
    if isinstance(value, Mapping):
        return {_text(k): _json_ready(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v, depth + 1) for v in value]
    return _text(value)


# The metadata paths of a budgets tuple, keyed by the tuple's id; the tuple is kept with
# its entry so the id cannot be reused while cached.
_MetadataPaths = tuple[str, ...]
_METADATA_PATHS: dict[int, tuple[object, _MetadataPaths]] = {}
_METADATA_PATHS_MAX = 64


def _metadata_paths(budgets: Sequence[Any]) -> _MetadataPaths:
    cached = _METADATA_PATHS.get(id(budgets))
    if cached is not None and cached[0] is budgets:
        return cached[1]
    paths = tuple(
        budget.per[len("metadata.") :]
        for budget in budgets
        if budget.per and budget.per.startswith("metadata.")
    )
    if isinstance(budgets, tuple):  # immutable: safe to remember
        if len(_METADATA_PATHS) >= _METADATA_PATHS_MAX:
            _METADATA_PATHS.clear()
        _METADATA_PATHS[id(budgets)] = (budgets, paths)
    return paths


def _reporting_metadata(call: CallInfo, spec: PolicySpec | None = None) -> dict[str, Any]:
    """The metadata values budgets are scoped by (``per: metadata.x``), keyed ``x``."""
    if spec is None:
        spec = policy_spec(call.policy)
    budgets = spec.budgets if spec is not None else call.decision.budgets
    selected: dict[str, Any] = {}
    metadata = call.request.metadata
    for path in _metadata_paths(budgets):
        # read as the budget's scope is (a flat "user.id" key answers metadata.user.id too)
        value = metadata_at(metadata, path)
        if value is not MISSING:
            selected[path] = _json_ready(value)
    return selected


def _user(call: CallInfo, selected: Mapping[str, Any]) -> str | None:
    """Who the call is for: ``metadata.user_id``, else ``metadata.user`` (a value, not a
    mapping), else ``metadata.user.id``, else a metadata path a budget is scoped by that names
    a user (``per: metadata.account.user_id``), else litellm's ``user`` argument.

    Each path is read as routing and budgets read ``metadata.<path>`` (see
    :func:`~policyroute.policy.facts.metadata_at`): nested first (``{"user": {"id": "u1"}}``),
    else a flat key spelling the rest of the path (``{"user.id": "u1"}``, as OpenTelemetry-style
    metadata writes it), so a receipt names the user a budget charged or a route matched.
    """
    metadata = call.request.metadata
    value = metadata.get("user_id")
    if value is not None:
        return _text(value)
    value = metadata.get("user")
    if value is not None and not isinstance(value, Mapping):
        return _text(value)
    value = metadata_at(metadata, "user.id")
    if value is not MISSING:
        return _text(value)
    for key, value in selected.items():
        *_, parent, last = ("", *key.split("."))
        if "user" in last or (last == "id" and "user" in parent):
            return _text(value)
    # litellm's ``user`` argument: the end-user id OpenAI's API takes, which is how a caller
    # of ``policyroute.completion`` names who the call is for.
    param = call.request.params.get("user")
    if isinstance(param, str) and param:
        return param
    return None


def _hidden_params(response: Any) -> Any:
    # litellm's responses are pydantic models keeping ``_hidden_params`` as a private
    # attribute: plain ``getattr`` first fails the normal lookup (raising and catching an
    # AttributeError inside pydantic) and costs ~2 us; the private dict is read directly.
    private = getattr(response, "__pydantic_private__", None)
    if isinstance(private, dict) and "_hidden_params" in private:
        return private["_hidden_params"]
    return getattr(response, "_hidden_params", None)


def _provider(candidate: Candidate, response: Any) -> str:
    hidden = _hidden_params(response)
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
    limit, spent, reserved = charge.limit, charge.spent_after, charge.reserved_after
    remaining = max(_ZERO, limit - spent - reserved)
    return {
        "budget": charge.budget,
        "scope": str(charge.scope),
        "window": _window_label(charge.window),
        "limit": format_usd(limit),
        "spent": format_usd(spent),
        "reserved": format_usd(reserved),
        "remaining": format_usd(remaining),
        "thresholds_crossed": [float(t) for t in charge.thresholds_crossed],
    }


def _prompt(call: CallInfo) -> list[Any]:
    return [_json_ready(dict(m)) for m in call.request.messages]


def _common(call: CallInfo, route: str, *, include_prompt: bool) -> dict[str, Any]:
    spec = policy_spec(call.policy)
    name, content_hash = _identity(call.policy, spec)
    selected = _reporting_metadata(call, spec)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "request_id": call.request.request_id,
        "run_id": call.request.run_id,
        "policy": name,
        "policy_hash": content_hash,
        "route": route,
        "user": _user(call, selected),
        "metadata": selected,
        "tags": list(call.request.tags),
        "litellm_version": _litellm_version(),
    }
    if include_prompt:
        record["prompt"] = _prompt(call)
    return record


# --------------------------------------------------------------------------- records
# The fields are stored one by one rather than merged from a second dict literal: half the
# cost, and the key order (which is the order of the JSON line) reads top to bottom.


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
    record = _common(call, attempt.route or call.decision.route, include_prompt=include_prompt)
    error = None
    if outcome.error is not None:  # the candidate's key is only needed to scrub an error
        secrets = (
            tuple(secrets) + param_secrets(candidate.litellm_params) + param_secrets(attempt.params)
        )
        error = _error_message(
            outcome.error, secrets, None if include_prompt else call.request.messages
        )
    record["kind"] = "attempt"
    record["ts"] = _iso(ended)
    record["started_at"] = _iso(ended - max(outcome.latency_s, 0.0))
    record["litellm_call_id"] = outcome.litellm_call_id
    record["attempt"] = attempt.number
    record["retry"] = attempt.retry
    # The executor's sleep before this attempt, and whose wait it was (None: no wait).
    record["waited_ms"] = _ms(attempt.waited_s)
    record["wait_source"] = attempt.wait_source
    record["deployment"] = candidate.alias
    record["via"] = candidate.via
    record["model"] = candidate.model
    record["provider"] = _provider(candidate, outcome.response)
    record["input_tokens"] = usage.input_tokens
    record["cache_read_tokens"] = usage.cache_read_tokens
    record["cache_write_tokens"] = usage.cache_write_tokens
    record["output_tokens"] = usage.output_tokens
    record["reasoning_tokens"] = usage.reasoning_tokens
    record["estimated_cost"] = format_usd(admission.estimate if admission else None)
    record["cost"] = format_usd(cost.cost)
    record["cost_exact"] = format_exact_usd(cost.cost)
    record["price_source"] = cost.source
    record["usage_estimated"] = cost.usage_estimated
    record["latency_ms"] = _ms(outcome.latency_s)
    record["ttft_ms"] = _ms(outcome.time_to_first_token_s)
    record["status"] = outcome.status
    record["error_class"] = outcome.error_class
    record["error"] = error
    record["provider_billed"] = outcome.provider_billed
    # litellm answered from its response cache: nothing was sent, the cost and tokens are 0.
    record["cache_hit"] = outcome.cache_hit
    record["budgets"] = [_budget_state(c) for c in charges]
    record["threshold_crossed"] = any(c.thresholds_crossed for c in charges)
    return record


def call_record(
    call: CallInfo,
    outcome: CallOutcome,
    *,
    cost: Decimal,
    usage: Usage,
    usage_estimated: bool = False,
    model: str | None = None,
    provider: str | None = None,
    include_prompt: bool = False,
    secrets: Iterable[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """The receipt of a whole call (``kind: "call"``): the sum of its attempts.

    ``usage_estimated`` says that some attempt's tokens were counted locally (the provider
    never reported them), as that attempt's receipt says.

    Example:
        >>> call_record(call, outcome, cost=Decimal("0.0002"), usage=Usage())["kind"]
        ...     # doctest: +SKIP
        'call'
    """
    ended = time.time() if now is None else now
    record = _common(call, outcome.route or call.decision.route, include_prompt=include_prompt)
    error_class = getattr(outcome.error, "error_class", None) if outcome.error else None
    record["kind"] = "call"
    record["ts"] = _iso(ended)
    record["started_at"] = _iso(call.started_at)
    record["deployment"] = outcome.deployment
    record["model"] = model
    record["provider"] = provider
    record["attempts"] = outcome.attempts
    record["input_tokens"] = usage.input_tokens
    record["cache_read_tokens"] = usage.cache_read_tokens
    record["cache_write_tokens"] = usage.cache_write_tokens
    record["output_tokens"] = usage.output_tokens
    record["reasoning_tokens"] = usage.reasoning_tokens
    record["usage_estimated"] = usage_estimated
    record["cost"] = format_usd(cost)
    record["cost_exact"] = format_exact_usd(cost)
    record["latency_ms"] = _ms(outcome.latency_s)
    record["ttft_ms"] = _ms(outcome.time_to_first_token_s)
    record["status"] = outcome.status
    record["error_class"] = error_class if isinstance(error_class, str) else None
    record["error"] = _error_message(
        outcome.error, secrets, None if include_prompt else call.request.messages
    )
    record["cache_hit"] = outcome.cache_hit  # its answering attempt's
    if outcome.status == "refused":
        record["refused_by"] = refusal(outcome.error)
    return record


def refusal(error: BaseException | None) -> dict[str, Any] | None:
    """What a refused call's receipt says of the budget that refused it (``refused_by``):
    its name, scope and window, and its limit, spent and reserved amounts with the call's
    worst-case estimate, as exact decimal strings (a budget counts nano-dollars: rounded to
    6 places, spent could read as the limit); ``None`` for an error that names no budget.

    Example:
        >>> from policyroute.errors import BudgetExceeded
        >>> refusal(BudgetExceeded(
        ...     budget="daily", scope="*", limit=Decimal("1"), spent=Decimal("0.99"),
        ...     reserved=Decimal(0), estimate=Decimal("0.02"), window="day:2026-01-02"))
        ... # doctest: +NORMALIZE_WHITESPACE
        {'budget': 'daily', 'scope': '*', 'window': 'day:2026-01-02', 'limit': '1',
         'spent': '0.99', 'reserved': '0', 'estimate': '0.02'}
    """
    budget = getattr(error, "budget", None)
    if not isinstance(budget, str):
        return None
    amounts = {}
    for name in ("limit", "spent", "reserved", "estimate"):
        value = getattr(error, name, None)
        amounts[name] = f"{value:f}" if isinstance(value, Decimal) and value.is_finite() else None
    scope = getattr(error, "scope", None)
    window = getattr(error, "window", None)
    return {
        "budget": budget,
        "scope": scope if isinstance(scope, str) else None,
        "window": window if isinstance(window, str) else None,
        **amounts,
    }
