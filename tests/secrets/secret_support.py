"""Sentinel credentials, a policy that carries them, and a check that a text holds none of
them (importable by conftest and test modules alike)."""

from __future__ import annotations

from pathlib import Path

KEY = "sk-SENTINELKEY0123456789abcdef"
"""The API key, given to the policy through ``${POLICYROUTE_SENTINEL_KEY}``."""
PROXY_KEY = "prx9SENTINELPROXYKEY"
"""A self-hosted proxy's key, shaped like no vendor's: only its value can find it."""
PASSWORD = "SENTINELPW"
"""The password in ``api_base`` and in the store URL."""
HEADER = "SENTINELHDR"
"""The credentials of an ``Authorization`` header given to a call."""
SENTINELS = (KEY, KEY[3:20], PROXY_KEY, PASSWORD, HEADER)


def assert_clean(text: object, where: str = "") -> None:
    """Fail if ``str(text)`` holds any sentinel secret, showing where."""
    shown = str(text)
    for secret in SENTINELS:
        at = shown.find(secret)
        assert at < 0, f"{where or 'text'} leaks {secret!r}: ...{shown[max(0, at - 120) : at + 40]}"


def policy_text(base: str, tmp: Path, *, sink: str = "jsonl") -> str:
    """A policy whose deployment ``a`` reaches the fake provider at ``base`` through a URL with
    a password, falling over to ``b``; its receipts go to ``tmp/receipts`` (``sink``)."""
    secret_base = base.replace("http://", f"http://user:{PASSWORD}@")
    return f"""policyroute: 1
name: secrets
models:
  a:
    model: openai/fake-a
    api_base: {secret_base}
    api_key: ${{POLICYROUTE_SENTINEL_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
    max_output_tokens: 100
  b:
    model: openai/fake-b
    api_base: {base}
    api_key: ${{POLICYROUTE_SENTINEL_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
    max_output_tokens: 100
routes:
  - name: default
    to: [a, b]
defaults:
  retry: {{attempts: 0}}
store: {{backend: sqlite, path: {tmp / "budgets.sqlite3"}}}
budgets:
  - name: global
    limit_usd: 5
    window: day
receipts: {{sink: {sink}, path: {tmp / "receipts"}}}
"""
