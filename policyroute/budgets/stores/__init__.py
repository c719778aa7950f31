"""Budget stores: in-memory, SQLite (one host) and Redis (many hosts), behind one protocol.

Example:
    >>> store = open_store(StoreSpec(backend="memory"))
    >>> type(store).__name__
    'MemoryStore'
"""

from __future__ import annotations

from policyroute.budgets.stores.base import BudgetStore, LineState, ReserveLine, ReserveResult
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError
from policyroute.policy.model import Secret, StoreSpec

__all__ = [
    "BudgetStore",
    "LineState",
    "MemoryStore",
    "ReserveLine",
    "ReserveResult",
    "SQLiteStore",
    "open_store",
]


def open_store(spec: StoreSpec) -> BudgetStore:
    """The store a policy's ``store:`` section describes.

    Redis is imported only when asked for (``pip install policyroute[redis]``).
    """
    if spec.backend == "memory":
        return MemoryStore()
    if spec.backend == "sqlite":
        return SQLiteStore(spec.path, timeout=spec.lock_timeout)
    url = spec.url.reveal() if isinstance(spec.url, Secret) else spec.url
    if not url:
        source = f" (${{{spec.url.source}}} is unset)" if isinstance(spec.url, Secret) else ""
        raise BudgetStoreError(f"the redis budget store needs `store.url`{source}")
    from policyroute.budgets.stores.redis import RedisStore

    return RedisStore.from_url(url, prefix=spec.prefix)
