"""How ``ChatPolicyRoute`` is copied and pickled.

A model holds, besides its fields, state derived from them: the compiled policy, the executor
(with its circuit breakers and a lock) and the routing facts its policy reads. A deep copy
gets an executor of its own; other copies use the executor shared by the models on their
policy and accounting. pydantic copies
that state as is, which goes wrong three ways: ``pickle`` and ``copy.deepcopy`` fail on the
compiled policy's read-only mappings and the lock, and ``model_copy(update={"policy": ...})``
keeps routing by the old policy (``update={"accounting": ...}``: charging the old accounting).
The helpers here say what a copy keeps and what it rebuilds.

Example:
    >>> copy.deepcopy(llm).invoke("hi")  # doctest: +SKIP
    >>> pickle.loads(pickle.dumps(llm)).invoke("hi")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from typing import Any

from policyroute.langchain_.serialization import Withheld, serialised_policy
from policyroute.policy.compile import CompiledPolicy

__all__ = ["DERIVED_FROM", "fresh_private", "picklable_policy", "rebuilds"]

DERIVED_FROM = frozenset({"policy", "accounting"})
"""The fields the derived state is built from: a copy updating one of them rebuilds it."""


def fresh_private(compiled: CompiledPolicy | None = None, *, shared: bool = True) -> dict[str, Any]:
    """The private state of a model nothing has run on yet (``compiled``, when given, is kept:
    it is immutable and loading it again would only cost time). A model with ``shared=False``
    builds an executor of its own instead of using the one shared by the models on its policy
    and accounting (see :mod:`policyroute.langchain_.shared`).

    Example:
        >>> sorted(fresh_private())
        ['_compiled', '_executor', '_lock', '_read_facts', '_shared', '_thresholds']
    """
    return {
        "_compiled": compiled,
        "_executor": None,
        "_lock": threading.Lock(),
        "_thresholds": False,
        "_read_facts": None,
        "_shared": shared,
    }


def rebuilds(update: Collection[str] | None) -> bool:
    """Whether a copy with ``update`` must rebuild the derived state.

    Example:
        >>> rebuilds({"temperature"}), rebuilds({"policy"})
        (False, True)
    """
    return bool(update) and not DERIVED_FROM.isdisjoint(update or ())


def picklable_policy(
    policy: str | os.PathLike[str] | CompiledPolicy, compiled: CompiledPolicy
) -> str | os.PathLike[str]:
    """What a pickled model stores as its policy: a path or the text as given, and a
    :class:`CompiledPolicy` (which does not pickle) as the path it was loaded from; the
    unpickled model loads it again.

    Raises :class:`TypeError` (what ``pickle`` raises for what it cannot pickle) for a
    compiled policy not loaded from a file.
    """
    if not isinstance(policy, CompiledPolicy):
        return policy
    named = serialised_policy(policy, compiled)
    if isinstance(named, Withheld):
        raise TypeError(
            f"cannot pickle a ChatPolicyRoute built from {policy!r}, which was not loaded from"
            " a file; give it the policy's path or YAML text instead"
        )
    return named
