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

import copy
import os
import threading
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from policyroute.langchain_.serialization import Withheld, serialised_policy
from policyroute.policy.compile import CompiledPolicy

__all__ = [
    "DERIVED_FROM",
    "deep_copy",
    "fresh_private",
    "picklable_policy",
    "pickled_state",
    "rebuild",
    "rebuilds",
]

M = TypeVar("M", bound=BaseModel)

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


def rebuild(model: BaseModel, compiled: CompiledPolicy | None, *, shared: bool = True) -> None:
    """Give ``model`` the private state of :func:`fresh_private` (for a copy or an unpickled
    model, whose state was copied as is or not at all)."""
    object.__setattr__(model, "__pydantic_private__", fresh_private(compiled, shared=shared))


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


def pickled_state(
    state: dict[Any, Any],
    policy: str | os.PathLike[str] | CompiledPolicy,
    compiled: CompiledPolicy,
) -> dict[Any, Any]:
    """pydantic's pickled ``state`` of a model, with a policy that pickles
    (:func:`picklable_policy`) and no private state: the unpickled model loads the policy
    again and starts from :func:`fresh_private`."""
    fields = dict(state["__dict__"])
    fields["policy"] = picklable_policy(policy, compiled)
    state["__dict__"] = fields
    state["__pydantic_private__"] = None
    return state


def deep_copy(
    model: M,
    memo: dict[int, Any] | None,
    kept: Iterable[object],
    compiled: CompiledPolicy | None,
) -> M:
    """A deep copy of ``model`` that shares the objects in ``kept`` (the policy, which is
    immutable, and the accounting, which is live shared state: budget stores, sinks) and has an
    executor of its own: a deep copy is asked for to be independent, and its breakers and stats
    are part of that."""
    memo = {} if memo is None else memo
    for shared in kept:
        memo.setdefault(id(shared), shared)
    copied = copy.copy(model)
    memo[id(model)] = copied
    object.__setattr__(copied, "__dict__", copy.deepcopy(model.__dict__, memo))
    rebuild(copied, compiled, shared=False)
    return copied
