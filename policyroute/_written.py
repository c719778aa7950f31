"""A value as an error message shows it: as the person wrote it in YAML or JSON.

Requests and policies are written in YAML or JSON, where nothing is spelled ``None``,
``True`` or ``False``: a message that says ``got None`` for a field written ``null`` sends the
reader looking for a value they never wrote. :func:`written` is Python's ``repr`` with those
three spelled ``null``, ``true`` and ``false`` wherever they appear, in lists and mappings too;
everything else (strings in quotes, numbers, other objects) reads as ``repr`` has it.

Example:
    >>> written([None, True, "a", 1.5])
    "[null, true, 'a', 1.5]"
    >>> written({"type": None})
    "{'type': null}"
    >>> written(list(range(100)), limit=20)
    '[0, 1, 2, 3, 4, 5...'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["written"]

_WORDS = {None: "null", True: "true", False: "false"}


def _pieces(value: Any, open_ids: set[int]) -> Iterator[str]:
    # Exact types only: a subclass (a named tuple, an ordered mapping) has a repr of its own.
    kind = type(value)
    if value is None or kind is bool:
        yield _WORDS[value]
        return
    if kind not in (list, tuple, dict):
        yield repr(value)
        return
    if id(value) in open_ids:  # a container holding itself, shown as repr does
        yield "{...}" if kind is dict else "[...]" if kind is list else "(...)"
        return
    open_ids.add(id(value))
    try:
        if kind is dict:
            yield "{"
            for i, (key, item) in enumerate(value.items()):
                yield ", " if i else ""
                yield from _pieces(key, open_ids)
                yield ": "
                yield from _pieces(item, open_ids)
            yield "}"
            return
        yield "[" if kind is list else "("
        for i, item in enumerate(value):
            yield ", " if i else ""
            yield from _pieces(item, open_ids)
        yield "]" if kind is list else ("," if len(value) == 1 else "") + ")"
    finally:
        open_ids.discard(id(value))


def written(value: Any, *, limit: int | None = None) -> str:
    """``value`` as YAML or JSON would spell its nulls and booleans, else as ``repr``; cut to
    ``limit`` characters (ending in ``...``) when it is longer, without spelling out the rest
    of a large value.
    """
    pieces = _pieces(value, set())
    if limit is None:
        return "".join(pieces)
    text = ""
    # Pieces are read only until the text is past the limit: a long list is not spelled out.
    for piece in pieces:
        text += piece
        if len(text) > limit:
            return text[: limit - 3] + "..."
    return text
