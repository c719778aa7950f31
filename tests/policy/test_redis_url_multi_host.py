"""Redis Cluster (redis+cluster://) and Sentinel (redis+sentinel://) store URLs: `policyroute
validate` takes the well-formed ones and refuses the others with PR139, saying what is wrong
and where without showing the URL; the store refuses them too, with the password masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.budgets.stores.redis import RedisStore, redacted_url
from policyroute.cli import main
from policyroute.errors import BudgetStoreError

HEAD = (
    "policyroute: 1\nname: redis-url\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    "routes: [{name: r, to: m}]\n"
)

ACCEPTED = [
    "redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379",
    "redis+cluster://cache.example",
    "rediss+cluster://app:p%40ss@cfg.cache.example:6379/0?ssl_cert_reqs=none",
    "redis+cluster://[::1]:7000,[::1]:7001/?socket_timeout=2",
    "redis+sentinel://s1:26379,s2:26379,s3:26379/budgets",
    "redis+sentinel://:hunter2@s1/budgets/2?sentinel_password=sentinel-pw&socket_timeout=1.5",
    "rediss+sentinel://app:hunter2@s1:26380/budgets/0?sentinel_username=watch",
]
# Each with what the message says of it; every one holds the password "hunter2".
REFUSED = [
    ("redis+cluster://:hunter2@n1:7000,,n2:7001", "lists an empty host 2"),
    ("redis+cluster://:hunter2@n1:7000,n2:7x01", "has a malformed host 2 (write host:port)"),
    ("redis+cluster://:hunter2@n1:70000", "gives host 1 a port that is not from 1 to 65535"),
    ("redis+cluster://:hunter2@n1:7000/2", "names database 2, but a cluster has database 0 only"),
    ("redis+cluster://:hunter2@n1:7000/?db=1", "passes db, but a cluster has database 0 only"),
    (
        "redis+cluster://:hunter2@n1:7000/?health_check_interval=5",
        "passes the query argument 'health_check_interval', which redis-py's cluster clients"
        " do not take",
    ),
    (
        "redis+cluster://:hunter2@n1:7000/?socket_timout=2",
        "passes the query argument 'socket_timout', which no redis-py connection takes"
        " (did you mean socket_timeout?)",
    ),
    ("redis+cluster://:hunter2@n1/?socket_timeout=2s", "gives socket_timeout a value that is not"),
    ("REDIS+SENTINEL://:hunter2@s1/budgets", "writes the scheme 'REDIS+SENTINEL' in capitals"),
    ("redis+sentinel:/:hunter2@s1/budgets", "has no '//' after 'redis+sentinel:'"),
    ("redis+sentinel://:hunter2@s1:26379", "names no service"),
    ("redis+sentinel://:hunter2@s1:26379/budgets/one", "has a path that is not /service or"),
    ("redis+sentinel://:hun/ter2@s1:26379/budgets", "has '/', '?' or '#' in its password"),
    ("redis+sentinel://:hunter2@s1 s2/budgets", "holds a space"),
]


def _validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> tuple[int, list[dict[str, Any]]]:
    monkeypatch.setenv("REDIS_URL", url)
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + "store: {backend: redis, url: '${REDIS_URL}'}\n", encoding="utf-8")
    code = main(["validate", "--format", "json", str(path)])
    report = json.loads(capsys.readouterr().out)
    return code, report["files"][0]["diagnostics"]


@pytest.mark.parametrize("url", ACCEPTED)
def test_a_cluster_or_sentinel_url_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    assert _validate(tmp_path, capsys, monkeypatch, url) == (0, [])


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_a_malformed_cluster_or_sentinel_url_is_pr139_naming_the_fault(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    problem: str,
) -> None:
    code, found = _validate(tmp_path, capsys, monkeypatch, url)

    (error,) = found
    assert code == 1
    assert (error["code"], error["path"]) == ("PR139", "store.url")
    assert error["message"].startswith(
        "store.url (with ${REDIS_URL} expanded) is not a URL redis-py can connect with:"
        f" it {problem}"
    )
    assert "redis+sentinel://" in error["hint"]
    assert "hunter2" not in json.dumps(found)


@pytest.mark.parametrize(
    "url", [u for u, _ in REFUSED if u.startswith("redis+") and " " not in u][:8]
)
def test_the_store_refuses_what_validation_refuses_with_the_password_masked(url: str) -> None:
    with pytest.raises(BudgetStoreError) as caught:
        RedisStore(url)

    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


def test_both_passwords_of_a_sentinel_url_are_masked() -> None:
    url = "redis+sentinel://app:hunter2@s1,s2/budgets/0?sentinel_password=s3ntinel&db=0"
    store = RedisStore(url)
    try:
        shown = f"{redacted_url(url)} {store!r}"
    finally:
        store.close()

    assert "hunter2" not in shown
    assert "s3ntinel" not in shown
    assert "redis+sentinel://app:***@s1,s2/budgets/0?sentinel_password=***&db=0" in shown
