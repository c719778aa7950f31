"""A document past the node limit is refused where the count passes it, with what to do.

It was refused at ``:0:0`` without a word of advice: in a long file, or one whose aliases
expand (an alias bomb), nothing said where to look. The place is the node written there or,
inside an alias, where the alias is used (not its anchor), with its JSON path; a tests file
is also told that ``policyroute test`` takes several files, and one too long to read is too.

A tests file grows with its cases: 3,000 of them (320 KB) were refused as "more than 50,000
nodes". What its text holds is bounded by the 524,288 characters, whose parsing costs more
than the nodes they can hold; only what its aliases add counts against the node limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

# Each x-<n> is nine of the one before: x-i would be 9**9 strings.
BOMB = "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"x-{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)
SPLIT = (
    "split the cases across several tests files: policyroute test takes several files or a folder"
)


def test_a_policy_past_the_node_limit_is_refused_at_the_node_that_passes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "long.yaml"
    items = ", ".join(["1"] * 60_000)
    policy.write_text(f"policyroute: 1\nname: long\nx-list: [{items}]\n", encoding="utf-8")

    assert main(["validate", "--format", "json", str(policy)]) == 1

    (found,) = json.loads(capsys.readouterr().out)["files"][0]["diagnostics"]
    # 1 for the document, 4 for the first two keys and values, 2 for x-list and its list.
    assert (found["code"], found["path"], found["line"]) == ("PR009", "x-list[49993]", 3)
    assert found["column"] == len("x-list: [") + 1 + 3 * 49_993
    assert found["message"] == (
        "the policy has more than 50,000 nodes (aliases counted expanded);"
        " the count passes the limit here"
    )
    assert found["hint"] == "a policy has a few hundred; does an alias expand too far?"


def test_an_alias_bomb_is_placed_where_an_alias_is_used_not_at_its_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "bomb.yaml"
    policy.write_text("policyroute: 1\nname: bomb\n" + BOMB, encoding="utf-8")

    assert main(["validate", str(policy)]) == 1

    out = capsys.readouterr().out
    # Up to x-e's list come 8,313 nodes; each alias in it adds 7,381: the sixth passes 50,000.
    assert out.startswith(
        f"{policy}:7:6 x-e[5]: the policy has more than 50,000 nodes (aliases counted"
        " expanded); the count passes the limit here (a policy has a few hundred; does an"
        " alias expand too far?) [PR009]\n"
    )


def test_a_tests_file_whose_aliases_pass_the_node_limit_is_placed_and_told_to_split(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("bomb.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\n" + BOMB + "cases: [{name: a, request: {}, expect: {route: a}}]\n",
        encoding="utf-8",
    )

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert (
        f"{tests}:6:6 x-e[5]: aliases add more than 50,000 nodes to the tests file; the count"
        f" passes the limit here (does an alias expand too far? If not, {SPLIT}) [PR009]\n"
    ) in out


def test_a_tests_file_too_long_to_read_is_told_to_split(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("long.tests.yaml")
    case = "  - {name: case %d, request: {messages: hi}, expect: {route: default}}\n"
    tests.write_text(
        "policy: policy.yaml\ncases:\n" + "".join(case % n for n in range(8_000)),
        encoding="utf-8",
    )

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert "characters long, more than the 524,288 allowed" in out
    assert f"({SPLIT}) [PR009]" in out


def test_a_request_past_the_node_limit_is_placed(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text(BOMB.replace("x-", "x") + "metadata: {a: *i}\n", encoding="utf-8")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1

    err = capsys.readouterr().err
    assert f"{request}:5:5: xe[5]: the request has more than 50,000 nodes" in err
    assert "(does an alias expand too far?) [PR009]" in err


def test_a_tests_file_of_3000_cases_runs_and_its_aliases_still_count(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("many.tests.yaml")
    case = (
        "  - name: case {n}\n"
        "    request: {{metadata: {{user_id: u{n}}}, messages: hello {n}}}\n"
        "    expect: {{route: default, model: local}}\n"
    )
    aliased = "  - {{name: aliased {n}, request: *request, expect: {{route: code}}}}\n"
    tests.write_text(
        "policy: policy.yaml\n"
        "x-request: &request {metadata: {task: code}, messages: [{role: user, content: hi}]}\n"
        "cases:\n"
        + "".join(case.format(n=n) for n in range(3_000))
        + "".join(aliased.format(n=n) for n in range(5)),
        encoding="utf-8",
    )
    assert 300_000 < tests.stat().st_size < 524_288

    assert main(["test", str(tests)]) == 0

    assert capsys.readouterr().out.rstrip().endswith("3005 passed, 0 failed")
