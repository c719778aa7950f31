"""What is wrong with a tests file as a whole is said with its place and what to do about it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policy.validate import MAX_FILE_BYTES


def test_an_endless_pipe_is_refused_after_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `policyroute test <(yes)`: the whole stream was read into memory before any limit.
    pipe = tmp_path / "endless.tests.yaml"
    os.mkfifo(pipe)
    written: list[int] = []

    def write() -> None:
        chunk = b"y\n" * 65536
        fd = os.open(pipe, os.O_WRONLY)
        try:
            while sum(written) < 3 * MAX_FILE_BYTES:  # endless, as far as the reader knows
                written.append(os.write(fd, chunk))
        except BrokenPipeError:  # the reader stopped: what the fix is for
            pass
        finally:
            os.close(fd)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        assert main(["test", str(pipe)]) == 1
    finally:
        writer.join()

    out = capsys.readouterr().out
    assert (
        f"{pipe}: the tests file is more than 2,097,152 bytes long; a tests file has at most"
        " 524,288 characters (is this the right file?)"
    ) in out
    assert sum(written) < 3 * MAX_FILE_BYTES


def _run(tests: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["test", str(tests)])
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines()[1:] if line][:-1]


def test_a_policy_given_for_a_tests_file_is_called_a_policy(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "unknown key(s) defaults, groups, models, ...", "'policy' must name ...", ...
    code, problems = _run(policy_path, capsys)
    assert code == 1
    assert problems == [
        f"{policy_path}: this is a policy, not a tests file (which has 'policy' and 'cases');"
        " check a policy with policyroute validate, and test it from a tests file whose"
        " 'policy' names it"
    ]


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        (
            "# a comment\npolicy: 3\ncases: [{name: a, request: {}, expect: {route: a}}]\n",
            [
                "{file}:2: 'policy' must be the policy file's path, relative to this file,"
                " got a number"
            ],
        ),
        (
            "policy: policy.yaml\n\ncases:\n",
            ["{file}:3: 'cases' must be a non-empty list of cases, got null"],
        ),
        (
            "policy: policy.yaml\ncases: []\n",
            ["{file}:2: 'cases' must be a non-empty list of cases, got an empty list"],
        ),
        (
            "policy: policy.yaml\ncase:\n  - {name: a, request: {}, expect: {route: a}}\n",
            [
                "{file}:2: unknown key(s) case (did you mean 'cases'?); a tests file has"
                " policy, cases and description (and x-... keys, a place for YAML anchors)",
                "{file}: 'cases' is missing: give a non-empty list of cases",
            ],
        ),
    ],
)
def test_what_is_wrong_with_policy_or_cases_is_said_with_its_line(
    policy_path: Path, capsys: pytest.CaptureFixture[str], body: str, problems: list[str]
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(body, encoding="utf-8")
    assert _run(tests, capsys) == (1, [p.format(file=tests) for p in problems])


def test_x_keys_hold_anchors_as_in_a_policy(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\n"
        "x-code-request: &code {metadata: {task: code}, messages: hi}\n"
        "cases:\n"
        "  - name: code\n"
        "    request: *code\n"
        "    expect: {route: code}\n"
        "  - name: code for a user\n"
        "    request: {<<: *code, metadata: {task: code, user_id: u1}}\n"
        "    expect: {route: code, budgets: [per-user-daily]}\n",
        encoding="utf-8",
    )
    assert main(["test", str(tests)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("2 passed, 0 failed")


def test_a_policy_path_written_from_the_current_directory_is_said_to_be_relative(
    policy_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(policy_path.parent)
    (policy_path.parent / "tests").mkdir()
    tests = Path("tests", "p.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\ncases: [{name: a, request: {}, expect: {route: default}}]\n",
        encoding="utf-8",
    )
    assert _run(tests, capsys) == (
        1,
        [
            f"{tests}:1: policy file not found: {Path('tests', 'policy.yaml')} (the path is"
            " relative to the tests file, not the current directory: write"
            " 'policy: ../policy.yaml')"
        ],
    )


@pytest.mark.parametrize("written", ["~/policy.yaml", "${HOME}/policy.yaml"])
def test_a_policy_path_is_not_expanded(
    policy_path: Path, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        f"policy: '{written}'\ncases: [{{name: a, request: {{}}, expect: {{route: default}}}}]\n",
        encoding="utf-8",
    )
    code, problems = _run(tests, capsys)
    assert code == 1
    assert problems == [
        f"{tests}:1: policy file not found: {tests.parent / written} (the path is read as"
        " written: ~ and ${...} are not expanded)"
    ]


@pytest.mark.parametrize("kind", ["pipe", "device"])
def test_a_policy_path_that_is_not_a_file_is_not_called_missing(
    policy_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = policy_path.with_name("pipe.yaml")
    if kind == "pipe":
        os.mkfifo(target)
    else:
        target = Path("/dev/null")
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        f"policy: {target.name if kind == 'pipe' else target}\n"
        "cases: [{name: a, request: {}, expect: {route: default}}]\n",
        encoding="utf-8",
    )
    assert _run(tests, capsys) == (
        1,
        [f"{tests}:1: 'policy' names a pipe or device, not a policy file: {target}"],
    )
