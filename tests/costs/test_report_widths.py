"""The report table lines its columns up by the columns a terminal draws, not by code points:
CJK and emoji take two, combining marks none."""

from __future__ import annotations

import pytest

from policyroute._display_width import display_width, pad
from policyroute.costs.report import format_report, summarize

from .helpers import call_receipt


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("ab", 2),
        ("東京", 4),  # East Asian wide
        ("\uff21\uff22", 4),  # fullwidth A and B
        ("cafe\u0301", 4),  # e + combining acute accent
        ("\u1100\u1161\u11a8", 2),  # a Hangul syllable spelled with conjoining jamo
        ("🚀", 2),
        ("👩\u200d💻", 2),  # a zero-width-joiner sequence is drawn as one emoji
        ("❤\ufe0f", 2),  # variation selector 16 asks for the wide emoji form
        ("a\u200bb", 2),  # zero-width space
        ("x\u00ady", 3),  # a soft hyphen is drawn
        ("", 0),
    ],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


def test_pad_counts_columns() -> None:
    assert pad("東京", 6) == "東京  "
    assert pad("cafe\u0301", 6, "right") == "  cafe\u0301"
    assert pad("toolong", 3) == "toolong"


def _users(*names: str) -> str:
    records = [call_receipt(user=name) for name in names]
    return format_report(summarize(records, by=["user"]), "table")


def test_wide_and_combining_names_line_up() -> None:
    text = _users("ab", "東京", "cafe\u0301", "🚀")
    section = text.split("\n\n")[1].splitlines()
    assert section == [
        "user  calls  attempts  errors      cost  input_tokens  output_tokens  refused  cache_hits",
        "----  -----  --------  ------  --------  ------------  -------------  -------  ----------",
        "ab        1         0       0  0.100000            10              5        0           0",
        "cafe\u0301      1         0       0  0.100000            10              5        0           0",  # noqa: E501
        "東京      1         0       0  0.100000            10              5        0           0",
        "🚀        1         0       0  0.100000            10              5        0           0",
    ]


def test_a_wide_name_sets_the_column_width() -> None:
    section = _users("東京大阪名古屋").split("\n\n")[1].splitlines()  # 14 columns, 7 characters
    assert section[1].split("  ")[0] == "-" * 14
    assert section[2].startswith("東京大阪名古屋      1  ")
    assert len({display_width(line) for line in section}) == 1


def test_c1_control_characters_are_escaped_in_the_table() -> None:
    # 0x9b is a one-byte CSI: a terminal would start an escape sequence at it.
    text = _users("a\x9b31mb")
    assert "a\\x9b31mb" in text
    assert "\x9b" not in text


@pytest.mark.parametrize("control", ["\u202e", "\u2066", "\u200f", "\u061c"])
def test_bidirectional_controls_are_escaped_in_the_table(control: str) -> None:
    # U+202E (right-to-left override) would draw the rest of its row backwards, so a user id
    # could make the figures beside it read as others.
    text = _users(f"u1{control}99.000000")
    assert f"u1\\u{ord(control):04x}99.000000" in text
    assert control not in text
