"""Semantic checks of the ``store:`` section: settings that do not fit the chosen backend.

A ``url`` under the default backend (``sqlite``) most likely meant Redis: left alone, the
budgets would be kept in a local file, one per host, and hosts sharing a budget would each
spend it in full (PR132). A Redis store without a ``url`` cannot be reached (PR131). Settings
another backend reads (``path``, ``lock_timeout``) are flagged as doing nothing (PR133), and so is
``prefix`` outside Redis: it looks like it keeps two policies sharing one SQLite file apart, and
it does not.

Example:
    >>> from policyroute.policy.validate import validate_text
    >>> text = "policyroute: 1\\nname: t\\nmodels: {m: {model: openai/gpt-4o-mini}}\\n"
    >>> text += "routes: [{name: d, to: m}]\\nstore: {url: 'redis://cache:6379/0'}\\n"
    >>> [d.code for d in validate_text(text, environ={}).diagnostics]
    ['PR132']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policyroute.policy.model import StoreSpec

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_store"]

_DEFAULT_BACKEND = StoreSpec().backend
# The settings each backend reads, beyond ``backend`` and ``lease``.
_READS = {
    "memory": frozenset(),
    "sqlite": frozenset({"path", "lock_timeout"}),
    "redis": frozenset({"url", "prefix"}),
}
# What keeps budgets apart where ``prefix`` does not.
_INSTEAD_OF_PREFIX = {
    "memory": "remove prefix: a memory store is private to one process and its policy already",
    "sqlite": "remove prefix; to keep policies apart give each its own store.path "
    "(a separate SQLite file), or give their budgets distinct names",
}


def check_store(c: Checker) -> None:
    """PR131, PR132, PR133 on ``store:`` (nothing when it is absent or not a mapping)."""
    store: Any = c.data.get("store")
    if not isinstance(store, dict):
        return
    backend = store.get("backend", _DEFAULT_BACKEND)
    if not isinstance(backend, str) or backend not in _READS:
        return  # the schema's error (a list or mapping here cannot even be looked up)
    if backend == "redis" and "url" not in store:
        c.emit(
            "PR131",
            ("store", "backend"),
            "the redis store has no url, so it cannot be reached",
            hint="add url: ${REDIS_URL} (or redis://host:6379/0)",
        )
    if "url" in store and backend != "redis":
        named = "backend" in store
        c.emit(
            "PR132",
            ("store", "url"),
            f"store.url is set but the backend is {backend}"
            + ("" if named else " (the default)")
            + ": budgets would be kept per host, not in Redis",
            key=True,
            hint="set backend: redis to share budgets through that server, or remove url",
        )
    for setting in ("path", "lock_timeout"):
        if setting in store and setting not in _READS[backend]:
            c.emit(
                "PR133",
                ("store", setting),
                f"store.{setting} does nothing with the {backend} backend",
                key=True,
                hint=f"remove {setting}, or choose the backend it is for",
            )
    if "prefix" in store and "prefix" not in _READS[backend]:
        c.emit(
            "PR133",
            ("store", "prefix"),
            f"store.prefix does nothing with the {backend} backend: only redis reads it, and"
            " budgets of the same name in one store share their spend whatever the prefix",
            key=True,
            hint=_INSTEAD_OF_PREFIX[backend],
        )
