"""Spelling suggestions for a name that is none of the names expected.

The policy checks, the request fields of ``explain --request`` and the keys of a policy tests
file all suggest alike: the known name closest to the one written, when one is close enough.

Example:
    >>> did_you_mean("sonet", ["sonnet", "haiku"])
    "did you mean 'sonnet'?"
    >>> with_hints(["metdata", "zzz"], ["metadata", "model"], quote=True)
    "'metdata' (did you mean 'metadata'?), 'zzz'"
    >>> close_or_defined("gpt", ["sonnet", "haiku"], "models and groups")
    "models and groups defined: 'haiku', 'sonnet'"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = ["boolean_word_hint", "close_or_defined", "did_you_mean", "with_hints"]

# How many defined names close_or_defined lists before saying how many more there are.
_LISTED = 12

# YAML 1.1 read these words as booleans; YAML 1.2, which a policy is read as, reads them as text.
_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean '<choice>'?`` for the choice closest to ``word``, ``None`` if none is
    close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        return None
    # a line break or another control character would split the diagnostic's line
    shown = f"'{close[0]}'" if close[0].isprintable() else repr(close[0])
    return f"did you mean {shown}?"


def close_or_defined(word: str, choices: Iterable[str], what: str) -> str | None:
    """:func:`did_you_mean` when a choice is close to ``word``; else the names defined
    (``what`` says of what), so that the reader need not look them up; ``None`` when there are
    none."""
    names = sorted(set(choices))
    hint = did_you_mean(word, names)
    if hint is not None or not names:
        return hint
    shown = [f"'{n}'" if n.isprintable() else repr(n) for n in names[:_LISTED]]
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return f"{what} defined: {', '.join(shown)}{more}"


def with_hints(unknown: Sequence[str], known: Iterable[str], *, quote: bool = False) -> str:
    """The ``unknown`` names, comma-separated (each quoted with ``quote``), each followed by
    its :func:`did_you_mean` among ``known`` where one is close."""
    choices = sorted(known)
    named = []
    for name in unknown:
        shown = repr(name) if quote else name
        hint = did_you_mean(name, choices)
        named.append(f"{shown} ({hint})" if hint else shown)
    return ", ".join(named)


def boolean_word_hint(value: object) -> str | None:
    """What to write instead of text that YAML 1.1 read as a boolean (``yes``, ``off``), where
    a boolean is wanted; ``None`` for any other value.

    Example:
        >>> boolean_word_hint("yes")
        "YAML 1.2 reads 'yes' as text, not a boolean: write true or false"
    """
    if isinstance(value, str) and value.strip().lower() in _YAML11_BOOLEANS:
        return f"YAML 1.2 reads {value!r} as text, not a boolean: write true or false"
    return None
