"""``%YAML`` directives: a policy is YAML 1.2, and a file asking for another version is refused.

Example:
    >>> found = version_directive("# a policy\\n%YAML 1.1\\n---\\nname: x\\n")
    >>> found.code, found.line, found.column
    ('PR017', 2, 1)
    >>> found.message
    'the file asks for YAML 1.1 (%YAML 1.1); a policy is read as YAML 1.2'
    >>> version_directive("%YAML 1.2\\n---\\nname: x\\n") is None
    True
"""

from __future__ import annotations

import re

from policyroute.policy.diagnostics import Diagnostic

__all__ = ["version_directive"]


# A directive starts a line with '%'; nothing else in a policy can (a plain value cannot start
# with '%'), so the text is scanned for directives only when one may be there.
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)


def version_directive(
    text: str, *, file: str = "<string>", what: str = "policy"
) -> Diagnostic | None:
    """PR017 for a ``%YAML`` directive asking for anything but YAML 1.2, else ``None``.

    ruamel honours ``%YAML 1.1``: ``yes``, ``no``, ``on`` and ``off`` become booleans and
    ``017`` the octal 15, so a policy would be read differently from what the documentation
    and the schema say (and ``%YAML 1.3`` fails inside ruamel with an assertion). Reading the
    file as 1.2 anyway would quietly give it another meaning than the one its author asked
    for; naming the directive says at once why values read as they do.
    """
    if _DIRECTIVE.search(text) is None:
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.tokens import DirectiveToken, StreamStartToken

    try:
        # directives come first: stop at the first token that is not one
        for token in YAML(typ="safe", pure=True).scan(text):
            if isinstance(token, StreamStartToken):
                continue
            if not isinstance(token, DirectiveToken):
                return None
            if token.name == "YAML" and tuple(token.value) != (1, 2):
                major, minor = token.value
                hint = "remove the %YAML line, or make it %YAML 1.2"
                if (major, minor) == (1, 1):
                    hint = (
                        "remove the %YAML line: in YAML 1.2 yes, no, on and off are text and 017"
                        " is 17; write true or false where a boolean is meant"
                    )
                mark = token.start_mark
                return Diagnostic(
                    "PR017",
                    f"the file asks for YAML {major}.{minor} (%YAML {major}.{minor});"
                    f" a {what} is read as YAML 1.2",
                    "",
                    file,
                    mark.line + 1,
                    mark.column + 1,
                    hint=hint,
                )
    except YAMLError:
        return None  # composing reports it, with its place
    return None
