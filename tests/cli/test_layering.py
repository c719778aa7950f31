"""The command line depends on the library, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "policyroute"
# The entry points are the CLI's own: `python -m policyroute` runs it.
CLI_SIDE = {"__main__.py"}


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _is_cli(module: str) -> bool:
    return module == "policyroute.cli" or module.startswith(
        ("policyroute.cli.", "policyroute.cli_")
    )


def test_no_library_module_imports_the_cli() -> None:
    library = [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not (p.parent == PACKAGE and (p.name.startswith("cli") or p.name in CLI_SIDE))
    ]
    assert any(p.name == "explain.py" for p in library)
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(m for m in _imported_modules(p) if _is_cli(m))
        for p in library
    }
    assert {k: v for k, v in offenders.items() if v} == {}
