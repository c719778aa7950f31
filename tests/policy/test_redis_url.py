"""A redis store's url that redis-py would refuse at the first call is refused by `policyroute
validate` (PR139), also once its ${VAR} references are expanded, without showing the URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main
from policyroute.policy.redisurl import redis_url_problem

HEAD = (
    "policyroute: 1\nname: redis-url\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    "routes: [{name: r, to: m}]\n"
)

# Each refused URL with what the message says of it; every one holds the password "hunter2".
REFUSED = [
    ("redis//:hunter2@localhost:6379", "has no scheme"),
    ("http://:hunter2@localhost:6379", "uses the scheme 'http'"),
    ("REDIS://:hunter2@localhost:6379", "writes the scheme 'REDIS' in capitals"),
    ("redis:/:hunter2@localhost:6379", "has no '//' after 'redis:'"),
    ("redis://:hunter2@localhost:63x9/0", "has a malformed host or port"),
    ("redis://:hunter2@localhost:70000/0", "has a malformed host or port"),
    ("rediss://:hunter2@[::1/0", "has a malformed host or port"),
    ("redis://:hunter2@localhost:6379/0?db=one", "gives db a value that is not a whole number"),
    ("redis://:hunter2@h/0?socket_timeout=5s", "gives socket_timeout a value that is not a number"),
]
# Refused although redis-py's from_url takes them: no connection made with them works.
UNUSABLE = [
    ("redis://:hunter2@local host:6379/0", "holds a space"),
    ("redis://:hunter2@localhost:6379/0\n", "holds a line break"),
    ("unix://:hunter2@", "names no socket path (unix:///path/to/redis.sock)"),
]
ACCEPTED = [
    "redis://localhost:6379/0",
    "redis://",
    "redis:///1",
    "rediss://user:p%40ss@cache.example:6380/2?ssl_cert_reqs=none",
    "redis://[::1]:6379?db=3&socket_timeout=1.5&health_check_interval=10",
    "unix:///run/redis/redis.sock?db=1",
]


def _validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[int, list[dict[str, Any]]]:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["validate", "--format", "json", str(path)])
    report = json.loads(capsys.readouterr().out)
    return code, report["files"][0]["diagnostics"]


@pytest.mark.parametrize(("url", "problem"), REFUSED + UNUSABLE)
def test_a_url_redis_cannot_use_is_an_error_that_hides_the_url(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    problem: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    text = HEAD + "store: {backend: redis, url: '${REDIS_URL}'}\n"

    code, found = _validate(tmp_path, capsys, text)

    (error,) = found
    assert code == 1
    assert (error["code"], error["severity"], error["path"]) == ("PR139", "error", "store.url")
    assert (error["line"], error["column"]) == (5, text.splitlines()[4].index("'${") + 1)
    assert error["message"] == (
        "store.url (with ${REDIS_URL} expanded) is not a URL redis-py can connect with:"
        f" it {problem}"
    )
    assert "redis://host:6379/0" in error["hint"]
    assert "hunter2" not in json.dumps(found)


def test_a_literal_url_is_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = _validate(tmp_path, capsys, HEAD + "store: {backend: redis, url: 'redis//h'}\n")

    assert code == 1
    assert [d["message"] for d in found] == [
        "store.url is not a URL redis-py can connect with: it has no scheme"
    ]


@pytest.mark.parametrize("url", ACCEPTED)
def test_a_url_redis_reads_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    text = HEAD + "store: {backend: redis, url: '${REDIS_URL}'}\n"

    assert _validate(tmp_path, capsys, text) == (0, [])


def test_an_unset_or_malformed_reference_is_left_to_its_own_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLICYROUTE_TEST_UNSET_VAR", raising=False)
    unset = HEAD + "store: {backend: redis, url: '${POLICYROUTE_TEST_UNSET_VAR}'}\n"
    malformed = HEAD + "store: {backend: redis, url: 'redis://${HOST'}\n"

    assert [d["code"] for d in _validate(tmp_path, capsys, unset)[1]] == ["PR119"]
    assert [d["code"] for d in _validate(tmp_path, capsys, malformed)[1]] == ["PR126"]


def test_the_url_of_another_backend_is_only_pr132(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, found = _validate(tmp_path, capsys, HEAD + "store: {url: 'http://h'}\n")

    assert [d["code"] for d in found] == ["PR132"]


def test_the_check_agrees_with_redis_py() -> None:
    connection = pytest.importorskip("redis.connection")
    for url, _ in REFUSED:
        with pytest.raises(ValueError, match=r"Redis URL|[Pp]ort|Invalid"):
            connection.parse_url(url)
        assert redis_url_problem(url) is not None
    for url, _ in UNUSABLE:
        connection.parse_url(url)  # taken, but no connection with it can work
    for url in ACCEPTED:
        connection.parse_url(url)
        assert redis_url_problem(url) is None
