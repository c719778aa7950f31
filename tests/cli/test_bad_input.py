"""Bad input through the CLI entry point: a typed error that says what and where, never a
traceback, never a silent success, and the documented exit status (see policyroute/cli.py)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from policyroute.cli import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "policyroute"
NOT_UTF8 = b"\xff\xfe\x00binary\x00"


def _shell(command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in sh with ``$PR`` set to the installed script, as a CI job would."""
    env = {**os.environ, "NO_COLOR": "1", "PR": str(SCRIPT)}
    return subprocess.run(
        ["sh", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- explain


def test_explain_a_request_file_that_is_not_utf8(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.json"
    request.write_bytes(NOT_UTF8)
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    assert f"{request}: the request is not UTF-8 text (byte 0)" in _err(capsys)


def test_explain_a_request_on_stdin_that_is_not_utf8(
    policy_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(NOT_UTF8)))
    assert main(["explain", str(policy_path), "--request", "-"]) == 1
    assert "<stdin>: the request is not UTF-8 text (byte 0)" in _err(capsys)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ": the request is empty"),
        ("[1, 2]\n", ":1:1: the request must be a mapping of keys to values, not a list"),
        ("42\n", ":1:1: the request must be a mapping of keys to values, not a single value"),
    ],
)
def test_explain_a_request_that_is_not_a_mapping_is_not_called_a_policy(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    request = tmp_path / "req.json"
    request.write_text(text, encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    err = _err(capsys)
    assert f"{request}{message}" in err
    assert "the policy" not in err


def test_explain_a_malformed_request_field_names_the_file_and_path(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.json"
    request.write_text('{"messages": 42}', encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    assert f"{request}:1:14: request field 'messages' must be a list" in _err(capsys)


@pytest.mark.parametrize(
    ("request_text", "place"),
    [
        ('{"messages": "hi", "max_tokens": "lots"}', ":1:34"),
        ('{"messages": "hi", "params": {"max_tokens": -5}}', ":1:45"),
    ],
)
def test_explain_a_max_tokens_that_is_not_a_count_is_an_error_not_ignored(
    policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_text: str,
    place: str,
) -> None:
    request = tmp_path / "req.json"
    request.write_text(request_text, encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        f"{request}{place}: request parameter 'max_tokens' must be a whole number of at least 1"
        in err
    )


# --------------------------------------------------------------------------- test


def _tests_file(policy_path: Path, body: str | bytes) -> Path:
    path = policy_path.parent / "bad.tests.yaml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


def test_a_tests_file_that_is_not_utf8(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _tests_file(policy_path, NOT_UTF8)
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"{tests}: the tests file is not UTF-8 text (byte 0)" in out
    assert "1 file with errors" in out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "the tests file is empty"),
        ("- a\n", "1:1 the tests file must be a mapping of keys to values, not a list"),
    ],
)
def test_a_tests_file_that_is_not_a_mapping_is_not_called_a_policy(
    policy_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str
) -> None:
    tests = _tests_file(policy_path, body)
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert message in out
    assert "the policy" not in out


def test_an_unknown_expected_error_is_a_malformed_case_not_a_diff(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _tests_file(
        policy_path,
        "policy: policy.yaml\ncases:\n  - name: typo\n    request: {messages: hi}\n"
        "    expect: {error: NoCandidateErorr}\n",
    )
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"{tests}:3 typo" in out
    assert "unknown 'expect.error' 'NoCandidateErorr'" in out
    assert "--- expected" not in out


# --------------------------------------------------------------------------- every command


def test_errors_name_the_whole_sub_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    assert main(["receipts", "report", str(folder)]) == 1
    assert "policyroute receipts report: error:" in _err(capsys)


def test_a_closed_stdout_is_an_error_not_a_traceback() -> None:
    done = _shell('"$PR" schema >&-')
    assert done.returncode == 1
    assert done.stderr == "policyroute schema: error: standard output is closed\n"


# --------------------------------------------------------------------------- receipts report

CALL = '{"schema_version": 1, "kind": "call", "cost": "0.25", "route": "r", "input_tokens": 10}'


def _receipts(tmp_path: Path, data: str | bytes, name: str = "r.jsonl") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _report(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    status = main(["receipts", "report", str(path), "--format", "csv", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def _total_cost(csv_text: str) -> str:
    return csv_text.splitlines()[1].split(",")[5]


def test_a_cut_last_line_is_a_warning_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _receipts(tmp_path, f"{CALL}\n{CALL}\n{CALL[:30]}")
    status, out, err = _report(path, capsys)
    assert status == 0
    assert _total_cost(out) == "0.500000"
    assert f"warning: {path}:3: the last line is cut short" in err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON (Expecting value at column 1)"),
        ("[1, 2]", "a JSON array where a receipt object was expected"),
        ('{"cost": "1"}', "no 'kind'"),
        ('{"kind": "call", "cost": "abc"}', "'cost' must be a decimal amount"),
        ('{"kind": "call", "cost": "NaN"}', "'cost' must be a decimal amount"),
        ('{"kind": "call", "cost": "1e999999999"}', "'cost' '1e999999999' is out of range"),
        ('{"kind": "call", "cost": "1", "input_tokens": "10"}', "'input_tokens' must be a whole"),
        ('{"kind": "attempt", "cost": "1", "budgets": 5}', "'budgets' must be a list of objects"),
    ],
)
def test_a_bad_line_is_named_and_fails_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    path = _receipts(tmp_path, f"{CALL}\n{line}\n{CALL}\n")
    status, out, err = _report(path, capsys, "--by", "route,budget")
    assert status == 1
    assert _total_cost(out) == "0.500000"  # the good lines are still added up
    assert f"error: {path}:2: {message}" in err


def test_a_binary_file_is_not_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _receipts(tmp_path, b"\xff\xfe\x00\x01\n" * 30)
    status, _, err = _report(path, capsys)
    assert status == 1
    assert f"error: {path}:1: not UTF-8 text" in err
    assert "... and 10 more bad line(s)" in err


def test_a_gzip_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _receipts(tmp_path, gzip.compress(f"{CALL}\n{CALL}\n".encode()), "r.jsonl.gz")
    status, out, err = _report(path, capsys)
    assert (status, err) == (0, "")
    assert _total_cost(out) == "0.500000"


def test_a_cut_gzip_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = gzip.compress(f"{CALL}\n".encode() * 200)
    path = _receipts(tmp_path, whole[: len(whole) // 2], "r.jsonl.gz")
    status, _, err = _report(path, capsys)
    assert status == 1
    assert f"{path}:" in err
    assert "cannot decompress" in err


def test_a_report_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    lines = "".join(
        CALL.replace('"route": "r"', f'"route": "r", "user": "u{n}"') + "\n" for n in range(5000)
    )
    path = _receipts(tmp_path, lines)
    done = _shell(f'"$PR" receipts report --by user {path} | head -1')
    assert done.stdout.startswith("total")
    assert done.stderr == ""


# --------------------------------------------------------------------------- validate


def test_a_huge_file_is_refused_before_it_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1.3 MB of models: parsing it would take seconds.
    models = "".join(f"  m{n}: {{model: openai/gpt-4o-mini}}\n" for n in range(40_000))
    path = tmp_path / "huge.yaml"
    path.write_text(f"policyroute: 1\nname: huge\nmodels:\n{models}", encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "characters long, more than the 524,288 allowed" in out
    assert "[PR009]" in out


def test_an_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    assert "more than 50,000 nodes (aliases counted expanded)" in capsys.readouterr().out


# --------------------------------------------------------------------------- budget status


def test_budget_status_of_a_store_that_does_not_exist_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "policyroute: 1\nname: b\nmodels:\n  mini: {model: openai/gpt-4o-mini}\n"
        "routes:\n  - {name: default, to: mini}\n"
        "budgets:\n  - {name: monthly, limit_usd: 100, window: month}\n"
        f"store: {{backend: sqlite, path: {tmp_path / 'typo' / 'budgets.sqlite3'}}}\n",
        encoding="utf-8",
    )
    assert main(["budget", "status", str(policy)]) == 0
    out, err = capsys.readouterr()
    assert "monthly" in out
    assert f"note: budget store {tmp_path / 'typo' / 'budgets.sqlite3'} does not exist" in err


def test_budget_status_of_a_policy_without_budgets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "policyroute: 1\nname: b\nmodels:\n  mini: {model: openai/gpt-4o-mini}\n"
        "routes:\n  - {name: default, to: mini}\n",
        encoding="utf-8",
    )
    assert main(["budget", "status", str(policy)]) == 0
    assert capsys.readouterr() == ("no budgets\n", "")


def test_an_unclosed_quote_points_at_where_it_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "quote.yaml"
    path.write_text('policyroute: 1\nname: "x\nmodels: {}\n', encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4:1 YAML syntax error: found unexpected end of stream" in out
    assert "(while scanning a quoted scalar from line 2, column 7) [PR002]" in out


def test_a_duplicate_case_name_is_a_malformed_case(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = "  - name: same\n    request: {messages: hi}\n    expect: {route: default}\n"
    tests = _tests_file(policy_path, f"policy: policy.yaml\ncases:\n{case}{case}")
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"{tests}:6 same" in out
    assert "duplicate case name 'same' (first used at line 3)" in out
    assert "1 passed, 1 failed" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "DIR", "--request", "FILE"], "the policy must be a file; DIR is a directory"),
        (["explain", "FILE", "--request", "DIR"], "the request must be a file; DIR is a directory"),
        (["budget", "status", "DIR"], "the policy must be a file; DIR is a directory"),
    ],
)
def test_a_directory_given_for_a_file_is_called_a_directory(
    tmp_path: Path,
    policy_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    names = {"DIR": str(tmp_path), "FILE": str(policy_path)}
    assert main([names.get(a, a) for a in argv]) == 2
    assert message.replace("DIR", str(tmp_path)) in _err(capsys)


def test_a_request_from_a_pipe_is_read(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "request.fifo"  # what `--request <(jq ... req.json)` hands over
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("w", encoding="utf-8") as fh:
            fh.write('{"messages": "hi"}')

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert main(["explain", str(policy_path), "--request", str(fifo)]) == 0
    finally:
        writer.join(timeout=10)
    assert "route   default" in capsys.readouterr().out


def test_the_json_report_lists_the_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _receipts(tmp_path, f'{CALL}\n{{"kind": "call", "cost": "abc"}}\n{CALL[:20]}')
    assert main(["receipts", "report", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["skipped_lines"] == 2
    assert report["problems"] == [
        {
            "file": str(path),
            "line": 2,
            "message": "'cost' must be a decimal amount such as \"0.000150\", got 'abc'",
            "partial": False,
        },
        {
            "file": str(path),
            "line": 3,
            "message": "the last line is cut short (no newline): a writer was killed mid-write",
            "partial": True,
        },
    ]


@pytest.mark.parametrize("argv", [["--version"], ["schema"]])
def test_output_to_a_pipe_nobody_reads_ends_quietly(argv: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [str(SCRIPT), *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")


@pytest.mark.parametrize(
    "argv",
    [["validate", "DEVICE"], ["test", "DEVICE"], ["receipts", "report", "DEVICE"]],
)
def test_a_device_is_refused_before_it_is_read(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # /dev/null stands in for /dev/zero or a tty, which would be read without end.
    assert main([os.devnull if a == "DEVICE" else a for a in argv]) == 2
    assert f"error: not a file: {os.devnull}" in _err(capsys)


def test_a_bug_is_one_line_and_status_70_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import policyroute.cli_misc

    def broken(args: object) -> int:
        raise TypeError("unsupported operand")

    monkeypatch.setattr(policyroute.cli_misc, "run_schema", broken)
    monkeypatch.delenv("POLICYROUTE_TRACEBACK", raising=False)
    assert main(["schema"]) == 70
    assert _err(capsys).startswith("policyroute: internal error: TypeError: unsupported operand")
    monkeypatch.setenv("POLICYROUTE_TRACEBACK", "1")
    with pytest.raises(TypeError):
        main(["schema"])


@pytest.mark.parametrize("off", ["0", "false", "No", ""])
def test_a_traceback_switched_off_is_not_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], off: str
) -> None:
    import policyroute.cli_misc

    def broken(args: object) -> int:
        raise TypeError("unsupported operand")

    monkeypatch.setattr(policyroute.cli_misc, "run_schema", broken)
    monkeypatch.setenv("POLICYROUTE_TRACEBACK", off)
    assert main(["schema"]) == 70
    assert _err(capsys).startswith("policyroute: internal error: TypeError: unsupported operand")


def test_a_tests_file_whose_policy_is_a_directory(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (policy_path.parent / "policies").mkdir()
    tests = _tests_file(
        policy_path,
        "policy: policies\ncases:\n  - name: x\n    request: {messages: hi}\n"
        "    expect: {route: default}\n",
    )
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"{tests}:1: 'policy' names a directory: {policy_path.parent / 'policies'}" in out


def test_an_empty_request_file_says_what_a_request_needs_as_the_checks_do(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Said once to need "at least 'messages'" while `{}` routed: the hint and the checks agree.
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(empty)]) == 1
    err = _err(capsys)
    assert "the request is empty (every field of a request is optional: write {} for" in err
    assert "at least" not in err

    bare = tmp_path / "bare.yaml"
    bare.write_text("{}\n", encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(bare), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["route"] == "default"
