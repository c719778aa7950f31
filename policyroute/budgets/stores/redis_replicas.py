"""Replication acknowledgement for the Redis store: what a write that too few replicas
acknowledged means, and what is said about it.

Redis replicates asynchronously: a failover promotes a replica that may lack the last writes
the old primary acknowledged, and a lost reservation or settlement lets budgets be overspent.
A store URL with ``?wait_replicas=N`` (:mod:`policyroute.policy.redis_topology`) makes every
script that changes budget state (reserve, settle and release, renew, reclaim) wait, on the
connection that ran it, until ``N`` replicas acknowledged it, for at most ``wait_timeout``
seconds (Redis ``WAIT``). When fewer did:

- a reservation is not trusted: it is given back at once and the call refused with
  :class:`~policyroute.errors.BudgetStoreError`, as when the store cannot be reached. Should
  the primary fail over before the release replicates, the replica promoted may still hold the
  reservation; its lease ends it then, charged its worst case (never an overspend).
- a settlement, a lease renewal or a reclaim did happen on the primary and is not undone: a
  WARNING on ``policyroute.budgets`` says so.

Redis times ``WAIT`` out on its clock ticks (``hz``, 10 a second by default), so a write
whose replicas do not answer waits up to about 100 ms longer than ``wait_timeout``.
``WAIT`` only narrows the window: a write acknowledged by the replicas can still be lost if
the primary fails over to another replica that had not received it.

Example:
    >>> wait = ReplicaWait(replicas=1, timeout=0.05)
    >>> wait.milliseconds, wait.shortfall(1) is None
    (50, True)
    >>> wait.shortfall(0)
    'reached 0 of the 1 replicas wait_replicas asks for within 0.05 s (wait_timeout)'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from policyroute.policy.redis_topology import wait_milliseconds

__all__ = ["ReplicaWait"]

_log = logging.getLogger("policyroute.budgets")


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """How many replicas must acknowledge each write, within ``timeout`` seconds."""

    replicas: int
    timeout: float

    @property
    def milliseconds(self) -> int:
        """``WAIT``'s timeout argument (never 0, which waits for ever)."""
        return wait_milliseconds(self.timeout)

    def shortfall(self, acked: int | None) -> str | None:
        """What falls short when ``acked`` replicas acknowledged a write (``None`` when it
        was not waited for), as a phrase about the write; ``None`` when enough did."""
        if acked is None or acked >= self.replicas:
            return None
        return (
            f"reached {acked} of the {self.replicas} replicas wait_replicas asks for within"
            f" {self.timeout:g} s (wait_timeout)"
        )

    def warn(self, write: str, acked: int | None, where: str) -> None:
        """Log a WARNING if ``write`` (a settlement, a renewal...) reached too few replicas."""
        short = self.shortfall(acked)
        if short is not None:
            _log.warning(
                "%s: %s %s; it holds on the primary, but a failover before it replicates"
                " would lose it",
                where,
                write,
                short,
            )
