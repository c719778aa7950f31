"""How many terminal columns text takes, for the CLI's aligned tables.

``len`` counts code points; a terminal draws East Asian wide and fullwidth characters (CJK,
most emoji) in two columns and combining marks in none, so names holding them would push a
table's columns out of line. The rules are those of ``wcwidth``'s ``wcswidth`` (not a
dependency), from the standard library's Unicode data:

- combining marks (categories Mn, Me), format characters (Cf, such as a zero-width joiner;
  the soft hyphen excepted) and Hangul medial vowels and final consonants take 0 columns;
- a character after a zero-width joiner takes 0 (an emoji sequence is drawn as one glyph);
- a variation selector 16 (U+FE0F, emoji presentation) widens the character before it to 2;
- East Asian wide (W) and fullwidth (F) characters take 2; everything else takes 1.

Control characters are not measured: tables escape them before they are aligned.

Example:
    >>> display_width("東京"), display_width("cafe\\u0301"), display_width("ab")
    (4, 4, 2)
    >>> pad("東京", 6) + "|"
    '東京  |'
"""

from __future__ import annotations

import unicodedata
from typing import Literal

__all__ = ["display_width", "pad", "printable"]

_ZWJ = "\u200d"
_VS16 = "\ufe0f"
_SOFT_HYPHEN = "\u00ad"


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or "\u1160" <= ch <= "\u11ff":
        return 0
    category = unicodedata.category(ch)
    if category in ("Mn", "Me") or (category == "Cf" and ch != _SOFT_HYPHEN):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (see the module docstring for the rules).

    Example:
        >>> display_width("🚀 go"), display_width("👩\\u200d💻"), display_width("❤\\ufe0f")
        (5, 2, 2)
    """
    if text.isascii():
        return len(text)
    total = 0
    last = 0  # width of the previous character, for VS16
    joined = False
    for ch in text:
        if joined:
            joined, last = False, 0
            continue
        if ch == _ZWJ:
            joined = True
            continue
        if ch == _VS16:
            if last == 1:
                total += 1
                last = 2
            continue
        last = _char_width(ch)
        total += last
    return total


def pad(text: str, width: int, align: Literal["left", "right"] = "left") -> str:
    """``text`` padded with spaces to ``width`` columns (as ``str.ljust``/``rjust`` do for
    code points); text already as wide or wider is returned as it is.

    Example:
        >>> pad("東", 4, "right")
        '  東'
    """
    spaces = " " * max(0, width - display_width(text))
    return text + spaces if align == "left" else spaces + text


def printable(text: str) -> str:
    r"""``text`` with its control and format characters escaped, fit for a terminal or CI log.

    Names and values from a user's files or requests: a line break would split a line of
    output, an escape sequence would reach the terminal, and a bidirectional override would
    reorder what is shown.

    Example:
        >>> printable("u1\n\x1b[2J"), printable("東京")
        ('u1\\n\\x1b[2J', '東京')
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
