"""Durations written as strings whose value the JSON Schema cannot bound (``99999999d``).

The schema caps a duration given as a number at :data:`MAX_DURATION_SECONDS`, but a string
such as ``"40000000000s"`` only has to match a pattern. Past ``threading.TIMEOUT_MAX`` (about
292 years) a timeout makes every call fail; far enough, a string reads as infinity. So every
duration, however written, is held to the same limit of 3650 days.

Example:
    >>> from policyroute.policy.load import load_yaml
    >>> from policyroute.policy.checks import semantic_diagnostics
    >>> doc = load_yaml("policyroute: 1\\nname: x\\nmodels: {m: {model: openai/gpt-4o-mini}}\\n"
    ...                 "routes: [{name: r, to: m}]\\ndefaults: {timeout: 99999999d}\\n")
    >>> (d,) = semantic_diagnostics(doc, environ={})
    >>> d.path, d.message
    ('defaults.timeout', "must be at most 3650d (315360000 seconds), got '99999999d'")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Final

from policyroute.policy.build import parse_duration
from policyroute.policy.load import JsonPath

__all__ = ["MAX_DURATION_SECONDS", "check_durations"]

MAX_DURATION_SECONDS: Final = 315_360_000
"""3650 days: the longest duration, window or timeout a policy may give (the schema agrees)."""

_DEFAULTS: Final[tuple[tuple[str, ...], ...]] = (
    ("timeout",),
    ("first_token_timeout",),
    ("idle_timeout",),
    ("retry", "retry_after_max"),
    ("retry", "backoff", "initial"),
    ("retry", "backoff", "max"),
    ("circuit_breaker", "cooldown"),
)
_CALENDAR: Final = frozenset({"call", "day", "week", "month"})


def _at(tree: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _durations(data: dict[str, Any]) -> Iterator[tuple[JsonPath, Any]]:
    models = data.get("models")
    if isinstance(models, dict):
        for alias, model in models.items():
            yield ("models", alias, "timeout"), _at(model, ("timeout",))
    for keys in _DEFAULTS:
        yield ("defaults", *keys), _at(data.get("defaults"), keys)
    yield ("store", "lease"), _at(data.get("store"), ("lease",))
    budgets = data.get("budgets")
    if isinstance(budgets, list):
        for i, budget in enumerate(budgets):
            window = _at(budget, ("window",))
            if isinstance(window, str) and window not in _CALENDAR:
                yield ("budgets", i, "window"), window


def check_durations(data: Any, emit: Callable[..., None]) -> None:
    """Report every duration string longer than :data:`MAX_DURATION_SECONDS`."""
    if not isinstance(data, dict):
        return
    for path, value in _durations(data):
        if not isinstance(value, str):
            continue  # numbers are bounded by the schema, other shapes reported by it
        try:
            seconds = parse_duration(value)
        except ValueError:
            continue  # not a duration: the schema's pattern reported it
        if not math.isfinite(seconds) or seconds > MAX_DURATION_SECONDS:
            emit(
                "PR013",
                path,
                f"must be at most 3650d ({MAX_DURATION_SECONDS} seconds), got {value!r}",
            )
