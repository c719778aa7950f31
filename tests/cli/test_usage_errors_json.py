"""A command line argparse refuses still answers ``--format json`` with a JSON document.

The usage message stays on stderr and the status stays 2; stdout carries
``{"error": {"type": "UsageError", "message"}}`` when, and only when, ``--format json`` was given
to a command that has ``--format``. A word ``json`` that is not the value of ``--format`` (a
file, another option's value, anything after ``--``) asks for nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.cli_args import FORMATS, requested_format

REPO = Path(__file__).resolve().parents[2]


def _error_line(err: str) -> str:
    """The ``prog: error: message`` line argparse's usage message ends with."""
    return next(line for line in err.splitlines() if ": error: " in line)


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--format", "json", "--bogus", "x.yaml"],
        ["validate", "--format=json"],  # the paths are missing
        ["validate", "--form", "json", "--strict", "--nope", "x.yaml"],  # an abbreviation
        ["validate", "--format", "json", "--strict=yes", "x.yaml"],
        ["explain", "p.yaml", "--format", "json"],  # --request is missing
        ["explain", "--format", "json", "p.yaml", "--request"],  # --request has no value
        ["receipts", "report", "--format", "json", "--by", "nonsense", "f.jsonl"],
        ["receipts", "report", "f.jsonl", "--by", "", "--format=json"],
        ["receipts", "report", "--format", "json"],  # no files
        ["budget", "status", "--format", "json"],  # no policy
        ["budget", "status", "p.yaml", "q.yaml", "--format", "json"],
        # The last --format wins, as in argparse.
        ["validate", "--format", "text", "--format", "json", "--bogus", "x.yaml"],
    ],
)
def test_a_usage_error_with_format_json_prints_the_error_document(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert err.startswith("usage: policyroute")
    error = json.loads(out)["error"]
    assert error["type"] == "UsageError"
    assert "diagnostics" not in error
    # The same message as on stderr, without the program name.
    assert _error_line(err).endswith(f": error: {error['message']}")


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--bogus", "x.yaml"],  # no --format at all
        ["validate", "--format", "text", "--bogus", "x.yaml"],
        ["validate", "--format", "github", "--bogus", "x.yaml"],
        ["validate", "--format", "JSON", "x.yaml"],  # not a valid value: not json either
        ["validate", "--format", "json", "--format", "text", "--bogus", "x.yaml"],
        ["validate", "json", "--bogus"],  # a file named json
        ["validate", "--strict", "json", "--bogus"],
        ["validate", "--bogus", "--", "--format", "json"],  # files named --format and json
        ["explain", "p.yaml", "--request", "json", "--bogus"],  # a request file named json
        ["explain", "p.yaml", "--request=--format", "json", "--bogus"],
        ["receipts", "report", "--by", "json", "f.jsonl"],  # --by's value, not --format's
        ["receipts", "report", "--by=--format", "json", "f.jsonl"],
        ["receipts", "--format", "json"],  # the group, not a command with --format
        ["test", "--format", "json", "t.tests.yaml"],  # test has no --format
        ["schema", "--format", "json"],
        ["demo", "--format", "json"],
        ["--format", "json", "validate", "x.yaml"],  # before the command: not its option
        ["valid", "--format", "json", "x.yaml"],  # not a command
        ["validate", "--format", "json", "--format"],  # the last --format has no value
    ],
)
def test_no_document_unless_format_json_was_given_to_a_command_that_has_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "usage: policyroute" in err
    assert ": error: " in err


def test_help_with_format_json_is_help_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", "--help"]) == 0

    out, err = capsys.readouterr()
    assert out.startswith("usage: policyroute validate")
    assert err == ""


def test_the_installed_entry_point_prints_the_document_on_stdout_and_usage_on_stderr(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "policyroute", "validate", "--format", "json", "--bogus", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert json.loads(done.stdout) == {
        "error": {"type": "UsageError", "message": "unrecognized arguments: --bogus"}
    }
    assert done.stderr.startswith("usage: policyroute")
    assert done.stderr.rstrip().endswith("error: unrecognized arguments: --bogus")


@pytest.mark.parametrize("words", sorted(FORMATS))
def test_the_table_of_formats_is_what_each_command_accepts(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*words, "--help"]) == 0
    shown = capsys.readouterr().out
    assert f"--format {{{','.join(FORMATS[words])}}}" in shown


@pytest.mark.parametrize("words", [("test",), ("schema",), ("demo",)])
def test_commands_outside_the_table_take_no_format(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*words, "--help"]) == 0
    assert "--format" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["validate", "--format", "json", "p.yaml"], "json"),
        (["validate", "--format=github", "p.yaml"], "github"),
        (["validate", "--fo", "json"], "json"),
        (["validate", "--format", "xml"], "xml"),
        (["budget", "status", "-", "--format", "csv"], "csv"),
        (["validate", "p.yaml"], None),
        (["validate", "--format"], None),
        (["validate", "--", "--format", "json"], None),
        (["receipts", "report", "--by", "json"], None),
        ([], None),
        (["receipts"], None),
    ],
)
def test_requested_format_reads_only_the_value_of_format(
    argv: list[str], expected: str | None
) -> None:
    assert requested_format(argv) == expected


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["validate", "--bogus", "x.yaml"], "policyroute validate"),
        (["explain", "p.yaml", "--request", "r.yaml", "extra.yaml"], "policyroute explain"),
        (["test", "--strict", "t.tests.yaml"], "policyroute test"),
        (["schema", "out.json"], "policyroute schema"),
        (["receipts", "report", "r.jsonl", "--nope"], "policyroute receipts report"),
        (["budget", "status", "p.yaml", "--all"], "policyroute budget status"),
    ],
)
def test_an_unknown_argument_is_named_with_the_command_it_was_given_to(
    argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"usage: {prog} ")
    assert _error_line(err).startswith(f"{prog}: error: unrecognized arguments: ")


def test_an_unknown_option_before_the_command_is_the_program_s(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--bogus", "schema"]) == 2
    assert _error_line(capsys.readouterr().err) == (
        "policyroute: error: unrecognized arguments: --bogus"
    )
