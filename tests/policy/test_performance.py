"""Validating a policy never imports litellm and stays fast from a cold start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

POLICY = Path(__file__).resolve().parent.parent / "policies" / "valid" / "everything.yaml"

SCRIPT = f"""
import sys, time
start = time.perf_counter()
from policyroute.policy.validate import validate_file
result = validate_file({str(POLICY)!r})
elapsed = time.perf_counter() - start
assert "litellm" not in sys.modules, "validation imported litellm"
print(elapsed)
"""


def test_validate_file_does_not_import_litellm_and_is_fast() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    # Cold: ~0.2 s on a quiet machine; the bound leaves room for a busy shared CI box.
    assert float(out.stdout.strip()) < 2.0
