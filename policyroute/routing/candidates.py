"""Expanding a route's target into the ordered deployments to try.

A :class:`TargetPlan` is built once per target at compile time. Target names are expanded left
to right, groups in place (nested groups recursively, each ordered by its own strategy and
ranked inside its parent by its first member, or in a weighted parent by the sum of its
members' weights), then filtered and de-duplicated (the first surviving occurrence of an alias
wins):

1. static requirements — the route's ``require`` and the ``require`` of every group the alias
   was reached through — are checked at compile time;
2. requirements the request implies are checked per call: tools offered → tool calling,
   a provider's own tools (a web search...) → a deployment that takes them
   (:mod:`~policyroute.routing.provider_tools`), images → vision, a ``json_schema`` response
   format → structured output, and an input that exceeds the deployment's context window
   (tokens are counted only when a cheap upper bound of the input exceeds the smallest known
   window among the candidates);
3. deployments that ``stats`` reports unavailable (circuit open) go last, not away.

``fastest`` groups rank an unstreamed request at the output limit the call will send each
deployment (:mod:`~policyroute.routing.output_bound`) when that is shorter than the typical
answer; the plan keeps the route's ``params`` and ``defaults.max_tokens`` for that.

When no group needs run-time ordering, the expansion is done once and the common call costs a
few attribute reads.

Example:
    >>> plan.resolve(facts, None, rng, None)  # doctest: +SKIP
    ((Candidate(alias='sonnet', ...), ...), (), Requirements())
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from policyroute.errors import NoCandidateError, PolicyError
from policyroute.policy.facts import RequestFacts
from policyroute.policy.model import GroupSpec, Requirements, Strategy
from policyroute.policy.nesting import MAX_EXPANSION, MAX_GROUP_DEPTH
from policyroute.routing.decision import Candidate, DeploymentStats
from policyroute.routing.notes import format_price, order_note
from policyroute.routing.output_bound import OutputBound, limits_output, sent_output_bound
from policyroute.routing.provider_tools import (
    Family,
    deployment_family,
    provider_tools,
    refused_tools,
)
from policyroute.routing.strategies import order_members

__all__ = ["Entry", "GroupNode", "TargetPlan", "build_nodes", "format_price", "static_reason"]

_NO_REQUIREMENTS: Final = Requirements()
_NO_PARAMS: Final[Mapping[str, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Entry:
    """One occurrence of a deployment in a target, with what filtering needs precomputed."""

    candidate: Candidate
    price: Decimal | None  # input + output per token
    weight: float
    tools: bool
    vision: bool
    json_schema: bool
    window: int | None
    static_reason: str | None

    @property
    def alias(self) -> str:
        """The deployment's alias."""
        return self.candidate.alias


@dataclass(frozen=True, slots=True)
class GroupNode:
    """A group occurrence in a target: its strategy and its expanded members."""

    name: str
    strategy: Strategy
    children: tuple[Entry | GroupNode, ...]


Node = Entry | GroupNode


def static_reason(candidate: Candidate, require: Requirements) -> str | None:
    """Why ``candidate`` fails ``require`` (``None`` if it meets it).

    Example:
        >>> static_reason(cand, Requirements(tools=True))  # doctest: +SKIP
        'lacks tool calling (required)'
    """
    info = candidate.info
    if require.tools and not info.supports_tools:
        return "lacks tool calling (required)"
    if require.vision and not info.supports_vision:
        return "lacks vision (required)"
    if require.json_schema and not info.supports_json_schema:
        return "lacks json_schema output (required)"
    if require.reasoning and not info.supports_reasoning:
        return "lacks reasoning (required)"
    need = require.min_context_window
    if need is not None:
        window = info.max_input_tokens
        if window is None:
            return f"context window unknown (required >= {need})"
        if window < need:
            return f"context window {window} < required {need}"
    return None


def _block_alias(block: Sequence[Entry]) -> str:
    return block[0].alias if block else ""


def _block_price(block: Sequence[Entry]) -> Decimal | None:
    return block[0].price if block else None


def _block_weight(block: Sequence[Entry]) -> float:
    return sum(e.weight for e in block)


def _expand(
    node: Node,
    stats: DeploymentStats | None,
    rng: random.Random,
    trace: list[str] | None,
    out: list[Entry],
    stream: bool = False,
    bound: OutputBound | None = None,
) -> None:
    if isinstance(node, Entry):
        out.append(node)
        return
    blocks: list[list[Entry]] = []
    for child in node.children:
        block: list[Entry] = []
        _expand(child, stats, rng, trace, block, stream, bound)
        blocks.append(block)
    ordered = order_members(
        node.strategy,
        blocks,
        alias=_block_alias,
        price=_block_price,
        weight=_block_weight,
        stats=stats,
        rng=rng,
        stream=stream,
        max_output_tokens=bound,
    )
    start = len(out)
    for block in ordered:
        out.extend(block)
    if trace is not None:
        notes = ", ".join(order_note(node.strategy, e, stats, stream, bound) for e in out[start:])
        trace.append(f"group '{node.name}' ({node.strategy}): {notes}")


def _walk(node: Node) -> list[Entry]:
    if isinstance(node, Entry):
        return [node]
    return [e for child in node.children for e in _walk(child)]


def _has_strategy(node: Node, strategies: frozenset[str]) -> bool:
    if isinstance(node, Entry):
        return False
    if node.strategy in strategies and len(node.children) > 1:
        return True
    return any(_has_strategy(c, strategies) for c in node.children)


def _select(entries: Sequence[Entry]) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Drop entries failing static requirements, then keep each alias's first survivor."""
    kept: list[Entry] = []
    seen: set[str] = set()
    dropped: dict[str, str] = {}
    for entry in entries:
        if entry.static_reason is not None:
            dropped.setdefault(entry.alias, entry.static_reason)
        elif entry.alias not in seen:
            seen.add(entry.alias)
            kept.append(entry)
    skipped = [(alias, why) for alias, why in dropped.items() if alias not in seen]
    return kept, skipped


class TargetPlan:
    """The compiled expansion of one target (a route's ``to``, a group or a model alias).

    ``params`` are the route's parameter overrides and ``default_max_tokens`` the policy's
    ``defaults.max_tokens``: with the call's and the deployments' params they give the output
    limit each call sends, at which ``fastest`` compares unstreamed answers.
    """

    __slots__ = (
        "_default_max_tokens",
        "_dynamic",
        "_families",
        "_fastest",
        "_lacks_json",
        "_lacks_tools",
        "_lacks_vision",
        "_limited",
        "_min_window",
        "_model_limits",
        "_nodes",
        "_params",
        "_static_entries",
        "_stats_dynamic",
        "label",
        "requirements",
        "static_candidates",
        "static_skipped",
    )

    def __init__(
        self,
        label: str,
        nodes: Sequence[Node],
        requirements: Requirements,
        *,
        params: Mapping[str, Any] = _NO_PARAMS,
        default_max_tokens: int | None = None,
    ) -> None:
        self.label = label
        self.requirements = requirements
        self._nodes = tuple(nodes)
        self._dynamic = any(_has_strategy(n, frozenset({"weighted"})) for n in self._nodes)
        self._stats_dynamic = any(
            _has_strategy(n, frozenset({"fastest", "least_busy"})) for n in self._nodes
        )
        self._fastest = any(_has_strategy(n, frozenset({"fastest"})) for n in self._nodes)
        self._params = params
        self._default_max_tokens = default_max_tokens
        every = [e for n in self._nodes for e in _walk(n) if e.static_reason is None]
        # deployments whose own params set an output limit (the call or route may override it)
        self._model_limits: Mapping[str, Mapping[str, Any]] = {
            e.alias: e.candidate.spec.params
            for e in every
            if limits_output(e.candidate.spec.params)
        }
        # whether anything but the call can limit the output: if not, a call that names no
        # limit is settled by two lookups
        self._limited = (
            bool(self._model_limits) or default_max_tokens is not None or limits_output(params)
        )
        self._lacks_tools = any(not e.tools for e in every)
        self._lacks_vision = any(not e.vision for e in every)
        self._lacks_json = any(not e.json_schema for e in every)
        # each deployment's provider family, when known: only then are a call's provider
        # tools read
        families = {e.alias: deployment_family(e.candidate.spec) for e in every}
        self._families: Mapping[str, Family | None] | None = (
            families if any(f is not None for f in families.values()) else None
        )
        windows = [e.window for e in every if e.window is not None]
        self._min_window = min(windows) if windows else None
        # the expansion without stats or randomness, reused by every call that needs no more
        raw: list[Entry] = []
        unused = random.Random(0)
        for node in self._nodes:
            _expand(node, None, unused, None, raw)
        kept, skipped = _select(raw)
        self._static_entries = tuple(kept)
        self.static_candidates = tuple(e.candidate for e in kept)
        self.static_skipped = tuple(skipped)

    def resolve(
        self,
        facts: RequestFacts,
        stats: DeploymentStats | None,
        rng: random.Random,
        trace: list[str] | None,
        *,
        route: str | None = None,
    ) -> tuple[tuple[Candidate, ...], tuple[tuple[str, str], ...], Requirements]:
        """Ordered candidates, skipped ``(alias, reason)`` pairs and the requirements applied.

        Raises :class:`~policyroute.errors.NoCandidateError` when nothing is left.
        """
        if trace is None and not self._dynamic and (stats is None or not self._stats_dynamic):
            entries: Sequence[Entry] = self._static_entries
            skipped: Sequence[tuple[str, str]] = self.static_skipped
        else:
            raw: list[Entry] = []
            stream = facts.stream()  # fastest ranks streams by their first token
            bound = (
                self._output_bound(facts.request.params)
                if self._fastest and not stream and stats is not None
                else None
            )
            for node in self._nodes:
                _expand(node, stats, rng, trace, raw, stream, bound)
            entries, skipped = _select(raw)

        request = facts.request
        need_tools = bool(request.tools)
        need_vision = facts.has_images()
        need_json = request.response_format is not None and facts.wants_json_schema()
        families = self._families
        kinds = provider_tools(request.tools) if need_tools and families is not None else ()
        tokens: int | None = None
        window = self._min_window
        if window is not None and facts.token_upper_bound() > window:
            tokens = facts.input_tokens()
            if tokens <= window:
                tokens = None
        requirements = self.requirements
        if need_tools or need_vision or need_json:
            requirements = requirements.merge(
                Requirements(
                    tools=need_tools or None,
                    vision=need_vision or None,
                    json_schema=need_json or None,
                )
            )

        filtering = (
            (need_tools and self._lacks_tools)
            or (need_vision and self._lacks_vision)
            or (need_json and self._lacks_json)
            or tokens is not None
            or bool(kinds)
        )
        if filtering:
            kept: list[Entry] = []
            dropped = list(skipped)
            for entry in entries:
                why = _dynamic_reason(entry, need_tools, need_vision, need_json, tokens)
                if why is None and kinds and families is not None:
                    why = _tools_reason(families.get(entry.alias), kinds)
                if why is None:
                    kept.append(entry)
                else:
                    dropped.append((entry.alias, why))
            entries, skipped = kept, dropped

        if not entries:
            where = f"route '{route}'" if route else f"target '{self.label}'"
            reasons = "; ".join(f"{alias}: {why}" for alias, why in skipped)
            raise NoCandidateError(
                f"{where}: no candidate deployment left ({reasons or 'none listed'})",
                route=route,
                skipped=[f"{alias}: {why}" for alias, why in skipped],
            )

        # One candidate has no order to change (only a trace says it is unavailable).
        moved = (
            None
            if stats is None or (len(entries) < 2 and trace is None)
            else _availability_last(entries, stats, trace)
        )
        if moved is not None:
            candidates = moved
        elif entries is self._static_entries:
            candidates = self.static_candidates
        else:
            candidates = tuple(e.candidate for e in entries)
        if trace is not None and skipped:
            trace.extend(f"skipped {alias}: {why}" for alias, why in skipped)
        return candidates, tuple(skipped), requirements

    def _output_bound(self, call: Mapping[str, Any]) -> OutputBound | None:
        """Each deployment's output limit for a call with params ``call``, or ``None`` when
        nothing limits any of them.

        One limit for all unless a deployment's own params set one; then that deployment
        is compared at its own (its answer cannot be longer), the others at the common one.
        """
        if not self._limited and not limits_output(call):
            return None
        common = sent_output_bound(call, self._params, _NO_PARAMS, self._default_max_tokens)
        if not self._model_limits:
            return None if common is None else lambda _alias: common
        own = {
            alias: sent_output_bound(call, self._params, params, self._default_max_tokens)
            for alias, params in self._model_limits.items()
        }
        if common is None and all(limit is None for limit in own.values()):
            return None
        return lambda alias: own.get(alias, common)


def _dynamic_reason(
    entry: Entry, tools: bool, vision: bool, json_schema: bool, tokens: int | None
) -> str | None:
    if tools and not entry.tools:
        return "request offers tools; deployment lacks tool calling"
    if vision and not entry.vision:
        return "request has images; deployment lacks vision"
    if json_schema and not entry.json_schema:
        return "request wants json_schema output; deployment lacks it"
    if tokens is not None and entry.window is not None and tokens > entry.window:
        return f"input_tokens={tokens} > context window {entry.window}"
    return None


def _tools_reason(family: Family | None, kinds: tuple[str, ...]) -> str | None:
    refused = refused_tools(family, kinds)
    if not refused:
        return None
    noun, pronoun = ("tool", "it") if len(refused) == 1 else ("tools", "them")
    return (
        f"request offers provider {noun} {', '.join(refused)};"
        f" {family} deployments do not take {pronoun}"
    )


def _availability_last(
    entries: Sequence[Entry], stats: DeploymentStats, trace: list[str] | None
) -> tuple[Candidate, ...] | None:
    """Candidates with unavailable ones moved last, or ``None`` when all are available."""
    is_available = stats.is_available
    if all(is_available(e.alias) for e in entries):
        return None
    available: list[Candidate] = []
    unavailable: list[Candidate] = []
    for entry in entries:
        (available if is_available(entry.alias) else unavailable).append(entry.candidate)
    if trace is not None:
        names = ", ".join(c.alias for c in unavailable)
        trace.append(f"unavailable (circuit open), moved last: {names}")
    return tuple(available + unavailable)


def build_nodes(
    names: Sequence[str],
    *,
    groups: Mapping[str, GroupSpec],
    make_entry: Callable[[str, str | None, Requirements], Entry],
    require: Requirements,
) -> list[Node]:
    """Nodes for target ``names``; ``make_entry(alias, via, require)`` builds one entry.

    ``require`` accumulates down the tree: an alias reached through groups must meet the
    route's requirements and those of each group on the way.
    """

    made = 0

    def node(name: str, via: str | None, req: Requirements, path: tuple[str, ...]) -> Node:
        nonlocal made
        group = groups.get(name)
        if group is None:
            made += 1
            if made > MAX_EXPANSION:  # the checks report this as PR129 first
                raise PolicyError(
                    f"{' or '.join(names)} expands to more than {MAX_EXPANSION} entries"
                    " through nested groups"
                )
            return make_entry(name, via, req)
        if name in path:
            cycle = " -> ".join((*path, name))
            raise PolicyError(f"groups nest each other in a loop: {cycle}")
        if len(path) >= MAX_GROUP_DEPTH:
            raise PolicyError(
                f"groups nest deeper than {MAX_GROUP_DEPTH} levels: "
                + " -> ".join((*path[:3], "...", name))
            )
        inner = req.merge(group.require) if group.require != _NO_REQUIREMENTS else req
        children = tuple(node(m, name, inner, (*path, name)) for m in group.models)
        return GroupNode(name, group.strategy, children)

    return [node(n, None, require, ()) for n in names]
