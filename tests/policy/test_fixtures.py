"""Every invalid policy yields exactly its expected diagnostics; every valid one yields none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.policy.codes import CODES
from policyroute.policy.validate import validate_file, validate_paths

POLICIES = Path(__file__).resolve().parent.parent / "policies"
INVALID = sorted((POLICIES / "invalid").glob("*.yaml"))
VALID = sorted((POLICIES / "valid").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _controlled_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLICYROUTE_TEST_UNSET_VAR", raising=False)
    monkeypatch.setenv("POLICYROUTE_TEST_HOST", "db.internal")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-env-value")


def _expected(policy: Path) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(
        policy.with_name(policy.name[: -len(".yaml")] + ".expected.json").read_text()
    )
    return data


@pytest.mark.parametrize("policy", INVALID, ids=lambda p: p.stem)
def test_invalid_policy_yields_exactly_the_expected_diagnostics(policy: Path) -> None:
    result = validate_file(policy)
    got = [
        {"code": d.code, "line": d.line, "column": d.column, "path": d.path, "severity": d.severity}
        for d in result.diagnostics
    ]
    assert got == _expected(policy)
    assert all(d.message and d.file == str(policy) for d in result.diagnostics)


@pytest.mark.parametrize("policy", INVALID, ids=lambda p: p.stem)
def test_invalid_policy_is_not_ok_under_strict(policy: Path) -> None:
    result = validate_file(policy, strict=True)
    assert not result.ok
    assert result.spec is None or not any(d.severity == "error" for d in result.diagnostics)


@pytest.mark.parametrize("policy", VALID, ids=lambda p: p.stem)
def test_valid_policy_has_no_diagnostics_and_a_spec(policy: Path) -> None:
    result = validate_file(policy, strict=True)
    assert result.diagnostics == ()
    assert result.ok
    assert result.spec is not None


def test_every_code_is_covered_by_an_invalid_policy() -> None:
    seen = {d["code"] for p in INVALID for d in _expected(p)}
    # PR001 for a missing file cannot live in a folder; the non-UTF-8 case covers it.
    assert set(CODES) == seen


def test_at_least_35_invalid_policies() -> None:
    assert len(INVALID) >= 35


def test_validate_paths_recurses_and_skips_test_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    minimal = (POLICIES / "valid" / "minimal.yaml").read_text()
    (tmp_path / "a.yaml").write_text(minimal)
    (tmp_path / "sub" / "b.yml").write_text(minimal)
    (tmp_path / "sub" / "b.tests.yaml").write_text("cases: []\n")
    (tmp_path / "sub" / "c_tests.yaml").write_text("cases: []\n")
    (tmp_path / "notes.txt").write_text("x")
    results = validate_paths([tmp_path, tmp_path / "missing.yaml"])
    names = [Path(r.file).name for r in results]
    assert names == ["a.yaml", "b.yml", "missing.yaml"]
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].diagnostics[0].code == "PR001"
