"""``policyroute explain POLICY --request FILE|-``: show how a policy routes one request.

The request is YAML or JSON (JSON is YAML), shaped like a ``request:`` in a policy tests file.
The work is done by :func:`policyroute.explain.explain`; this module reads files and prints.

Example:
    >>> read_request_text("messages: hi", "req.yaml")
    {'messages': 'hi'}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from policyroute.cli_output import Style, not_a_file, usage_error
from policyroute.errors import RequestError

if TYPE_CHECKING:
    from policyroute.policy.diagnostics import Diagnostic
    from policyroute.policy.load import LoadedDocument

__all__ = ["read_request_text", "run"]


def read_request_text(text: str, name: str) -> Any:
    """Parse a request document; a YAML problem raises :class:`RequestError` with its place."""
    return _read_request(text, name).data


def _read_request(text: str, name: str) -> LoadedDocument:
    from policyroute.policy.load import load_yaml

    doc = load_yaml(text, file=name, what="request")
    errors = [d for d in doc.diagnostics if d.severity == "error"]
    if errors:
        raise RequestError("; ".join(_problem(d) for d in errors))
    return doc


def _problem(found: Diagnostic) -> str:
    """A problem reading the request, placed as the request checks place theirs:
    ``req.yaml:LINE:COL: ...``, or ``req.yaml: ...`` when it is the whole document's (an
    empty request, one too long), which has no line."""
    where = f"{found.file}:{found.line}:{found.column}" if found.line else found.file
    what = f"{found.path}: {found.message}" if found.path else found.message
    hint = f" ({found.hint})" if found.hint else ""
    return f"{where}: {what}{hint} [{found.code}]"


def _place(doc: LoadedDocument, exc: RequestError) -> str:
    """``:line:col`` of the field ``exc`` names in the request document, or ``""``."""
    from policyroute.request_place import request_error_path

    if not isinstance(doc.data, Mapping):
        return ""
    found = request_error_path(str(exc), doc.data)
    if found is None:
        return ""
    path, key = found
    where = doc.locate(path, key=key)
    return f":{where.line}:{where.column}"


def _text_only(stream: Any) -> bool:
    # Standard input replaced by a text-only stream (an embedding program, a test).
    return not hasattr(stream, "buffer")


def _decode(data: str | bytes, name: str) -> str:
    """The request text; bytes that are not UTF-8 are a :class:`RequestError`, not a crash."""
    if isinstance(data, str):
        return data
    from policyroute.policy.load import not_utf8

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{name}: the request is {not_utf8(data, exc)}") from None


def _read_bounded(stream: IO[Any], name: str) -> str | bytes:
    """The whole request from ``stream``, refused once it is past any allowed size.

    Reading stops there, so an endless pipe (``yes | policyroute explain p.yaml --request -``)
    is an error instead of a process that fills memory. UTF-8 spends at most 4 bytes on a
    character, so more bytes than that are always more characters than a request may have.
    """
    from policyroute.policy.load import MAX_CHARS

    limit = 4 * MAX_CHARS
    data: str | bytes = stream.read(limit + 1)
    if len(data) > limit:
        raise RequestError(
            f"{name}: the request is more than {limit:,} bytes long; at most"
            f" {MAX_CHARS:,} characters are allowed (is this the right file?)"
        )
    return data


def run(args: argparse.Namespace) -> int:
    """Explain the decision for ``args.request``; exit 1 if the request cannot be routed."""
    from policyroute.explain import explain, render_text
    from policyroute.policy.loader import load_policy

    as_json = args.format == "json"
    problem = not_a_file(args.policy, "policy")
    if problem:
        return usage_error("explain", problem, json_output=as_json)
    if args.request == "-":
        if sys.stdin is None:
            message = "--request - reads standard input, which is closed"
            return usage_error("explain", message, json_output=as_json)
        name = "<stdin>"
        stream = sys.stdin if _text_only(sys.stdin) else sys.stdin.buffer
        data: str | bytes = _read_bounded(stream, name)
    else:
        problem = not_a_file(args.request, "request")
        if problem:
            return usage_error("explain", problem, json_output=as_json)
        name = args.request
        with Path(name).open("rb") as fh:
            data = _read_bounded(fh, name)

    policy = load_policy(args.policy)
    doc = _read_request(_decode(data, name), name)
    try:
        explanation = explain(policy, doc.data)
    except RequestError as exc:
        # Request checks name the field (a JSON path); the file and line make the place.
        raise RequestError(f"{name}{_place(doc, exc)}: {exc}") from None
    if args.format == "json":
        print(json.dumps(explanation.as_dict(), indent=2, default=str))
    else:
        print(render_text(explanation, style=Style.for_stream(sys.stdout)))
    return 0
