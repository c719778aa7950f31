"""Finding regexes whose search time grows with a high power of the text's length.

Reading only a fact's first 10,000 characters bounds a quadratic pattern (``\\s+y``: about a
quarter of a second). It does not bound two repetitions in a row that can share the same text:
``re.search`` tries every start, the first repetition every length and the second every length
after it, so ``\\w+\\s*\\w+!`` is cubic (half an hour on 10,000 letters) and ``a*a*a*b`` is worse.
Such a pattern is refused before it can route (PR127), next to the exponential ones of
:mod:`policyroute.policy.regex_risk`.

Two variable repetitions are *linked* when some character can be repeated by both and every
mandatory part between them matches only characters they both repeat (``.*foo.*bar`` on
``foofoofoo...``). The search over start positions is one more power: a chain of two linked
repetitions is refused, or of three when the pattern is anchored at the start (``^`` or ``\\A``),
and only when something after the chain can fail (``.*@.*`` always succeeds once it reaches
the ``@``). Like the exponential check, it errs towards refusing.

Example:
    >>> slow_search(r"\\w+\\s*\\w+!") is not None, slow_search(r"(?i)refund.*invoice") is None
    (True, True)
    >>> slow_search(r"^\\w+\\s*\\w+!") is None  # anchored: quadratic, bounded by the cut
    True
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Final

from policyroute.policy.regex_risk import (
    _ALL,
    _BACKTRACKING,
    _C,
    _OPAQUE,
    _PARSER,
    Item,
    _cased,
    _chars,
    _children,
    _flat,
    _in_set,
    _nullable,
)

__all__ = ["slow_search"]

_EMPTY: Final[frozenset[str]] = frozenset()


def _runs(seq: Sequence[Item]) -> frozenset[str]:
    """Characters ``c`` such that ``seq`` can match a non-empty run of ``c`` alone."""
    required = [item for item in seq if not _nullable(item)]
    if required:
        out = _ALL
        for item in required:
            out &= _run(item)
        return out
    found: set[str] = set()
    for item in seq:
        found |= _run(item)
    return frozenset(found)


def _run(item: Item) -> frozenset[str]:
    op, av = item
    if op == _C.LITERAL:
        return frozenset(_cased(av))
    if op == _C.IN:
        return _in_set(av)
    if op in (_C.ANY, _C.NOT_LITERAL, _C.GROUPREF):
        return _ALL
    if op in _OPAQUE or op in (_C.AT,):
        return _EMPTY
    if op == _C.BRANCH:
        out: set[str] = set()
        for alt in av[1]:
            out |= _runs(alt)
        return frozenset(out)
    subs = _children(op, av)
    if subs:
        return _runs(subs[0]) if len(subs) == 1 else frozenset().union(*map(_runs, subs))
    return _chars([item])


def _variable(item: Item) -> bool:
    op, av = item
    return op in _BACKTRACKING and int(av[1]) - int(av[0]) >= 3


def _can_fail(items: Sequence[Item]) -> bool:
    """Whether matching ``items`` can fail: a mandatory part or an anchor such as ``$``."""
    return any(
        not _nullable(item) or item[0] in (_C.AT, _C.ASSERT, _C.ASSERT_NOT) for item in items
    )


def _longest_chain(items: Sequence[Item], *, top: bool) -> int:
    """The longest chain of linked repetitions in ``items`` that something after can fail."""
    # chains[j]: (length, characters every repetition of the chain repeats) ending at item j
    chains: dict[int, list[tuple[int, frozenset[str]]]] = {}
    best = 0
    for j, item in enumerate(items):
        if not _variable(item):
            continue
        own = _runs([item])
        if not own:
            continue
        ends = [(1, own)]
        for i in range(j):
            for length, shared in chains.get(i, ()):
                common = shared & own
                between = items[i + 1 : j]
                if common and all(_nullable(b) or _chars([b]) <= common for b in between):
                    ends.append((length + 1, common))
        chains[j] = ends
        # inside a group, what follows the group may fail: assume it does
        if not top or _can_fail(items[j + 1 :]):
            best = max(best, *(length for length, _ in ends))
    return best


def _sequences(seq: Sequence[Item], *, top: bool) -> Iterator[tuple[Sequence[Item], bool]]:
    """Every sequence in the pattern, and whether it ends where the whole pattern ends."""
    items = _flat(seq)
    yield items, top
    last = len(items) - 1
    for k, (op, av) in enumerate(items):
        for sub in _children(op, av):
            # the alternatives of a final `a|b` end where the pattern ends, too
            yield from _sequences(sub, top=top and k == last and op == _C.BRANCH)


def _multiline(seq: Sequence[Item]) -> bool:
    for op, av in seq:
        if op == _C.SUBPATTERN and int(av[1] or 0) & re.MULTILINE:
            return True
        if any(_multiline(sub) for sub in _children(op, av)):
            return True
    return False


def _anchored(parsed: Any) -> bool:
    """Whether every match starts at the start of the text (search tries one place only)."""
    items = _flat(list(parsed.data))
    if not items or items[0][0] != _C.AT:
        return False
    if items[0][1] == _C.AT_BEGINNING_STRING:
        return True
    # `^` is the start of any line under MULTILINE, given globally or in a group
    global_multiline = int(parsed.state.flags) & re.MULTILINE
    return items[0][1] == _C.AT_BEGINNING and not global_multiline and not _multiline(parsed.data)


@functools.lru_cache(maxsize=256)
def slow_search(pattern: str) -> str | None:
    """Why searching ``pattern`` can take time polynomial of degree three or more, or ``None``.

    Raises :class:`re.error` when the pattern does not compile.

    Example:
        >>> slow_search(r".*foo.*bar")
        'two repetitions in a row can split the same text in many ways'
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported as PR115 warnings by the checks
            parsed = _PARSER.parse(pattern)
        limit = 3 if _anchored(parsed) else 2
        for items, top in _sequences(list(parsed.data), top=True):
            if _longest_chain(items, top=top) >= limit:
                return "two repetitions in a row can split the same text in many ways"
    except RecursionError:
        return "its groups are nested too deeply to analyse"
    return None
