"""Where in a request document the field a :class:`~policyroute.errors.RequestError` names is.

Request checks name what is wrong as a field path (``request field 'messages[0].role'``,
``request parameter 'max_tokens'``, ``unknown request field(s) 'metdata'``); a request read
from a file (``policyroute explain --request``, a policy test's ``request``) keeps the line
and column of every node, so the CLI can point at the line as well. The path is read back
from the message, the one place every check already writes it; a message that names no field
has no place, and the error is shown as before.

Example:
    >>> request_error_path("request field 'messages[0].role' is 'robot'", {"messages": []})
    (('messages', 0, 'role'), False)
    >>> request_error_path("request parameter 'n' must be ...", {"params": {"n": 0}})
    (('params', 'n'), False)
    >>> request_error_path("unknown request field(s) 'metdata' (did you mean ...)", {})
    (('metdata',), True)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["request_error_path"]

_UNKNOWN = re.compile(r"unknown request field\(s\) '([^']*)'")  # '' too: an empty key
_FIELD = re.compile(r"request (field|parameter) '([^']+)'")
_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _parts(dotted: str) -> tuple[str | int, ...]:
    """``messages[0].content[1].text`` -> ``('messages', 0, 'content', 1, 'text')``."""
    return tuple(int(index) if index else name for index, name in _PART.findall(dotted))


def request_error_path(
    message: str, request: Mapping[str, Any]
) -> tuple[tuple[str | int, ...], bool] | None:
    """The path in ``request`` of the field ``message`` names, and whether the place to show
    is the key itself (a field that should not be there) rather than its value; ``None`` when
    the message names no field.

    A call parameter may be given at the top level or under ``params``: the path is where
    ``request`` has it.
    """
    unknown = _UNKNOWN.search(message)
    if unknown:
        return (unknown.group(1),), True
    found = _FIELD.search(message)
    if found is None:
        return None
    kind, dotted = found.groups()
    path = _parts(dotted)
    if not path:
        return None
    if kind == "parameter" and path[0] not in request:
        params = request.get("params")
        if isinstance(params, Mapping) and path[0] in params:
            return ("params", *path), False
    return path, False
