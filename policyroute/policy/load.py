"""Read policy YAML into plain JSON-like data while remembering where every node came from.

The YAML is *composed* (parsed into nodes) by ruamel.yaml and converted here, node by node, so
that nothing but strings, numbers, booleans, ``None``, lists and dicts is ever constructed (no
Python object tags), duplicate keys become diagnostics instead of silent overwrites, and every
mapping key, value and sequence item keeps its 1-based line and column, keyed by its JSON path.

Example:
    >>> doc = load_yaml("models:\\n  mini: {model: openai/gpt-4o-mini}\\n")
    >>> doc.data["models"]["mini"]["model"]
    'openai/gpt-4o-mini'
    >>> doc.locate(("models", "mini", "model"))
    Position(line=2, column=17)
    >>> format_path(("routes", 2, "to"))
    'routes[2].to'
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard

from policyroute.policy.diagnostics import Diagnostic
from policyroute.policy.directives import version_directive

__all__ = [
    "JsonPath",
    "LoadedDocument",
    "Position",
    "format_path",
    "is_policy_text",
    "load_yaml",
    "not_utf8",
]


def is_policy_text(policy: object) -> TypeGuard[str]:
    """Whether ``policy`` is a policy's YAML text rather than a path: a string with a line
    break. Every API taking "a path or the text" tells them apart by this.

    Example:
        >>> is_policy_text("policyroute: 1\\nname: x\\n"), is_policy_text("policies/x.yaml")
        (True, False)
    """
    return isinstance(policy, str) and "\n" in policy


JsonPath = tuple["str | int", ...]

# Editors on Windows save "Unicode" as UTF-16 with a byte-order mark; say so rather than
# pointing at byte 0.
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """Why ``data`` did not decode, for a message that starts "the file is ...".

    Example:
        >>> data = "name: x".encode("utf-16")
        >>> try:
        ...     data.decode("utf-8")
        ... except UnicodeDecodeError as exc:
        ...     print(not_utf8(data, exc))
        UTF-16 text, not UTF-8 (save it as UTF-8)
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding.lower())
            except UnicodeDecodeError:
                break
            # YAML is mostly ASCII: binary junk that happens to start with a mark is not text
            if sum(ch.isascii() for ch in text) * 2 >= len(text):
                return f"{encoding} text, not UTF-8 (save it as UTF-8)"
            break
    return f"not UTF-8 text (byte {error.start})"


# A policy is a few hundred nodes; a document that expands past this through aliases is an
# attack ("billion laughs") or a mistake, and validating it would take forever.
MAX_NODES = 50_000
# No field of a policy needs more digits than this; Python also refuses int() past 4300 digits.
MAX_INT_DIGITS = 64
# Parsing runs at 60k to 200k characters a second; past this a file is not a policy (real
# ones are a few kilobytes) and parsing it would take seconds to minutes and much memory.
MAX_CHARS = 512 * 1024
# ruamel composes recursively; far below Python's recursion limit.
MAX_DEPTH = 100

_TAG = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_EMPTY_HINTS = {
    "policy": "a policy needs at least 'policyroute: 1', 'name', 'models' and 'routes'",
    "tests file": "a tests file needs 'policy' and 'cases'",
    # Every field of a request is optional: `{}` routes as a request with no messages.
    "request": "every field of a request is optional: write {} for a request with none, or give"
    " some of 'messages', 'metadata', 'tags', 'model', 'tools' and the call parameters",
}
# What to do about a document past MAX_CHARS or MAX_NODES. A tests file grows with its cases,
# and `policyroute test` takes several files or a folder: a large suite is split.
_SPLIT = (
    "split the cases across several tests files: policyroute test takes several files or a folder"
)
_TOO_LARGE_HINTS = {"tests file": _SPLIT}
_TOO_MANY_NODES_HINTS = {
    "policy": "a policy has a few hundred; does an alias expand too far?",
    "tests file": f"does an alias expand too far? If not, {_SPLIT}",
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# JSON has no infinity or not-a-number: no provider accepts one as a call parameter.
_FINITE_HINT = "give a finite number; infinity and not-a-number cannot be sent in a call"


class Position(NamedTuple):
    """A 1-based place in the source; ``line == 0`` means "the whole file"."""

    line: int
    column: int


@dataclass
class LoadedDocument:
    """The loaded data plus positions and the problems found while reading it.

    ``data`` is ``None`` when the text could not be read at all (see ``diagnostics``).
    ``raw_scalars`` keeps the source text of numbers so money can become ``Decimal`` exactly.
    """

    file: str = "<string>"
    data: Any = None
    positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)
    raw_scalars: dict[JsonPath, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # The composed YAML, for source_text: the converted data holds values, not their text.
    root: Any = field(default=None, repr=False, compare=False)

    def source_text(self, path: JsonPath) -> str | None:
        """The text the scalar at ``path`` is written as (``true``, ``1.50``, ``007``), also
        when it is reached through an alias or a ``<<`` merge key; ``None`` when ``path``
        names no scalar.

        Example:
            >>> load_yaml("env: {FLAG: TRUE, VERSION: 1.10}\\n").source_text(("env", "VERSION"))
            '1.10'
        """
        node = self.root
        for part in path:
            if node is None:
                return None
            node = _child(node, part, frozenset())
        return str(node.value) if node is not None and node.id == "scalar" else None

    def locate(self, path: JsonPath, *, key: bool = False) -> Position:
        """Where ``path`` is; with ``key=True`` the mapping key rather than its value.

        Falls back to the nearest ancestor that has a position (e.g. content reached through
        an alias), then to line 1, column 1.
        """
        if key and path in self.key_positions:
            return self.key_positions[path]
        probe = path
        while True:
            if probe in self.positions:
                return self.positions[probe]
            if not probe:
                return Position(1, 1)
            probe = probe[:-1]


def _child(node: Any, part: str | int, merging: frozenset[int]) -> Any:
    """The composed node at ``part`` of ``node``, found as :class:`_Converter` builds the data:
    a key written in the mapping before one a ``<<`` merges in, the first merged before later
    ones, and the first of duplicate keys. ``merging`` keeps a mapping that merges itself from
    being searched without end."""
    if node.id == "sequence":
        items = node.value
        return items[part] if isinstance(part, int) and 0 <= part < len(items) else None
    if node.id != "mapping" or isinstance(part, int):
        return None
    merges: list[Any] = []
    for key_node, value_node in node.value:
        if key_node.tag == _TAG + "merge":
            merges.extend(value_node.value if value_node.id == "sequence" else [value_node])
        elif key_node.id == "scalar" and str(key_node.value) == part:
            return value_node
    for merged in merges:
        if merged.id == "mapping" and id(merged) not in merging:
            found = _child(merged, part, merging | {id(node)})
            if found is not None:
                return found
    return None


def format_path(path: JsonPath) -> str:
    """``("routes", 2, "to")`` -> ``routes[2].to``; odd keys are quoted: ``when["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _offset_to_position(text: str, offset: int) -> Position:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Position(line, column)


def _too_deep(text: str) -> int | None:
    """Offset where flow brackets nest past MAX_DEPTH (ruamel would hit the recursion limit).

    Brackets inside quoted strings are counted too; no real policy comes near the limit.
    """
    depth = 0
    for offset, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return offset
        elif char in "]}":
            depth -= 1
    return None


_ENV_REF = re.compile(r"\$\{[^}\s]*\}?")


def _flow_env_ref(text: str, mark: Any) -> str | None:
    """The ``${VAR}`` a syntax error stopped in, when it stopped at the ``{`` of one.

    Unquoted in a flow collection (``{api_key: ${KEY}}``), the ``{`` of a reference opens a
    nested mapping, and the parser's "expected ',' or '}'" does not say why.
    """
    index = getattr(mark, "index", None)
    if not isinstance(index, int) or not 0 < index < len(text):
        return None
    if text[index] != "{" or text[index - 1] != "$":
        return None
    match = _ENV_REF.match(text, index - 1)
    return match.group(0) if match else None


def _char(character: Any) -> str:
    code = character if isinstance(character, int) else ord(str(character)[:1] or "?")
    return f"U+{code:04X}"


def load_yaml(
    text: str, *, file: str = "<string>", what: str = "policy", count_written: bool = True
) -> LoadedDocument:
    """Parse ``text`` into a :class:`LoadedDocument`; never raises on bad input.

    ``what`` names the document in the messages ("the request is empty"), so that files
    read with this loader that are not policies (requests, tests files) are not called one.

    At most :data:`MAX_NODES` nodes are converted, aliases counted expanded. With
    ``count_written=False`` only the nodes aliases add count: a document that grows with
    what it holds (a tests file's cases) is bounded by :data:`MAX_CHARS`, whose parsing
    costs more than converting the nodes it can hold, while an alias bomb is still refused.

    Example:
        >>> load_yaml("- a", file="req.yaml", what="request").diagnostics[0].message
        'the request must be a mapping of keys to values, not a list'
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    doc = LoadedDocument(file=file)
    if text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_CHARS:
        doc.diagnostics.append(
            Diagnostic(
                "PR009",
                f"the {what} is {len(text):,} characters long, more than the {MAX_CHARS:,} allowed",
                "",
                file,
                hint=_TOO_LARGE_HINTS.get(what, "is this the right file?"),
            )
        )
        return doc
    deep = _too_deep(text)
    if deep is not None:
        pos = _offset_to_position(text, deep)
        doc.diagnostics.append(
            Diagnostic(
                "PR009",
                f"the document is nested more than {MAX_DEPTH} levels deep",
                "",
                file,
                pos.line,
                pos.column,
            )
        )
        return doc
    directive = version_directive(text, file=file, what=what)
    if directive is not None:
        doc.diagnostics.append(directive)
        return doc
    try:
        yaml = YAML(typ="safe", pure=True)
        # A re-defined anchor is legal YAML (the later one wins); do not turn it into a warning.
        yaml.composer.warn_double_anchors = False
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        start = exc.context_mark
        if exc.problem and exc.context and start is not None and start is not mark:
            # The error is often found far from its cause (an unclosed quote or bracket is
            # noticed at the end of the file): name where the construct began.
            problem += f" ({exc.context} from line {start.line + 1}, column {start.column + 1})"
        hint = None
        if "another document" in problem:
            problem = "the file holds more than one YAML document"
            hint = f"a {what} is one document: remove the '---' separator and what follows"
        if "\\t" in repr(problem) or "\t" in problem:
            hint = "indent with spaces; YAML does not allow tabs for indentation"
        ref = _flow_env_ref(text, mark)
        if ref is not None:
            hint = (
                f"inside {{ }} or [ ] a '{{' starts a mapping:"
                f" put the value holding {ref} in quotes"
            )
        doc.diagnostics.append(
            Diagnostic("PR002", f"YAML syntax error: {problem}", "", file, line, col, hint=hint)
        )
        return doc
    except ReaderError as exc:
        pos = _offset_to_position(text, exc.position)
        doc.diagnostics.append(
            Diagnostic(
                "PR002",
                f"YAML syntax error: character {_char(exc.character)} is not allowed",
                "",
                file,
                pos.line,
                pos.column,
            )
        )
        return doc
    except RecursionError:
        doc.diagnostics.append(
            Diagnostic("PR009", "the document is nested too deeply", "", file, 1, 1)
        )
        return doc
    except (YAMLError, ValueError, OverflowError) as exc:
        # ruamel raises a few unmarked errors (and deep nesting recurses): report, don't crash.
        doc.diagnostics.append(_unmarked(text, file, exc))
        return doc
    if root is None or (root.id == "scalar" and root.tag == _TAG + "null" and not root.value):
        doc.diagnostics.append(
            Diagnostic(
                "PR005",
                f"the {what} is empty",
                "",
                file,
                hint=_EMPTY_HINTS.get(what),
            )
        )
        return doc
    converter = _Converter(doc)
    size = converter.size(root)
    if count_written:
        over = size > MAX_NODES
        problem = f"the {what} has more than {MAX_NODES:,} nodes (aliases counted expanded)"
    else:
        over = size - len(converter.sizes) > MAX_NODES  # sizes: one entry per node written
        problem = f"aliases add more than {MAX_NODES:,} nodes to the {what}"
    if over:
        path, mark = converter.past_limit(root, count_written=count_written)
        doc.diagnostics.append(
            Diagnostic(
                "PR009",
                f"{problem}; the count passes the limit here",
                format_path(path),
                file,
                mark.line + 1,
                mark.column + 1,
                hint=_TOO_MANY_NODES_HINTS.get(what, "does an alias expand too far?"),
            )
        )
        return doc
    try:
        data = converter.convert(root, ())
    except RecursionError:
        doc.diagnostics.append(
            Diagnostic("PR009", "the document is nested too deeply", "", file, 1, 1)
        )
        return doc
    if not isinstance(data, dict):
        pos = doc.locate(())
        kind = "a list" if isinstance(data, list) else "a single value"
        doc.diagnostics.append(
            Diagnostic(
                "PR006",
                f"the {what} must be a mapping of keys to values, not {kind}",
                "",
                file,
                pos.line,
                pos.column,
            )
        )
        return doc
    doc.data = data
    doc.root = root
    return doc


# A double-quoted "\\U" escape past U+10FFFF makes ruamel call chr() out of range, and it raises
# an unmarked ValueError or OverflowError: found again here to say where.
_BAD_ESCAPE = re.compile(r"\\U([0-9A-Fa-f]{8})")


def _unmarked(text: str, file: str, exc: Exception) -> Diagnostic:
    for match in _BAD_ESCAPE.finditer(text):
        if int(match.group(1), 16) > 0x10FFFF:
            pos = _offset_to_position(text, match.start())
            escape = match.group(0)
            return Diagnostic(
                "PR002",
                f"YAML syntax error: escape {escape!r} is past the last character, U+10FFFF",
                "",
                file,
                pos.line,
                pos.column,
            )
    return Diagnostic("PR002", f"YAML syntax error: {type(exc).__name__}", "", file, 1, 1)


def _written_as_nothing(node: Any) -> bool:
    """Whether ``node`` is a null no text stands for: no ``~``, ``null``, tag or anchor (those
    mark the value where they are written), so it starts where it ends."""
    return (
        node.id == "scalar"
        and node.tag == _TAG + "null"
        and not node.value
        and node.start_mark.index == node.end_mark.index
    )


class _Converter:
    """Turns composed nodes into plain data, recording positions and problems."""

    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.done: dict[int, Any] = {}
        self.active: set[int] = set()
        self.sizes: dict[int, int] = {}

    def size(self, node: Any) -> int:
        """Node count after alias expansion (memoised, so cheap even when it is huge)."""
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        self.sizes[key] = 1  # a recursive alias counts once here; convert() reports it
        total = 1
        if node.id == "mapping":
            total += sum(self.size(k) + self.size(v) for k, v in node.value)
        elif node.id == "sequence":
            total += sum(self.size(v) for v in node.value)
        self.sizes[key] = total
        return total

    def past_limit(self, root: Any, *, count_written: bool = True) -> tuple[JsonPath, Any]:
        """Where, in document order, the node count (aliases expanded) first passes MAX_NODES:
        its JSON path, and the mark of the node written there or, inside an alias, of the key
        (or list) the alias stands under, so that the place named is where the alias is used
        rather than its anchor. Without ``count_written`` only the nodes aliases add count.
        Call :meth:`size` first.

        Nodes are walked once each; an alias is counted by its memoised size, not walked.
        """
        seen: set[int] = set()
        count = 0

        def visit(node: Any, path: JsonPath, at: Any) -> tuple[JsonPath, Any] | None:
            nonlocal count
            key = id(node)
            if key in seen:
                count += self.sizes[key]
                return (path, at) if count > MAX_NODES else None
            seen.add(key)
            if count_written:
                count += 1
            if count > MAX_NODES:
                return path, node.start_mark
            if node.id == "mapping":
                for key_node, value_node in node.value:
                    named = key_node.id == "scalar" and key_node.tag != _TAG + "merge"
                    child = (*path, str(key_node.value)) if named else path
                    mark = key_node.start_mark
                    found = visit(key_node, child, mark) or visit(value_node, child, mark)
                    if found is not None:
                        return found
            elif node.id == "sequence":
                for index, item in enumerate(node.value):
                    found = visit(item, (*path, index), node.start_mark)
                    if found is not None:
                        return found
            return None

        return visit(root, (), root.start_mark) or ((), root.start_mark)

    def _diag(
        self, code: str, message: str, path: JsonPath, node: Any, hint: str | None = None
    ) -> None:
        mark = node.start_mark
        self.doc.diagnostics.append(
            Diagnostic(
                code,
                message,
                format_path(path),
                self.doc.file,
                mark.line + 1,
                mark.column + 1,
                hint=hint,
            )
        )

    def convert(self, node: Any, path: JsonPath) -> Any:
        mark = node.start_mark
        self.doc.positions.setdefault(path, Position(mark.line + 1, mark.column + 1))
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            self._diag("PR009", "an alias refers to a node that contains it", path, node)
            return None
        self.active.add(key)
        try:
            if node.id != "scalar" and node.tag not in (_TAG + "map", _TAG + "seq"):
                # Nothing tagged is ever constructed, but a tag on a list or mapping
                # (!!python/object:x {...}, !!set, !!omap) asks for a type that is not
                # plain data: refused like a tag on a scalar.
                self._diag(
                    "PR008",
                    f"unsupported YAML tag '{node.tag}'",
                    path,
                    node,
                    hint="policies use plain YAML values; remove the tag",
                )
                value: Any = None
            elif node.id == "mapping":
                value = self._mapping(node, path)
            elif node.id == "sequence":
                value = [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            else:
                value = self._scalar(node, path)
        finally:
            self.active.discard(key)
        self.done[key] = value
        return value

    def _mapping(self, node: Any, path: JsonPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[Any] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merges.extend(value_node.value if value_node.id == "sequence" else [value_node])
                continue
            if key_node.id != "scalar":
                self._diag("PR007", "a mapping key must be a plain value", path, key_node)
                continue
            name = str(key_node.value)
            child = (*path, name)
            if name in out:
                first = self.doc.key_positions.get(child)
                where = f"first defined at line {first.line}" if first else None
                self._diag("PR003", f"duplicate key '{name}'", child, key_node, hint=where)
                continue
            mark = key_node.start_mark
            self.doc.key_positions[child] = Position(mark.line + 1, mark.column + 1)
            if _written_as_nothing(value_node):
                # ruamel marks a value left empty (`key:` and the line ends) where the next
                # token starts, often the next key lines below: its key is where it is.
                self.doc.positions.setdefault(child, self.doc.key_positions[child])
            out[name] = self.convert(value_node, child)
        for merged in merges:
            if merged.id != "mapping":
                self._diag("PR007", "'<<' (merge) needs a mapping or a list of them", path, merged)
                continue
            source = self.convert(merged, path)
            if isinstance(source, dict):
                for name, value in source.items():
                    out.setdefault(name, value)
        return out

    def _scalar(self, node: Any, path: JsonPath) -> Any:
        tag: str = node.tag or ""
        text: str = node.value
        if tag == _TAG + "str" or tag == _TAG + "timestamp" or tag == "?":
            return text
        if tag == _TAG + "null":
            if text not in _NULLS:
                self._diag("PR004", f"cannot read {text!r} as null", path, node)
            return None
        if tag == _TAG + "bool":
            if text.lower() not in ("true", "false"):
                # an explicit !!bool on any other text would otherwise quietly be false
                self._diag("PR004", f"cannot read {text!r} as true or false", path, node)
                return None
            return text.lower() == "true"
        if tag == _TAG + "int":
            return self._int(node, path, text)
        if tag == _TAG + "float":
            return self._float(node, path, text)
        self._diag(
            "PR008",
            f"unsupported YAML tag '{tag}'",
            path,
            node,
            hint="policies use plain YAML values; remove the tag",
        )
        return text

    def _int(self, node: Any, path: JsonPath, text: str) -> Any:
        clean = text.replace("_", "")
        digits = clean.lstrip("+-")
        if len(digits) > MAX_INT_DIGITS:
            self._diag("PR004", f"number too large ({len(digits)} digits)", path, node)
            return None
        sign = -1 if clean.startswith("-") else 1
        try:
            for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
                if digits.lower().startswith(prefix):
                    return sign * int(digits[2:], base)
            return sign * int(digits, 10)
        except ValueError:
            self._diag("PR004", f"cannot read {text!r} as an integer", path, node)
            return None

    def _float(self, node: Any, path: JsonPath, text: str) -> Any:
        if text.lower().lstrip("+-") in (".inf", ".nan"):
            self._diag("PR004", f"number {text!r} is not finite", path, node, _FINITE_HINT)
            return None
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            self._diag("PR004", f"cannot read {text!r} as a number", path, node)
            return None
        if not math.isfinite(value):
            self._diag("PR004", f"number {text!r} is not finite", path, node, _FINITE_HINT)
            return None
        self.doc.raw_scalars[path] = text
        return value
