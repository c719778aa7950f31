"""Finding regexes whose backtracking can take exponential time (catastrophic backtracking).

Python's ``re`` backtracks and cannot be interrupted, so ``(a+)+$`` against forty ``a`` and a
``b`` runs for days, holding the routing thread. Such a pattern is refused before it can route
(PR127). The analysis works on the parse tree ``re`` itself builds and looks for the two forms
that make one string match in exponentially many ways inside a repetition (``*``, ``+``,
``{n,}`` or ``{n,m}`` with ``m >= 3``):

- **nested repetition**: the repeated body holds a variable repetition (``(a+)+``,
  ``(\\w+\\s?)+``, ``(.*,)+``, ``(x+x+)+``) and nothing mandatory in the body marks where one
  turn ends, i.e. no required part that the inner repetition cannot itself match. So
  ``(\\w+\\.)+`` (words end at a dot) and ``(ab+)*`` are accepted;
- **overlapping alternatives**: two alternatives of a repeated group can start with the same
  character, or one can match nothing (``(a|ab)+``, ``(?:\\r\\n|\\r|\\n)+``).

Possessive repeats, atomic groups and lookarounds do not backtrack into themselves and are not
looked into. The check is a heuristic: it errs towards refusing (``(?:xa|[xy]b)+`` is refused
though it is harmless); patterns that are slow but polynomial (``\\s+$`` is quadratic) are
bounded at run time by reading a fact's first characters only.

Example:
    >>> catastrophic("(a+)+$") is not None, catastrophic("(?i)refund|invoice") is None
    (True, True)
    >>> catastrophic(r"^(\\w+\\.)+com$") is None
    True
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Final

__all__ = ["catastrophic"]

# re's parser is private; its module moved in 3.11 (sre_parse warns on import from then on)
_PARSER: Final[Any] = importlib.import_module(
    "re._parser" if sys.version_info >= (3, 11) else "sre_parse"
)
_C: Final[Any] = importlib.import_module(
    "re._constants" if sys.version_info >= (3, 11) else "sre_constants"
)

_MAXREPEAT: Final = int(_C.MAXREPEAT)
_BACKTRACKING: Final = frozenset({_C.MAX_REPEAT, _C.MIN_REPEAT})
_OPAQUE: Final = frozenset(  # never backtracked into: skipped by the search for repeats
    {_C.ASSERT, _C.ASSERT_NOT}
    | ({_C.ATOMIC_GROUP, _C.POSSESSIVE_REPEAT} if sys.version_info >= (3, 11) else set())
)
_ZERO_WIDTH: Final = frozenset({_C.AT, _C.ASSERT, _C.ASSERT_NOT})

# Character sets are compared on a sample alphabet: ASCII and a few characters from other
# classes (letters, digits, spaces and symbols beyond ASCII). Over-reporting an overlap only
# makes the check stricter.
_PROBES: Final = frozenset([chr(i) for i in range(128)] + list("éßЖ中٣\u00a0\u2028\u200b€😀"))
_CATEGORIES: Final = {
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_NOT_DIGIT": re.compile(r"\D"),
    "CATEGORY_SPACE": re.compile(r"\s"),
    "CATEGORY_NOT_SPACE": re.compile(r"\S"),
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_NOT_WORD": re.compile(r"\W"),
}
_ALL: Final = _PROBES

Item = tuple[Any, Any]


def _cased(code: int) -> set[str]:
    # both cases always: a local (?i) would otherwise be missed, and more overlap is stricter
    ch = chr(code)
    return {ch, ch.lower(), ch.upper()}


def _category(name: Any) -> frozenset[str]:
    pattern = _CATEGORIES.get(str(name))
    if pattern is None:
        return _ALL
    return frozenset(ch for ch in _PROBES if pattern.match(ch))


def _in_set(items: Sequence[Item]) -> frozenset[str]:
    chars: set[str] = set()
    negate = False
    for op, av in items:
        if op == _C.NEGATE:
            negate = True
        elif op == _C.LITERAL:
            chars |= _cased(av)
        elif op == _C.RANGE:
            lo, hi = av
            chars |= {ch for ch in _PROBES if lo <= ord(ch) <= hi}
            chars |= {ch.swapcase() for ch in chars}
        elif op == _C.CATEGORY:
            chars |= _category(av)
        else:
            return _ALL
    return _ALL - chars if negate else frozenset(chars)


def _chars(seq: Sequence[Item]) -> frozenset[str]:
    """Every character some match of ``seq`` can consume."""
    out: set[str] = set()
    for op, av in seq:
        if op == _C.LITERAL:
            out |= _cased(av)
        elif op == _C.NOT_LITERAL or op == _C.ANY:
            return _ALL
        elif op == _C.IN:
            out |= _in_set(av)
        elif op in _ZERO_WIDTH:
            continue
        else:
            for sub in _children(op, av):
                out |= _chars(sub)
            if op in (_C.GROUPREF,):
                return _ALL
    return frozenset(out)


def _children(op: Any, av: Any) -> list[Sequence[Item]]:
    """The sub-sequences of one node (for every kind that has any)."""
    if op in _BACKTRACKING or op == getattr(_C, "POSSESSIVE_REPEAT", None):
        return [av[2]]
    if op == _C.SUBPATTERN:
        return [av[3]]
    if op == _C.BRANCH:
        return list(av[1])
    if op == _C.GROUPREF_EXISTS:
        return [s for s in av[1:] if s is not None]
    if op in (_C.ASSERT, _C.ASSERT_NOT):
        return [av[1]]
    if op == getattr(_C, "ATOMIC_GROUP", None):
        return [av]
    return []


def _nullable(item: Item) -> bool:
    op, av = item
    if op in _ZERO_WIDTH or op in (_C.GROUPREF,):
        return True
    if op in _BACKTRACKING or op == getattr(_C, "POSSESSIVE_REPEAT", None):
        return int(av[0]) == 0 or _all_nullable(av[2])
    if op in (_C.BRANCH, _C.GROUPREF_EXISTS):
        return any(_all_nullable(s) for s in _children(op, av)) or op == _C.GROUPREF_EXISTS
    if op == _C.SUBPATTERN or op == getattr(_C, "ATOMIC_GROUP", None):
        return _all_nullable(_children(op, av)[0])
    return False


def _all_nullable(seq: Sequence[Item]) -> bool:
    return all(_nullable(item) for item in seq)


def _first(seq: Sequence[Item]) -> frozenset[str]:
    """Characters a non-empty match of ``seq`` can start with."""
    out: set[str] = set()
    for item in seq:
        op, av = item
        if op in _BACKTRACKING or op == getattr(_C, "POSSESSIVE_REPEAT", None):
            out |= _first(av[2])
        elif op == _C.SUBPATTERN or op == getattr(_C, "ATOMIC_GROUP", None):
            out |= _first(_children(op, av)[0])
        elif op in (_C.BRANCH, _C.GROUPREF_EXISTS):
            for sub in _children(op, av):
                out |= _first(sub)
        elif op not in _ZERO_WIDTH:
            out |= _chars([item])
        if not _nullable(item):
            break
    return frozenset(out)


def _flat(seq: Sequence[Item]) -> list[Item]:
    """``seq`` with groups opened: concatenation does not care where a group starts."""
    out: list[Item] = []
    for op, av in seq:
        if op == _C.SUBPATTERN:
            out.extend(_flat(av[3]))
        else:
            out.append((op, av))
    return out


def _variable(seq: Sequence[Item]) -> list[tuple[int, frozenset[str]]]:
    """``(index, characters)`` of the variable repetitions under each item of ``_flat(seq)``.

    A repetition nested in an alternative or another repetition counts unless its own sequence
    closes it on both sides with a mandatory part it cannot match.
    """
    found: list[tuple[int, frozenset[str]]] = []
    for k, (op, av) in enumerate(_flat(seq)):
        if op in _OPAQUE:
            continue
        if op in _BACKTRACKING:
            low, high, body = int(av[0]), int(av[1]), av[2]
            if high > low and high >= 2:
                found.append((k, _chars(body)))
            subs = [body]
        else:
            subs = _children(op, av)
        for sub in subs:
            found.extend((k, chars) for chars in _open(sub))
    return found


def _delimits(item: Item, chars: frozenset[str]) -> bool:
    return not _nullable(item) and not (_chars([item]) & chars)


def _open(seq: Sequence[Item]) -> list[frozenset[str]]:
    """Variable repetitions in ``seq`` not closed on both sides by a mandatory delimiter."""
    items = _flat(seq)
    return [
        chars
        for k, chars in _variable(seq)
        if not (
            any(_delimits(item, chars) for item in items[:k])
            and any(_delimits(item, chars) for item in items[k + 1 :])
        )
    ]


def _ambiguous_turns(body: Sequence[Item]) -> bool:
    """Whether two variable repetitions of a repeated ``body`` can share text between them.

    The body is read as a cycle (one turn follows another), and each pair of repetitions whose
    characters overlap must be separated, on the way from one to the other, by a mandatory part
    that matches none of those characters. A repetition is paired with itself too (the way
    round the whole cycle): ``(a+)+`` has nothing between two turns of ``a+``.
    """
    items = _flat(body)
    n = len(items)
    # what each item must consume (None: it can match nothing), computed once
    required = [None if _nullable(item) else _chars([item]) for item in items]
    at: dict[int, list[frozenset[str]]] = {}
    for k, chars in _variable(body):
        at.setdefault(k, []).append(chars)
    for a, starts in at.items():
        for chars_a in starts:
            # walk from a round the cycle; past a part chars_a cannot match, every later pair
            # is delimited (what two repetitions share is a subset of chars_a)
            passed: list[frozenset[str]] = []
            for i in range(1, n + 1):
                j = (a + i) % n
                for chars_b in at.get(j, ()):
                    shared = chars_a & chars_b
                    if shared and all(d & shared for d in passed):
                        return True
                here = required[j]
                if here is not None:
                    if not (here & chars_a):
                        break
                    passed.append(here)
    return False


def _branches(seq: Sequence[Item]) -> Iterator[list[Sequence[Item]]]:
    for op, av in _flat(seq):
        if op == _C.BRANCH:
            yield list(av[1])
        elif op == _C.GROUPREF_EXISTS:
            yield [s for s in av[1:] if s is not None]


def _overlapping(alternatives: list[Sequence[Item]]) -> bool:
    if any(_all_nullable(alt) for alt in alternatives):
        return True
    firsts = [_first(alt) for alt in alternatives]
    return any(firsts[i] & firsts[j] for i in range(len(firsts)) for j in range(i + 1, len(firsts)))


def _repeats(seq: Sequence[Item]) -> Iterator[Item]:
    for op, av in seq:
        if op in _OPAQUE:
            continue
        if op in _BACKTRACKING:
            yield op, av
        for sub in _children(op, av):
            yield from _repeats(sub)


@functools.lru_cache(maxsize=256)
def catastrophic(pattern: str) -> str | None:
    """Why ``pattern`` can backtrack exponentially, or ``None``; raises :class:`re.error`.

    Example:
        >>> catastrophic("(a|ab)+$")
        'alternatives of a repeated group can match the same text'
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported as PR115 warnings by the checks
            parsed = _PARSER.parse(pattern).data
        return _risk(parsed)
    except RecursionError:  # deeper than re itself compiles; refused rather than guessed at
        return "its groups are nested too deeply to analyse"


def _risk(parsed: Sequence[Item]) -> str | None:
    for _, (_, high, body) in _repeats(parsed):
        if int(high) != _MAXREPEAT and int(high) < 3:
            continue
        if _ambiguous_turns(body):
            return "a repetition inside a repetition can split the same text in many ways"
        if any(_overlapping(alts) for alts in _branches(body)):
            return "alternatives of a repeated group can match the same text"
    return None
