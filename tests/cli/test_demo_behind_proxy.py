"""`policyroute demo` and the examples run offline behind an HTTP proxy.

With HTTPS_PROXY (or HTTP_PROXY, ALL_PROXY) set, as on many company machines and CI runners,
httpx sent the calls meant for the fake provider on 127.0.0.1 to the proxy, which cannot
reach this machine's loopback: every demo call failed with "Connection refused" and exit 1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.demo import _loopback_unproxied

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def _behind_a_dead_proxy() -> dict[str, str]:
    proxy = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, ALL_PROXY=proxy, http_proxy=proxy)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def test_demo_and_an_example_run_behind_a_proxy() -> None:
    env = _behind_a_dead_proxy()
    commands = {
        "demo": [sys.executable, "-m", "policyroute", "demo"],
        "lcel_chain.py": [sys.executable, str(EXAMPLES / "lcel_chain.py")],
    }
    # Started together: each pays for importing litellm on its own.
    running = {
        name: subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for name, argv in commands.items()
    }
    results = {name: p.communicate(timeout=120) for name, p in running.items()}
    for name, process in running.items():
        assert process.returncode == 0, f"{name} failed:\n{results[name][1]}"
    demo_out = results["demo"][0]
    assert "attempts=[mini:error(server_error), sonnet:ok]" in demo_out
    assert demo_out.count("cost=$") == 5
    assert "answer: Paris is the capital of France." in results["lcel_chain.py"][0]


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ({}, "127.0.0.1,localhost"),
        ({"NO_PROXY": "corp.example"}, "corp.example,127.0.0.1,localhost"),
        ({"no_proxy": "a", "NO_PROXY": "b,localhost"}, "a,b,localhost,127.0.0.1"),
    ],
)
def test_loopback_is_added_to_no_proxy_and_the_environment_restored(
    monkeypatch: pytest.MonkeyPatch, before: dict[str, str], expected: str
) -> None:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in before.items():
        monkeypatch.setenv(name, value)
    with _loopback_unproxied():
        assert os.environ["no_proxy"] == os.environ["NO_PROXY"] == expected
    assert {n: os.environ.get(n) for n in ("no_proxy", "NO_PROXY")} == {
        "no_proxy": before.get("no_proxy"),
        "NO_PROXY": before.get("NO_PROXY"),
    }
