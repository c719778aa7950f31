"""Compiling the patterns of ``regex`` conditions without letting Python's warnings escape.

``re`` warns (``FutureWarning``) about patterns whose meaning a future Python will change, such
as ``[[a]`` ("Possible nested set"). Raised from validation under ``-W error`` (pytest with
warnings as errors, a strict CI job) such a warning would crash the validator, which must only
ever report. So the checks turn these warnings into diagnostics, and the compiler, which runs
after the checks have reported them, compiles quietly.

Example:
    >>> regex_warnings("(?i)hello"), regex_warnings("[[a]")
    ((), ('Possible nested set at position 1',))
    >>> compile_quietly("[[a]").search("a") is not None
    True
"""

from __future__ import annotations

import re
import warnings

__all__ = ["compile_quietly", "regex_warnings"]


def regex_warnings(pattern: str) -> tuple[str, ...]:
    """What Python warns about ``pattern``, the same on every call; raises :class:`re.error`.

    ``re`` warns only when it parses a pattern, not when it finds it in its cache, so the cache
    is cleared first: otherwise a pattern compiled earlier in the process would pass unreported.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        re.purge()
        re.compile(pattern)
    return tuple(str(w.message) for w in caught)


def compile_quietly(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, its warnings dropped (the checks report them); raises re.error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return re.compile(pattern)
