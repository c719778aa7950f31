"""A broken symbolic link or a link loop given by name is named as one, by every command, as
`validate` names one it finds in a folder: each said "no such file or directory", though `ls`
lists the name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

BROKEN = "a broken symbolic link: gone.yaml does not exist (fix or remove the link)"
LOOP = "a symbolic link loop (to loop-b.yaml) (the link never reaches a file)"


@pytest.fixture
def links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.yaml").symlink_to("gone.yaml")
    (tmp_path / "loop-a.yaml").symlink_to("loop-b.yaml")
    (tmp_path / "loop-b.yaml").symlink_to("loop-a.yaml")
    (tmp_path / "req.yaml").write_text("messages: hi\n", encoding="utf-8")
    return tmp_path


def test_validate(links: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["validate", "--format", "json", "broken.yaml", "loop-a.yaml"])

    files = json.loads(capsys.readouterr().out)["files"]
    assert status == 2
    shown = [(d["code"], d["message"], d["hint"]) for f in files for d in f["diagnostics"]]
    assert shown == [
        ("PR001", "a broken symbolic link: gone.yaml does not exist", "fix or remove the link"),
        ("PR001", "a symbolic link loop (to loop-b.yaml)", "the link never reaches a file"),
    ]


def test_test(links: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["test", "broken.yaml", "loop-a.yaml"])

    out = capsys.readouterr().out
    assert status == 2
    assert f"broken.yaml: {BROKEN}" in out
    assert f"loop-a.yaml: {LOOP}" in out


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["explain", "broken.yaml", "--request", "req.yaml"], "policy"),
        (["budget", "status", "broken.yaml"], "policy"),
        (["explain", "req.yaml", "--request", "broken.yaml"], "request"),
    ],
)
def test_explain_and_budget_status(
    links: Path, capsys: pytest.CaptureFixture[str], argv: list[str], what: str
) -> None:
    status = main(argv)

    err = capsys.readouterr().err
    assert status == 2
    assert f"error: no such {what} file: broken.yaml ({BROKEN})" in err


def test_receipts_report(links: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["receipts", "report", "broken.yaml", "loop-a.yaml"])

    err = capsys.readouterr().err
    assert status == 2
    assert f"error: broken.yaml: {BROKEN}" in err
    assert f"error: loop-a.yaml: {LOOP}" in err
