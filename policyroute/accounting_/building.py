"""What a policy asks its accounting to use: its receipt sink and its budget store and guard.

``PolicyAccounting.from_policy`` and ``default_accounting`` build their accounting from these:
the sink the policy's ``receipts`` section names (none, JSONL, or SQLite), and, when the
policy has budgets, the store its ``store`` section names, opened, with a budget guard on it.

Example:
    >>> sinks_for(load_policy("policy.yaml"))  # receipts: {sink: jsonl}  # doctest: +SKIP
    [JsonlSink('receipts/{date}.jsonl')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policyroute.costs.sinks import JsonlSink, ReceiptSink, SqliteSink

if TYPE_CHECKING:
    from policyroute.accounting import Guard
    from policyroute.budgets.stores.base import BudgetStore
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["DEFAULT_SQLITE_PATH", "guard_on", "sinks_for", "store_for"]

DEFAULT_SQLITE_PATH = ".policyroute/receipts.sqlite3"


def sinks_for(policy: CompiledPolicy) -> list[ReceiptSink]:
    """The receipt sinks the policy's ``receipts`` section names (none for ``sink: none``)."""
    receipts = policy.spec.receipts
    if receipts.sink == "none":
        return []
    # Files that may hold prompts are created readable by their owner only.
    private = receipts.include_prompt
    if receipts.sink == "jsonl":
        return [JsonlSink(receipts.path, private=private)]
    # SQLite keeps every day in one indexed database: the JSONL default path (and a {date}
    # in the path) would scatter it into one file per day for no gain.
    path = DEFAULT_SQLITE_PATH if receipts.path.endswith(".jsonl") else receipts.path
    # Opened at the first write: a database that cannot be opened is then reported like any
    # other receipt that cannot be written, instead of failing calls before they are made.
    return [SqliteSink(path.replace("{date}", "all"), connect=False, private=private)]


def store_for(policy: CompiledPolicy) -> BudgetStore | None:
    """The policy's budget store, opened; ``None`` when it has no budgets."""
    if not policy.spec.budgets:
        return None
    # Imported here: a receipts-only policy never pays for the budget machinery.
    from policyroute.budgets.stores import open_store

    return open_store(policy.spec.store)


def guard_on(policy: CompiledPolicy, store: BudgetStore) -> Guard:
    """The policy's budget guard on ``store``."""
    from policyroute.budgets.guard import BudgetGuard

    return BudgetGuard(policy, store)
