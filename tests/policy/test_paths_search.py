"""``validate_paths``: which files a folder search yields, in which order, and what it reports
in place of a file it cannot read."""

from __future__ import annotations

from pathlib import Path

from policyroute.policy.validate import ValidationResult, validate_paths

POLICIES = Path(__file__).resolve().parent.parent / "policies"
MINIMAL = (POLICIES / "valid" / "minimal.yaml").read_text(encoding="utf-8")


def _write(path: Path, text: str = MINIMAL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _names(results: list[ValidationResult], root: Path) -> list[str]:
    return [Path(r.file).relative_to(root).as_posix() for r in results]


def test_files_come_in_one_order_whatever_order_they_were_made_in(tmp_path: Path) -> None:
    for name in ("b.yaml", "a/z.yml", "A.YAML", "a.yaml", "a/b/c.yaml", "a-b.yaml"):
        _write(tmp_path / name)

    results = validate_paths([tmp_path])

    assert _names(results, tmp_path) == [
        "A.YAML",
        "a/b/c.yaml",
        "a/z.yml",
        "a-b.yaml",
        "a.yaml",
        "b.yaml",
    ]
    assert all(r.ok for r in results)


def test_a_hidden_folder_given_is_searched_but_not_one_below_it(tmp_path: Path) -> None:
    top = tmp_path / ".config"
    _write(top / "policy.yaml")
    _write(top / ".cache" / "other.yaml")
    _write(top / ".draft.yaml")

    assert _names(validate_paths([top]), top) == ["policy.yaml"]


def test_a_link_to_a_folder_is_not_followed(tmp_path: Path) -> None:
    _write(tmp_path / "elsewhere" / "p.yaml")
    top = tmp_path / "policies"
    _write(top / "own.yaml")
    (top / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    assert _names(validate_paths([top]), top) == ["own.yaml"]
    # named itself, the linked folder is searched
    assert _names(validate_paths([top / "linked"]), top / "linked") == ["p.yaml"]


def test_a_folder_named_like_a_policy_is_searched_not_read(tmp_path: Path) -> None:
    _write(tmp_path / "odd.yaml" / "inner.yaml")

    assert _names(validate_paths([tmp_path]), tmp_path) == ["odd.yaml/inner.yaml"]


def test_a_folder_with_no_policy_is_one_pr001_result(tmp_path: Path) -> None:
    _write(tmp_path / "notes.txt", "x")
    _write(tmp_path / "p.tests.yaml", "cases: []\n")

    (result,) = validate_paths([tmp_path])

    (diagnostic,) = result.diagnostics
    assert (result.file, result.ok, diagnostic.code) == (str(tmp_path), False, "PR001")
    assert diagnostic.message == "no policy files in this folder"
    assert "*.tests.yaml" in (diagnostic.hint or "")
