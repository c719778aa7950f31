"""Policies and executors shared by the chat models built on one policy.

LangChain builds a new :class:`~policyroute.langchain.ChatPolicyRoute` on every call of a
runnable with ``configurable_fields`` or ``configurable_alternatives``, and web handlers often
build one per request. An executor of its own for each would forget, between those calls, what
the circuit breakers and the latency stats (which the ``fastest`` and ``least_busy``
strategies order by) learnt. So models on the same policy and the same accounting share one
executor, from small LRU caches keyed and bounded as :mod:`policyroute.api` keys and bounds
its own:

- a policy file or text is loaded once per source: the path as given (for a file, with its
  version: absolute path, modification and change time, size and inode, so an edited file is
  loaded again and gets a fresh executor) or the text, and the values of the ``${VAR}``
  references it reads (keys are not part of the content hash). Building a model per call then
  neither reads, validates nor compiles the policy again;
- an executor is kept per compiled policy (by identity: the same object, which the step above
  hands out for the same content) and accounting (by identity too, or, for a model without
  one, the policy's default accounting in the current working directory, against which its
  budget store and receipt paths are read). The cache holds both, so their ids cannot be
  reused by other objects.

Example:
    >>> llm = ChatPolicyRoute(policy="policies/tiered.yaml")  # doctest: +SKIP
    >>> ChatPolicyRoute(policy="policies/tiered.yaml").executor is llm.executor  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from policyroute._files import file_version
from policyroute.errors import RequestError
from policyroute.execution.hooks import Accounting
from policyroute.policy.compile import CompiledPolicy

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = ["CACHE_SIZE", "clear", "executor", "load", "own_executor", "shared_executor"]

CACHE_SIZE = 64
"""How many loaded policies, and how many executors, are kept (least recently used go first)."""

# A policy file's (absolute path, (mtime_ns, ctime_ns, size, inode)); () for policy text.
Version = tuple[Any, ...]

_lock = threading.Lock()
# (the path as given or the text, the file version, the referenced variables' values)
_PolicyKey = tuple[str, Version, tuple[tuple[str, str | None], ...]]
_policies: OrderedDict[_PolicyKey, CompiledPolicy] = OrderedDict()
_executors: OrderedDict[
    tuple[int, int, str], tuple[CompiledPolicy, Accounting | None, Executor]
] = OrderedDict()


def load(policy: object) -> CompiledPolicy:
    """Load, validate and compile ``policy`` (a path, YAML text or a compiled policy), reusing
    the compiled policy of an unchanged file or identical text.

    A broken policy raises :class:`~policyroute.errors.PolicyValidationError` every time: only
    policies that load are cached.

    Example:
        >>> load("policies/tiered.yaml") is load("policies/tiered.yaml")  # doctest: +SKIP
        True
    """
    from policyroute.policy.load import is_policy_text
    from policyroute.policy.loader import load_policy, load_policy_text

    if isinstance(policy, CompiledPolicy):
        return policy
    if is_policy_text(policy):
        source, text = policy, policy
        version: Version = ()
    elif isinstance(policy, (str, os.PathLike)):
        # The path as given is part of the key: the compiled policy names it as its source.
        source = os.fspath(policy)
        version = _file_version(source)
        read = _read(source) if version else None
        if read is None:
            # Missing or unreadable: the loader reports it as a policy problem (PR001).
            return load_policy(source)
        text = read
    else:
        raise RequestError(
            f"policy must be a path, policy text or CompiledPolicy, not {type(policy).__name__}"
        )
    # A policy reads keys and URLs from ${VAR} references when it is loaded; their values are
    # not part of its content hash, so a changed value must load the policy again.
    key = (source, version, tuple((name, os.environ.get(name)) for name in _names(text)))
    with _lock:
        cached = _policies.get(key)
        if cached is not None:
            _policies.move_to_end(key)
            return cached
    compiled = load_policy(source) if version else load_policy_text(source)
    with _lock:
        # The first one cached wins, so that every model shares one compiled policy.
        cached = _policies.setdefault(key, compiled)
        _trim(_policies)
    return cached


def _names(text: str) -> list[str]:
    from policyroute.policy.envrefs import env_names

    return sorted(set(env_names(text)))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def _file_version(path: str) -> Version:
    absolute = os.path.abspath(path)
    version = file_version(absolute)
    return () if version is None else (absolute, version)


def executor(policy: CompiledPolicy, accounting: Accounting | None, *, shared: bool) -> Executor:
    """:func:`shared_executor` if ``shared``, else :func:`own_executor`.

    Example:
        >>> executor(policy, None, shared=True) is shared_executor(policy, None)  # doctest: +SKIP
        True
    """
    return shared_executor(policy, accounting) if shared else own_executor(policy, accounting)


def shared_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    """The executor every model on ``policy`` and ``accounting`` uses; ``None`` stands for the
    policy's default accounting.

    ``policy`` is keyed by identity, as :func:`load` hands out one compiled policy per content,
    file version and referenced variables' values: two policies of the same content hash may
    still hold different keys, taken from the environment.

    Example:
        >>> a = shared_executor(policy, None)  # doctest: +SKIP
        >>> a is shared_executor(policy, None)  # doctest: +SKIP
        True
    """
    # The default accounting is per working directory (see accounting.default_accounting).
    where = os.getcwd() if accounting is None else ""
    key = (id(policy), id(accounting), where)
    with _lock:
        entry = _executors.get(key)
        if (
            entry is not None
            and entry[0] is policy
            and entry[1] is accounting
            and _usable(entry[2], accounting)
        ):
            _executors.move_to_end(key)
            return entry[2]
        # Built under the lock so that models racing to their first call share one executor.
        # The policy and accounting are held so that their ids cannot be reused meanwhile.
        executor = own_executor(policy, accounting)
        _executors[key] = (policy, accounting, executor)
        _trim(_executors)
        return executor


def _usable(executor: Executor, accounting: Accounting | None) -> bool:
    # A closed default accounting is replaced by default_accounting; an executor still holding
    # it would refuse every call. An accounting given by the caller is the caller's to manage.
    return accounting is not None or not getattr(executor.accounting, "closed", False)


def own_executor(policy: CompiledPolicy, accounting: Accounting | None) -> Executor:
    """A new executor, shared with nobody: its breakers and stats start empty.

    Example:
        >>> own_executor(policy, None) is own_executor(policy, None)  # doctest: +SKIP
        False
    """
    from policyroute.execution.executor import Executor

    if accounting is None:
        from policyroute.accounting import default_accounting

        accounting = default_accounting(policy)
    return Executor(policy, accounting=accounting)


def clear() -> None:
    """Forget the shared policies and executors (their breakers and stats with them); models
    already holding an executor keep it.

    Example:
        >>> clear()
    """
    with _lock:
        _policies.clear()
        _executors.clear()


def _trim(cache: OrderedDict[Any, Any]) -> None:
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
