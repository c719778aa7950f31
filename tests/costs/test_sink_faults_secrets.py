"""No credential reaches a receipt, whatever the provider echoes back in its error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import policyroute
from policyroute.accounting import _clear_default_cache
from policyroute.api import clear_cache
from policyroute.costs.receipts import scrub
from policyroute.errors import ProviderError
from policyroute.testing import FakeProvider, Fault

KEY = "sk-sinkfault-0123456789abcdef"
POLICY = """
policyroute: 1
name: secrets
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_SECRET_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
receipts: {{sink: jsonl, path: r.jsonl}}
defaults: {{max_tokens: 10}}
"""


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("{'Authorization': 'Token abcdef123456'}", "abcdef123456"),
        ("proxy-authorization: Digest username=me", "username=me"),
        ("GET /v1beta/models/x?key=ABCDEFG1234567&alt=sse", "ABCDEFG1234567"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
        ("refresh_token: rt-0123456789", "rt-0123456789"),
        ("password='hunter2hunter2'", "hunter2hunter2"),
        ("bad credentials ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijkl"),
        ("invalid key id AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("token hf_abcdefghijklmnopqrstuvwxyzAB rejected", "hf_abcdefghijklmnop"),
    ],
)
def test_credentials_in_any_common_spelling_are_redacted(text: str, leak: str) -> None:
    cleaned = scrub(text, secrets=())

    assert leak not in cleaned
    assert "[REDACTED]" in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 4096 exceeds the limit",
        "prompt_tokens=12 completion_tokens=3",
        "This model's maximum context length is 8192 tokens.",
    ],
)
def test_token_counts_are_not_mistaken_for_credentials(text: str) -> None:
    assert scrub(text, secrets=()) == text


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_SECRET_KEY", KEY)
    with FakeProvider() as provider:
        yield provider
    clear_cache()
    _clear_default_cache()


def test_a_provider_error_echoing_the_key_and_headers_leaves_no_secret_in_receipts(
    tmp_path: Path, fp: FakeProvider
) -> None:
    echo = (
        f"Invalid credentials {KEY}; request headers were"
        " {'Authorization': 'Basic dXNlcjpwYXNzd29yZA==', 'x-api-key': 'kkkkkkkkkkkk'}"
    )
    fp.set_default("fake-a", Fault.status(401, message=echo))
    (tmp_path / "p.yaml").write_text(POLICY.format(base=fp.openai_base))

    with pytest.raises(ProviderError):
        policyroute.completion(
            policy=tmp_path / "p.yaml", messages=[{"role": "user", "content": "x"}]
        )

    text = (tmp_path / "r.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["kind"] for r in records] == ["attempt", "call"]
    for secret in (KEY, "dXNlcjpwYXNzd29yZA==", "kkkkkkkkkkkk"):
        assert secret not in text
    assert "[REDACTED]" in records[0]["error"]
