"""``policyroute receipts report`` on receipts whose values are corrupt rather than malformed:
each such line is named with its place and left out, and the other lines are still added up."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from policyroute.cli import main

CALL = {"schema_version": 1, "kind": "call", "cost": "0.25", "route": "r", "input_tokens": 10}


def _line(**fields: object) -> str:
    return json.dumps({**CALL, **fields})


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_token_count_of_thousands_of_digits_is_named_not_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    # A count just under the 4,300 digits Python turns into text: each line reads, but a
    # dozen of them added up could not be printed, and the report ended with status 70.
    huge = 10**4299
    old_limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        lines = [_line(input_tokens=huge) for _ in range(12)]
    finally:
        sys.set_int_max_str_digits(old_limit)
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([_line(), *lines, _line()]) + "\n", encoding="utf-8")

    status = main(["receipts", "report", str(path), "--by", "route", "--format", fmt])

    out, err = capsys.readouterr()
    assert status == 1, err
    assert "internal error" not in err
    assert f"error: {path}:2: 'input_tokens' is out of range (more than 10^15 tokens)" in err
    if fmt == "json":
        total = json.loads(out)["total"]
        assert (total["calls"], total["cost"], total["input_tokens"]) == (2, "0.500000", 20)
    else:
        assert "0.500000" in out


def test_a_token_count_up_to_the_bound_is_added_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        _line(output_tokens=10**15) + "\n" + _line(output_tokens=10**15 + 1) + "\n",
        encoding="utf-8",
    )

    status = main(["receipts", "report", str(path), "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 1
    assert json.loads(out)["total"]["output_tokens"] == 10**15
    assert f"{path}:2: 'output_tokens' is out of range" in err


DEPTH = 100_000


@pytest.mark.parametrize(
    "bad",
    [
        # Deeper than any interpreter's json reads: Python 3.13 reads 5,000 levels, and
        # 20,000 fail everywhere.
        "[" * DEPTH + "]" * DEPTH,
        '{"a":' * DEPTH + "1" + "}" * DEPTH,
        # starts as every receipt does, so it is also checked for a cut line
        '{"schema_version":1,"metadata":' + "[" * DEPTH + "]" * DEPTH + "}",
    ],
    ids=["array", "object", "receipt-start"],
)
def test_a_line_nested_thousands_deep_is_named_not_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([_line(), bad, _line()]) + "\n", encoding="utf-8")

    status = main(["receipts", "report", str(path), "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 1, err
    assert "internal error" not in err
    assert f"error: {path}:2: not JSON (nested too deep to read)" in err
    assert json.loads(out)["total"]["calls"] == 2


def test_a_control_character_in_a_string_is_named_without_a_doubled_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # json's message ends in "at": it read "Invalid control character at at column 29".
    path = tmp_path / "r.jsonl"
    bad = '{"kind": "call", "route": "a\tb"}'
    path.write_text("\n".join([_line(), bad, _line()]) + "\n", encoding="utf-8")

    status = main(["receipts", "report", str(path)])

    err = capsys.readouterr().err
    assert status == 1, err
    assert f"error: {path}:2: not JSON (Invalid control character at column 29)\n" in err


def test_a_number_of_thousands_of_digits_is_named_without_python_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It read "... use sys.set_int_max_str_digits() to increase the limit": nothing a user of
    # the command can do.
    path = tmp_path / "r.jsonl"
    bad = '{"kind": "call", "input_tokens": ' + "9" * 5000 + "}"
    path.write_text("\n".join([_line(), bad, _line()]) + "\n", encoding="utf-8")

    status = main(["receipts", "report", str(path)])

    err = capsys.readouterr().err
    assert status == 1, err
    assert f"error: {path}:2: not JSON (a number of 5000 digits, more than 4300)\n" in err


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        ("hello world", "not JSON (Expecting value at column 1)"),
        ("# receipts of May", "not JSON (Expecting value at column 1)"),
        ("12", "a JSON number where a receipt object was expected"),
    ],
)
def test_a_last_line_without_newline_that_is_no_receipt_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], last: str, reason: str
) -> None:
    # Any last line without a newline read as a receipt cut by a killed writer: a warning,
    # status 0, for a text file given by mistake.
    path = tmp_path / "r.jsonl"
    path.write_text(_line() + "\n" + last, encoding="utf-8")

    status = main(["receipts", "report", str(path)])

    err = capsys.readouterr().err
    assert status == 1, err
    assert f"error: {path}:2: {reason}\n" in err


@pytest.mark.parametrize("last", [_line()[:30], "\0" * 64, "{"])
def test_a_last_line_cut_in_a_receipt_is_still_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], last: str
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(_line() + "\n" + last, encoding="utf-8")

    status = main(["receipts", "report", str(path)])

    err = capsys.readouterr().err
    assert status == 0, err
    assert f"warning: {path}:2: the last line is cut short (no newline)" in err
