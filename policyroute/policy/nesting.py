"""Bounds on nested groups, so that validating, compiling and routing stay fast and shallow.

Groups are expanded in place, so a group listed by several others is expanded once per path
that reaches it: twenty groups each listing all the later ones expand to a million entries
(compiling took minutes), and a chain of a thousand groups exhausted Python's recursion limit.
A group (or a route's ``to``) may expand to at most :data:`MAX_EXPANSION` entries, and groups
may nest at most :data:`MAX_GROUP_DEPTH` levels (PR129).

Sizes and depths are computed without recursion, each group once.

Example:
    >>> sizes, depths = measure({"g": ["a", "h", "h"], "h": ["a", "b"]}, {"a", "b"})
    >>> sizes["g"], depths["g"]
    (5, 2)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Final

__all__ = ["MAX_EXPANSION", "MAX_GROUP_DEPTH", "measure"]

MAX_GROUP_DEPTH: Final = 32
"""How many levels groups may nest (a group of models is one level)."""

MAX_EXPANSION: Final = 1000
"""How many entries a group or a route's target may expand to, counting repeats."""


def measure(
    groups: Mapping[str, Sequence[str]], models: Collection[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Expanded size (capped at ``MAX_EXPANSION + 1``) and nesting depth of every group.

    A model counts 1 and has depth 0; an unknown member counts 0; a member that closes a cycle
    (reported elsewhere, PR112) counts 0.
    """
    sizes: dict[str, int] = {}
    depths: dict[str, int] = {}
    on_path: set[str] = set()
    for root in groups:
        if root in sizes:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            name, done = stack.pop()
            if done:
                size, depth = 0, 0
                for member in groups[name]:
                    if member in models:
                        size += 1
                    elif member in sizes:
                        size += sizes[member]
                        depth = max(depth, depths[member])
                sizes[name] = min(size, MAX_EXPANSION + 1)
                depths[name] = depth + 1
                on_path.discard(name)
                continue
            if name in sizes or name in on_path:
                continue
            on_path.add(name)
            stack.append((name, True))
            for member in groups[name]:
                fresh = member not in sizes and member not in on_path
                if fresh and member in groups and member not in models:
                    stack.append((member, False))
    return sizes, depths
