"""``policyroute budget status`` on a Redis store when the redis package is there but cannot
be imported (a dependency of it missing, as in an environment another interpreter built): the
error names what failed rather than asking to install the package that is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

POLICY = """\
policyroute: 1
name: redis-import
models:
  m: {model: openai/gpt-4o-mini}
budgets:
  - {name: daily, limit_usd: 5, window: day}
routes:
  - {name: default, to: m}
store: {backend: redis, url: "redis://127.0.0.1:1/0"}
"""


def _status(tmp_path: Path, package: str) -> subprocess.CompletedProcess[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    shadow = tmp_path / "shadow"  # a redis package, found first, whose __init__ is `package`
    (shadow / "redis").mkdir(parents=True)
    (shadow / "redis" / "__init__.py").write_text(package, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    return subprocess.run(
        [sys.executable, "-m", "policyroute", "budget", "status", str(policy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_a_missing_dependency_of_redis_is_named(tmp_path: Path) -> None:
    done = _status(tmp_path, "import policyroute_missing_dependency\n")

    assert done.returncode == 1
    assert "cannot import the redis package" in done.stderr
    assert "No module named 'policyroute_missing_dependency'" in done.stderr
    assert "pip install" not in done.stderr
