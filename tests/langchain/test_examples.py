"""Every example script runs offline and prints what it promises; so does the demo."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.demo import run_demo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "lcel_chain.py": [
        "answer: Paris is the capital of France.",
        "route: code model: anthropic/fake-sonnet",
        "streamed: Hello from fake-fake-mini: Say hello",
    ],
    "agent_tools.py": [
        "tool call: get_weather({'city': 'Lyon'})",
        "answer: It is sunny and 21 degrees in Lyon.",
        "model calls: 2",
    ],
    "structured_output.py": [
        "parsed: True error: None",
        "route: code model: anthropic/fake-sonnet",
        "anthropic request carried: tools",
    ],
}


def test_every_example_is_checked() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


def test_examples_run() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # Started together: each pays for importing litellm, and they do not share anything.
    running = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in EXPECTED
    }
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name} failed:\n{stderr}"
        lines = stdout.splitlines()
        for expected in EXPECTED[name]:
            assert expected in lines, f"{name}: {expected!r} not in\n{stdout}"
        assert "Provider List" not in stdout


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_demo_shows_each_call() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert "route=default  model=openai/fake-mini  attempts=[mini:ok]" in text
    assert "route=code  model=anthropic/fake-sonnet  attempts=[sonnet:ok]" in text
    assert "tool call: get_weather({'city': 'Paris'})" in text
    assert "attempts=[mini:error(server_error), sonnet:ok]" in text
    assert text.count("cost=$") == 5
