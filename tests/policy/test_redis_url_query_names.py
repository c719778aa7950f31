"""A Redis URL's query argument that no redis-py connection takes (``?socket_timout=2``) used to
pass validation and the store, then fail every call with a ``TypeError`` from inside redis-py.
`policyroute validate` refuses it (PR139, naming the argument, never the URL), and the store
refuses it when built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.budgets.stores.redis import RedisStore
from policyroute.cli import main
from policyroute.errors import BudgetStoreError
from policyroute.policy import redisurl
from policyroute.policy.redisurl import redis_url_problem

HEAD = (
    "policyroute: 1\nname: redis-url\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    "routes: [{name: r, to: m}]\n"
)
# Each URL with an argument no connection takes, and what the message says of it.
UNKNOWN = [
    (
        "redis://:hunter2@cache:6379/0?socket_timout=2",
        "passes the query argument 'socket_timout', which no redis-py connection takes"
        " (did you mean socket_timeout?)",
    ),
    (
        "redis://:hunter2@cache:6379/0?db=1&colour=blue",
        "passes the query argument 'colour', which no redis-py connection takes",
    ),
    (
        "redis://:hunter2@cache:6379/0?ssl_cert_reqs=none",
        "passes the query argument 'ssl_cert_reqs', which no redis-py connection takes"
        " (TLS arguments need a rediss:// URL)",
    ),
    (
        "unix://:hunter2@/run/redis.sock?port=6379",
        "passes the query argument 'port', which no redis-py connection takes",
    ),
]
TAKEN = [
    "redis://cache:6379/0?socket_timeout=2&socket_connect_timeout=1&retry_on_timeout=yes",
    "redis://cache:6379/0?client_name=billing&health_check_interval=30&protocol=3",
    "rediss://cache:6380/0?ssl_cert_reqs=required&ssl_check_hostname=true",
    "unix:///run/redis.sock?db=2&socket_timeout=1",
]


@pytest.mark.parametrize(("url", "problem"), UNKNOWN)
def test_validate_names_the_argument_and_hides_the_url(
    url: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + f"store: {{backend: redis, url: '{url}'}}\n", encoding="utf-8")
    assert main(["validate", "--format", "json", str(path)]) == 1
    out = capsys.readouterr().out
    [error] = json.loads(out)["files"][0]["diagnostics"]
    assert (error["code"], error["path"]) == ("PR139", "store.url")
    assert error["message"].endswith(f"it {problem}")
    assert "hunter2" not in out


@pytest.mark.parametrize("url", TAKEN)
def test_arguments_redis_py_takes_pass(url: str) -> None:
    assert redis_url_problem(url) is None


def test_the_check_agrees_with_redis_py() -> None:
    redis = pytest.importorskip("redis")
    for url, _ in UNKNOWN:
        pool = redis.ConnectionPool.from_url(url)
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            pool.connection_class(**pool.connection_kwargs)
    for url in TAKEN:
        pool = redis.ConnectionPool.from_url(url)
        pool.connection_class(**pool.connection_kwargs)


def test_without_redis_py_only_a_near_miss_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the redis extra is not installed, an argument of a newer redis-py must not be
    # refused on a guess; a misspelling of a well-known one still is.
    monkeypatch.setattr(redisurl, "_taken_by_redis_py", lambda scheme: frozenset())
    assert redis_url_problem("redis://cache:6379/0?socket_timout=2") is not None
    assert redis_url_problem("redis://cache:6379/0?brand_new_option=1") is None
    assert redis_url_problem("redis://cache:6379/0?socket_timeout=2") is None


@pytest.mark.parametrize(("url", "problem"), UNKNOWN)
def test_the_store_refuses_it_when_built(url: str, problem: str) -> None:
    with pytest.raises(BudgetStoreError) as caught:
        RedisStore(url)
    message = str(caught.value)
    assert "unexpected keyword argument" in message
    assert problem.split("'")[1] in message
    assert "hunter2" not in message


def test_the_urls_timeouts_override_the_stores() -> None:
    store = RedisStore("redis://127.0.0.1:6379/0?socket_timeout=1.5&socket_connect_timeout=0.5")
    try:
        kwargs = store._sync.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.5, 0.5)
    finally:
        store.close()
