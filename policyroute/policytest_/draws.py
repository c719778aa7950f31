"""Routes whose candidate order is drawn at random, and how policy tests keep them repeatable.

A ``weighted`` group orders its members by a weighted random draw on every call, so what a
case expects of ``model`` or ``candidates`` on such a route could hold on one run and not on
the next: a CI job that passes or fails by chance. Policy tests therefore route every case with
a seeded random source (:data:`SEEDS`, the same on every run), and a case that expects the
order of a random route is routed once per seed: when the draws disagree on what it expects,
the case is an error that names the group, rather than a comparison decided by the first draw.

Example:
    >>> from policyroute.policy.model import GroupSpec
    >>> groups = {"spread": GroupSpec("spread", "weighted", ("a", "b")), "one": GroupSpec(
    ...     "one", "weighted", ("a",))}
    >>> weighted_groups(("one", "spread", "a"), groups)
    ('spread',)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policyroute.policy.model import GroupSpec

__all__ = ["SEEDS", "groups_reached", "weighted_groups"]

SEEDS = tuple(range(16))
"""The seeds a random route is drawn with; the first is the one every case is routed with.

Sixteen draws of two equally weighted members all agree once in 32,768 orderings of seeds;
the seeds are fixed, so whatever they find is found on every run."""


def groups_reached(names: Sequence[str], groups: Mapping[str, GroupSpec]) -> tuple[GroupSpec, ...]:
    """The groups reached from ``names`` (a route's ``to``), nested groups included, each once,
    in the order they are first reached."""
    found: list[GroupSpec] = []
    seen: set[str] = set()
    pending = list(reversed(names))
    while pending:
        name = pending.pop()
        group = groups.get(name)
        if group is None or name in seen:
            continue
        seen.add(name)
        found.append(group)
        pending.extend(reversed(group.models))
    return tuple(found)


def weighted_groups(names: Sequence[str], groups: Mapping[str, GroupSpec]) -> tuple[str, ...]:
    """The ``weighted`` groups of more than one member reached from ``names`` (a route's
    ``to``), nested groups included, in the order they are first reached."""
    return tuple(
        g.name
        for g in groups_reached(names, groups)
        if g.strategy == "weighted" and len(g.models) > 1
    )
