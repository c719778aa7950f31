"""Policies and executors shared by the chat models built on one policy.

LangChain builds a new :class:`~policyroute.langchain.ChatPolicyRoute` on every call of a
runnable with ``configurable_fields`` or ``configurable_alternatives``, and web handlers often
build one per request. An executor of its own for each would forget, between those calls, what
the circuit breakers and the latency stats (which the ``fastest`` and ``least_busy``
strategies order by) learnt. So models on the same policy and the same accounting share one
executor, from the cache :func:`policyroute.completion` uses too (see
:mod:`policyroute._shared_cache` for its keys): a chat model and a completion call on one policy
file and accounting share their breakers and stats as well.

- a policy file or text is loaded once per file version (or text) and values of the
  ``${VAR}`` references it holds: building a model per call then neither reads, validates nor
  compiles the policy again;
- an executor is kept per compiled policy and accounting (by identity), or, for a model
  without one, the policy's default accounting in the current working directory;
- a model keeps the executor it got, and with it its policy version and accounting: when the
  file is edited, the cache keeps only the newest version, and the default accounting of an
  older one closes its store and receipt sink once the last model or call using it is gone.

Example:
    >>> llm = ChatPolicyRoute(policy="policies/tiered.yaml")  # doctest: +SKIP
    >>> ChatPolicyRoute(policy="policies/tiered.yaml").executor is llm.executor  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from policyroute import _shared_cache
from policyroute._shared_cache import CACHE_SIZE
from policyroute.errors import RequestError
from policyroute.execution.hooks import Accounting
from policyroute.policy.compile import CompiledPolicy

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = ["CACHE_SIZE", "clear", "executor", "load", "own_executor", "shared_executor"]


def load(policy: object) -> CompiledPolicy:
    """Load, validate and compile ``policy`` (a path, YAML text or a compiled policy), reusing
    the compiled policy of an unchanged file or identical text.

    A broken policy raises :class:`~policyroute.errors.PolicyValidationError` every time: only
    policies that load are cached.

    Example:
        >>> load("policies/tiered.yaml") is load("policies/tiered.yaml")
        True
    """
    if not isinstance(policy, (CompiledPolicy, str, os.PathLike)):
        raise RequestError(
            f"policy must be a path, policy text or CompiledPolicy, not {type(policy).__name__}"
        )
    return _shared_cache.policy(policy)


def executor(policy: CompiledPolicy, accounting: Accounting | None, *, shared: bool) -> Executor:
    """:func:`shared_executor` if ``shared``, else :func:`own_executor`.

    Example:
        >>> executor(policy, None, shared=True) is shared_executor(policy, None)  # doctest: +SKIP
        True
    """
    return shared_executor(policy, accounting) if shared else own_executor(policy, accounting)


def shared_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    """The executor every model (and every ``policyroute.completion`` call) on ``policy`` and
    ``accounting`` uses; ``None`` stands for the policy's default accounting.

    ``policy`` is keyed by identity, as :func:`load` hands out one compiled policy per content,
    file version and referenced variables' values: two policies of the same content hash may
    still hold different keys, taken from the environment.

    Example:
        >>> a = shared_executor(policy, None)  # doctest: +SKIP
        >>> a is shared_executor(policy, None)  # doctest: +SKIP
        True
    """
    return _shared_cache.executor(policy, accounting)


def own_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    """A new executor, shared with nobody: its breakers and stats start empty.

    Example:
        >>> own_executor(policy, None) is own_executor(policy, None)  # doctest: +SKIP
        False
    """
    return _shared_cache.new_executor(policy, accounting)


def clear() -> None:
    """Forget the shared policies and executors (their breakers and stats with them), those of
    ``policyroute.completion`` too; models already holding an executor keep it.

    Example:
        >>> clear()
    """
    _shared_cache.clear()
