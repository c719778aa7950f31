"""Diagnostics: one problem found in a policy, with where it is and what to do about it.

Example:
    >>> d = Diagnostic(code="PR104", message="unknown model 'sonet'", path="routes[2].to",
    ...                file="policies/prod.yaml", line=14, column=7, hint="did you mean 'sonnet'?")
    >>> d.format()
    "policies/prod.yaml:14:7 routes[2].to: unknown model 'sonet' (did you mean 'sonnet'?) [PR104]"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Diagnostic", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a policy.

    Attributes:
        code: stable identifier (``PR0xx`` load/schema, ``PR1xx`` semantic) that CI keys on.
        message: what is wrong, in one sentence; never contains a secret.
        path: JSON path of the offending node, e.g. ``routes[2].to``; ``""`` for the document.
        file: the file the policy came from, or ``"<string>"``.
        line: 1-based line of the node, or 0 when unknown.
        column: 1-based column of the node, or 0 when unknown.
        severity: ``"error"`` fails validation; ``"warning"`` does unless ``strict`` is off.
        hint: what to do, e.g. ``did you mean 'sonnet'?``.
    """

    code: str
    message: str
    path: str = ""
    file: str = "<string>"
    line: int = 0
    column: int = 0
    severity: Severity = "error"
    hint: str | None = None

    def format(self) -> str:
        """Render as ``file:line:col path: message (hint) [code]``; a diagnostic without a line
        (a problem of the whole file: empty, missing, unreadable, too large) as ``file: message
        [code]``, since ``file:0:0`` is a line and column no editor has.

        Example:
            >>> Diagnostic("PR001", "no such file or directory", file="gone.yaml").format()
            'gone.yaml: no such file or directory [PR001]'
        """
        if self.line:
            where = f"{self.file}:{self.line}:{self.column}"
            text = (
                f"{where} {self.path}: {self.message}" if self.path else f"{where} {self.message}"
            )
        else:
            text = (
                f"{self.file}: {self.path}: {self.message}"
                if self.path
                else f"{self.file}: {self.message}"
            )
        if self.hint:
            text += f" ({self.hint})"
        return f"{text} [{self.code}]"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every field."""
        return asdict(self)
