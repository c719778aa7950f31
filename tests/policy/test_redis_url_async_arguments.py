"""A Redis URL query argument redis-py's sync connections take but its asyncio ones do not
(``?ssl_validate_ocsp=true``) passed `policyroute validate` and the store, and then every async
call (``acompletion``, ``ainvoke``) met a ``TypeError`` from inside redis-py. The budget store
serves both APIs: validation refuses it (PR139) and the store refuses it when built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.budgets.stores.redis import RedisStore
from policyroute.cli import main
from policyroute.errors import BudgetStoreError

URL = "rediss://:hunter2@cache:6380/0?ssl_validate_ocsp=true"
POLICY = (
    "policyroute: 1\nname: redis-url\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
    f"routes: [{{name: r, to: m}}]\nstore: {{backend: redis, url: '{URL}'}}\n"
)


def test_validate_refuses_an_argument_async_connections_do_not_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY, encoding="utf-8")
    assert main(["validate", "--format", "json", str(path)]) == 1
    out = capsys.readouterr().out
    found = [d for d in json.loads(out)["files"][0]["diagnostics"] if d["code"] == "PR139"]
    assert len(found) == 1
    assert "'ssl_validate_ocsp'" in found[0]["message"]
    assert "asyncio" in found[0]["message"]
    assert "hunter2" not in out


def test_store_refuses_it_when_built() -> None:
    with pytest.raises(BudgetStoreError) as caught:
        RedisStore(URL)
    assert "ssl_validate_ocsp" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_arguments_both_take_are_kept() -> None:
    RedisStore("rediss://cache:6380/0?ssl_cert_reqs=required&ssl_check_hostname=true").close()
