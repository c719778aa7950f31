"""The default accounting of each policy: shared while anything uses it, closed once nothing does.

:func:`default_accounting` is what ``ChatPolicyRoute`` and ``policyroute.completion`` use when
given no accounting: the policy's own budget store and receipt sink, one per policy content
hash and working directory (paths in a policy are relative to it), so that many chat models
and calls on one policy share one store connection and one sink.

Example:
    >>> acct = default_accounting(policy)  # doctest: +SKIP
    >>> acct is default_accounting(policy)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from policyroute.accounting_.building import sinks_for
from policyroute.costs.receipts import policy_identity

if TYPE_CHECKING:
    from policyroute.accounting import PolicyAccounting
    from policyroute.execution.hooks import Accounting
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["default_accounting"]

# Weak values: a default accounting lives as long as something uses it (an executor, which
# every chat model and every call in flight holds), and no longer. Held strongly, each edited
# version of a policy file would keep its store connections and receipt file open for good;
# closed by a count or age bound instead, a call still running on it could find its store
# closed under it.
_cache: weakref.WeakValueDictionary[tuple[str, str], PolicyAccounting] = (
    weakref.WeakValueDictionary()
)
_cache_lock = threading.Lock()


def default_accounting(policy: CompiledPolicy) -> Accounting:
    """The accounting a policy asks for: its budget store and its receipt sink.

    Shared per policy content hash and working directory (paths in a policy are relative to
    it) while anything holds it, so many chat models and calls on one policy share one store
    connection and one sink. Once nothing does (the executors of an edited policy's old
    version are dropped from the shared cache, say), it closes its sinks and store and the
    next call opens a new one. One that was closed is replaced by a new one.

    Example:
        >>> acct = default_accounting(policy)  # doctest: +SKIP
        >>> acct is default_accounting(policy)  # doctest: +SKIP
        True
    """
    # Imported here: policyroute.accounting imports this module to export this function.
    from policyroute.accounting import PolicyAccounting

    key = (policy_identity(policy)[1], os.getcwd())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None or cached.closed:
            cached = PolicyAccounting._opening(policy, sinks=sinks_for(policy))
            cached._close_when_collected()
            _cache[key] = cached
        return cached


def _clear_default_cache() -> None:
    """Close and forget every cached accounting (tests, and code that reloads policies)."""
    with _cache_lock:
        accts = list(_cache.values())
        _cache.clear()
    for acct in accts:
        # Closes the budget store it opened too: a SQLite connection left to the garbage
        # collector is a ResourceWarning since Python 3.13.
        acct.close()
