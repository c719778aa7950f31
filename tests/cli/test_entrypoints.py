"""The installed `policyroute` script and `python -m policyroute`, in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "policyroute"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the repository, uncoloured, in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_console_script_validates_the_example_policies() -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: run `pip install -e .`"
    done = _run([str(SCRIPT), "validate", "--format", "github", "policies/"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("0 errors, ")
    assert lines[-1].endswith(" in 5 files")
    assert all(line.startswith("::warning ") for line in lines[:-1])


def test_validate_imports_neither_litellm_nor_langchain(tmp_path: Path) -> None:
    # Runs `python -m policyroute validate` in a fresh interpreter, then looks at what it
    # imported: validation runs in editors and pre-commit hooks and must stay light.
    probe = textwrap.dedent(
        """
        import runpy, sys
        sys.argv = ["policyroute", "validate", "policies/tiered.yaml"]
        try:
            runpy.run_module("policyroute", run_name="__main__")
        except SystemExit as exc:
            status = exc.code
        heavy = ("litellm", "langchain_core", "policyroute.execution", "policyroute.langchain",
                 "policyroute.costs.report")
        heavy = sorted(m for m in heavy if m in sys.modules)
        print("STATUS", status, "HEAVY", ",".join(heavy) or "-")
        """
    )
    done = _run([sys.executable, "-c", probe])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "STATUS 0 HEAVY -"
