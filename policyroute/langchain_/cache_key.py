"""The part of a LangChain cache key that routing decides: the facts the policy's routes read.

LangChain keys its LLM cache by prompt and model parameters. For ``ChatPolicyRoute`` the
call's metadata and tags choose the route, and so the model that answers: two calls with the
same prompt but a different ``metadata.task`` may be answered by different models, and must not
share a cache entry. Only the facts some route condition reads are part of the key, so
metadata no route looks at (trace ids, LangGraph's step counters) leaves the cache working.
Whether the call streams is part of the key when a route reads ``stream``: ``invoke`` streams on
a model built with ``streaming=True`` or for a streaming handler (``astream_events``,
LangGraph's ``messages`` mode), and may then be routed elsewhere.

Example:
    >>> from policyroute.langchain_.facts import CallFacts
    >>> read = RoutingFacts(metadata=frozenset({"task"}), tags=True, run_id=False, stream=False)
    >>> read.key(CallFacts({"task": "code", "trace": "t1"}, ("a",), "r1"))
    "[('metadata', [('task', 'code')]), ('tags', ['a'])]"
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManager
from langchain_core.runnables import RunnableConfig

from policyroute.langchain_.facts import FACTS_KEY, CallFacts, facts_from_config
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.conditions import condition_facts

if TYPE_CHECKING:
    from policyroute.langchain import ChatPolicyRoute

__all__ = ["RoutingFacts", "llm_string"]


@dataclass(frozen=True, slots=True)
class RoutingFacts:
    """Which per-call LangChain facts a policy's routes read."""

    metadata: frozenset[str]
    """Top-level metadata keys (``metadata.user.tier`` reads ``user``, and ``user.tier``: a
    flat key answers a path its nested keys leave empty, see
    :func:`~policyroute.policy.facts.fact_getter`)."""
    tags: bool
    run_id: bool
    stream: bool

    @classmethod
    def of(cls, policy: CompiledPolicy) -> RoutingFacts:
        """The facts read by any route condition of ``policy``."""
        read: set[str] = set()
        for route in policy.spec.routes:
            read |= condition_facts(route.when)
        metadata = frozenset(
            key
            for fact in read
            if fact.startswith("metadata.")
            for key in _top_level_keys(fact.removeprefix("metadata."))
        )
        return cls(
            metadata=metadata, tags="tags" in read, run_id="run_id" in read, stream="stream" in read
        )

    def key(self, facts: CallFacts) -> str:
        """The cache-key part of ``facts``: the values of the facts read, in a stable order."""
        parts: list[tuple[str, Any]] = []
        if self.metadata:
            values = [(k, facts.metadata[k]) for k in sorted(self.metadata) if k in facts.metadata]
            parts.append(("metadata", values))
        if self.tags:
            parts.append(("tags", sorted(set(facts.tags))))
        if self.run_id:
            parts.append(("run_id", facts.run_id))
        return repr(parts)


def _top_level_keys(path: str) -> tuple[str, ...]:
    """The top-level metadata keys that may answer ``path``: its first key, and the whole
    path as one flat key.

    Example:
        >>> _top_level_keys("user.id"), _top_level_keys("task")
        (('user', 'user.id'), ('task',))
    """
    first = path.partition(".")[0]
    return (first,) if first == path else (first, path)


def llm_string(
    model: ChatPolicyRoute, read: RoutingFacts, stop: list[str] | None, kwargs: dict[str, Any]
) -> str:
    """The LLM-cache key of a call of ``model`` (``kwargs``: the call's keywords), whose
    policy's routes read ``read``.

    langchain-core keys the cache of a serialisable model by its serialised form, which names a
    policy file but not its content. The invocation params carry the policy's content hash, so
    a changed policy never answers from the old one's cache entries; the routing facts the
    policy reads are part of the key too, since they pick the model.
    """
    from policyroute.langchain_.calls import default_facts

    passed: RunnableConfig | None = kwargs.pop(FACTS_KEY, None)
    if passed is not None:
        facts = facts_from_config(passed, model.metadata, model.tags)
    else:
        facts = default_facts(model)
    params = {**model._get_invocation_params(stop=stop, **kwargs), **kwargs}
    params["routing_facts"] = read.key(facts)
    if read.stream:
        params["streams"] = _streams(model, passed, kwargs)
    return str(sorted(params.items()))


def _streams(model: ChatPolicyRoute, config: RunnableConfig | None, kwargs: dict[str, Any]) -> bool:
    """Whether the call of ``model`` with ``config`` and ``kwargs`` is made as a stream: by
    ``ChatPolicyRoute._generate`` itself (``streaming=True``), or by langchain-core for a
    streaming handler among the call's callbacks (its own rule, ``_should_stream``, asked with
    the handlers the call's run will have)."""
    if model.streaming and kwargs.get("stream", True):
        return True
    handlers: Any = None
    if config is not None:
        manager = CallbackManager.configure(config.get("callbacks"), model.callbacks, model.verbose)
        handlers = SimpleNamespace(handlers=manager.handlers)
    return model._should_stream(async_api=False, run_manager=handlers, **kwargs)
