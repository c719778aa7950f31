"""Output helpers shared by the CLI's sub-commands: colour and usage errors.

Colour is used only on a TTY and never when ``NO_COLOR`` is set (https://no-color.org); the
rule lives here so every sub-command renders the same way.

Example:
    >>> import io
    >>> style = Style.for_stream(io.StringIO())  # not a TTY: no colour
    >>> style.red("error")
    'error'
    >>> plural(1, "error"), plural(2, "warning")
    ('1 error', '2 warnings')
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from policyroute._files import dangling_link_text, path_kind

__all__ = [
    "USAGE_ERROR",
    "Style",
    "colour_enabled",
    "devices",
    "json_error",
    "not_a_file",
    "plural",
    "usage_error",
]

USAGE_ERROR = 2
"""Exit status for a command line that cannot be acted on (as argparse uses)."""

_CODES = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}


def colour_enabled(stream: TextIO) -> bool:
    """Whether to colour output written to ``stream``.

    ``NO_COLOR`` set to any non-empty value turns colour off (as no-color.org says); otherwise
    colour is used only when the stream is a terminal, so pipes, files and CI logs stay plain.
    """
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


@dataclass(frozen=True, slots=True)
class Style:
    """ANSI styling that is a no-op when ``enabled`` is false."""

    enabled: bool = False

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        """The style to use for ``stream`` (see :func:`colour_enabled`)."""
        return cls(colour_enabled(stream))

    def paint(self, text: str, *names: str) -> str:
        """``text`` wrapped in the SGR codes for ``names`` (``"red"``, ``"bold"``, ...)."""
        if not self.enabled or not names:
            return text
        codes = ";".join(_CODES[n] for n in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def red(self, text: str) -> str:
        """Errors and failures."""
        return self.paint(text, "red")

    def green(self, text: str) -> str:
        """Success."""
        return self.paint(text, "green")

    def yellow(self, text: str) -> str:
        """Warnings."""
        return self.paint(text, "yellow")

    def cyan(self, text: str) -> str:
        """Names worth spotting (routes, hunk headers)."""
        return self.paint(text, "cyan")

    def bold(self, text: str) -> str:
        """Headings."""
        return self.paint(text, "bold")

    def dim(self, text: str) -> str:
        """Secondary detail."""
        return self.paint(text, "dim")

    def severity(self, text: str, severity: str) -> str:
        """``text`` coloured for a diagnostic severity (``error`` red, ``warning`` yellow)."""
        return self.red(text) if severity == "error" else self.yellow(text)

    def diff_line(self, line: str) -> str:
        """One line of a unified diff: removals red, additions green, hunk headers cyan."""
        if line.startswith(("---", "+++")):
            return self.bold(line)
        if line.startswith("-"):
            return self.red(line)
        if line.startswith("+"):
            return self.green(line)
        if line.startswith("@@"):
            return self.cyan(line)
        return line


def plural(count: int, noun: str) -> str:
    """``"1 error"``, ``"2 errors"``, ``"0 files"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def json_error(
    type_name: str, message: str, diagnostics: list[dict[str, Any]] | None = None
) -> None:
    """Print ``{"error": {"type", "message"[, "diagnostics"]}}`` on stdout.

    What a ``--format json`` command prints when it fails, so that a program reading its
    output always gets a JSON document, never nothing.

    Example:
        >>> json_error("UsageError", "no such policy file: p.yaml")
        {
          "error": {
            "type": "UsageError",
            "message": "no such policy file: p.yaml"
          }
        }
    """
    error: dict[str, Any] = {"type": type_name, "message": message}
    if diagnostics is not None:
        error["diagnostics"] = diagnostics
    print(json.dumps({"error": error}, indent=2, default=str))


def usage_error(command: str, message: str, *, json_output: bool = False) -> int:
    """Print ``policyroute <command>: error: <message>`` to stderr; return exit status 2.

    With ``json_output`` (the command was given ``--format json``) the error is also printed
    on stdout as a JSON document (see :func:`json_error`), type ``UsageError``.
    """
    print(f"policyroute {command}: error: {message}", file=sys.stderr)
    if json_output:
        json_error("UsageError", message)
    return USAGE_ERROR


def not_a_file(path: str, what: str) -> str | None:
    """Why ``path`` cannot be read as the ``what`` file, or ``None`` when it is a file.

    Pipes are files here; devices are not (``/dev/zero`` would never end).

    Example:
        >>> not_a_file("/", "policy")
        'the policy must be a file; / is a directory'
    """
    kind = path_kind(path)
    if kind in ("file", "pipe"):  # a pipe: `--request <(jq ... req.json)`
        return None
    if kind == "directory":
        return f"the {what} must be a file; {path} is a directory"
    if kind == "other":
        return f"the {what} must be a regular file; {path} is not one"
    dangling = dangling_link_text(path)
    if dangling is not None:
        return f"no such {what} file: {path} ({dangling})"
    return f"no such {what} file: {path}"


def devices(paths: Sequence[str]) -> list[str]:
    """The ``paths`` that exist but are neither files, folders nor pipes (``/dev/zero``).

    Reading one would never end, or fill memory before it did.

    Example:
        >>> devices(["/dev/zero", "/"])
        ['/dev/zero']
    """
    return [path for path in paths if path_kind(path) == "other"]
