"""The JSON of ``validate`` and ``explain`` says its layout (``format_version``), and
docs/cli-json.md describes that layout: every table there lists the keys the output has, in
its order, so a change to either shows up here with the version beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from policyroute import cli_validate, explain
from policyroute.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli-json.md"


def _tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in ``text``: its rows of cells, the header and rule left out."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            rows = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if rows is None:
            rows = []
            tables.append(rows)
            continue  # the header
        if not set(cells[0]) <= set("-: "):
            rows.append(cells)
    return tables


def _key(cell: str) -> str:
    found = re.fullmatch(r"`([a-z_]+)`", cell)
    assert found, f"not a key: {cell!r}"
    return found.group(1)


def _documented() -> tuple[dict[str, int], list[list[str]]]:
    versions, *layouts = _tables(DOC.read_text(encoding="utf-8"))
    by_command = {_key(command): int(version) for command, version in versions}
    return by_command, [[_key(row[0]) for row in table] for table in layouts]


def _outputs(
    policy_path: Path, broken_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    assert main(["validate", "--format", "json", str(broken_path)]) == 1
    validated = json.loads(capsys.readouterr().out)
    request = tmp_path / "req.yaml"
    request.write_text("metadata: {task: code, user_id: u7}\nmessages: hi\n", encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(request), "--format", "json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    return validated, explained


def test_both_outputs_start_with_their_format_version(
    policy_path: Path, broken_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    validated, explained = _outputs(policy_path, broken_path, tmp_path, capsys)

    assert next(iter(validated.items())) == ("format_version", 1)
    assert next(iter(explained.items())) == ("format_version", 1)
    assert (cli_validate.FORMAT_VERSION, explain.FORMAT_VERSION) == (1, 1)


def test_the_documented_layouts_are_the_outputs(
    policy_path: Path, broken_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    validated, explained = _outputs(policy_path, broken_path, tmp_path, capsys)
    versions, layouts = _documented()

    assert versions == {
        "validate": cli_validate.FORMAT_VERSION,
        "explain": explain.FORMAT_VERSION,
    }
    assert layouts == [
        list(validated),
        list(validated["files"][0]),
        list(validated["files"][0]["diagnostics"][0]),
        list(explained),
        list(explained["candidates"][0]),
        list(explained["budgets"][0]),
    ]
