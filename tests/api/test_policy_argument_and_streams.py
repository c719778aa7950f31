"""policyroute.completion's policy argument and its streams, as a litellm user meets them.

A policy is a compiled policy, a path or YAML text; a wrong one fails with a policyroute error.
An edited policy file is picked up on the next call. A stream fails at the call, as litellm's
does, when its answer never begins; once begun, it is settled exactly once however its
consumer stops.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest

import policyroute
from policyroute import api
from policyroute.errors import (
    AllCandidatesFailedError,
    BudgetExceeded,
    PolicyValidationError,
    RequestError,
)
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: {name}
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_REVIEW_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: {route}
    to: a
budgets:
  - name: total
    limit_usd: {limit}
    window: day
store: {{backend: sqlite, path: state/budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
MESSAGES = [{"role": "user", "content": "hello there"}]
TEXT = "one two three four five six"


@pytest.fixture
def fp(provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)  # the policy's store and receipts are relative to the cwd
    monkeypatch.setenv("PR_REVIEW_KEY", "sk-policy")
    provider.reset()
    provider.set_default("fake-a", Reply(text=TEXT, usage=Usage(prompt=7, completion=6)))
    api.clear_cache()
    yield provider
    api.clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _text(fp: FakeProvider, *, route: str = "default", limit: str = "5") -> str:
    return POLICY.format(name="api-streams", base=fp.openai_base, route=route, limit=limit)


def _write(fp: FakeProvider, tmp_path: Path, **kw: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(_text(fp, **kw))
    return path


def _receipts(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "receipts" / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _calls(tmp_path: Path) -> list[str]:
    return [r["status"] for r in _receipts(tmp_path) if r["kind"] == "call"]


# --------------------------------------------------------------------------- the policy argument


def test_policy_as_yaml_text_and_as_compiled_policy(fp: FakeProvider) -> None:
    text = _text(fp, route="from-text")
    by_text = policyroute.completion(policy=text, messages=MESSAGES)
    compiled = policyroute.load_policy_text(text)
    by_object = policyroute.completion(policy=compiled, messages=MESSAGES)
    assert by_text._hidden_params["policyroute"]["route"] == "from-text"
    assert by_object._hidden_params["policyroute"]["route"] == "from-text"


def test_a_missing_policy_file_is_a_policy_error(fp: FakeProvider, tmp_path: Path) -> None:
    with pytest.raises(PolicyValidationError, match="PR001"):
        policyroute.completion(policy=tmp_path / "nowhere.yaml", messages=MESSAGES)


def test_a_policy_file_deleted_after_its_first_call_is_a_policy_error(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    policyroute.completion(policy=path, messages=MESSAGES)
    path.unlink()
    with pytest.raises(PolicyValidationError, match="PR001"):
        policyroute.completion(policy=path, messages=MESSAGES)
    assert len(fp.requests) == 1


def test_a_policy_of_the_wrong_type_is_a_request_error(fp: FakeProvider) -> None:
    with pytest.raises(RequestError, match="policy must be"):
        policyroute.completion(policy=42, messages=MESSAGES)  # type: ignore[arg-type]


def test_an_edit_that_keeps_the_modification_time_is_picked_up(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path, route="before")
    first = policyroute.completion(policy=path, messages=MESSAGES)
    stamp = path.stat().st_mtime_ns
    # An edit within the same clock tick as the load leaves the modification time unchanged.
    path.write_text(_text(fp, route="after-the-edit"))
    os.utime(path, ns=(stamp, stamp))
    second = policyroute.completion(policy=path, messages=MESSAGES)
    assert first._hidden_params["policyroute"]["route"] == "before"
    assert second._hidden_params["policyroute"]["route"] == "after-the-edit"


def test_first_loads_from_many_threads_share_one_executor(fp: FakeProvider, tmp_path: Path) -> None:
    path = _write(fp, tmp_path)
    barrier = threading.Barrier(6)
    executors: list[object] = []

    def load() -> None:
        barrier.wait()
        executors.append(api._executor_for(path, None))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(executors) == 6
    assert len({id(e) for e in executors}) == 1


# --------------------------------------------------------------------------- streams


def test_a_stream_whose_answer_never_begins_raises_at_the_call(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    fp.script("fake-a", Fault.status(503))
    with pytest.raises(AllCandidatesFailedError) as info:
        policyroute.completion(policy=path, messages=MESSAGES, stream=True)
    assert info.value.deployment == "a"
    assert info.value.error_class == "server_error"
    assert _calls(tmp_path) == ["error"]


def test_a_stream_refused_by_its_budget_raises_at_the_call(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path, limit="0.000001")
    with pytest.raises(BudgetExceeded):
        policyroute.completion(policy=path, messages=MESSAGES, stream=True)
    assert fp.requests == []


@pytest.mark.asyncio
async def test_an_async_stream_whose_answer_never_begins_raises_at_the_await(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    fp.script("fake-a", Fault.status(503))
    with pytest.raises(AllCandidatesFailedError):
        await policyroute.acompletion(policy=path, messages=MESSAGES, stream=True)


def test_a_started_stream_still_yields_every_chunk(fp: FakeProvider, tmp_path: Path) -> None:
    path = _write(fp, tmp_path)
    stream = policyroute.completion(
        policy=path, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage.prompt_tokens == 7
    built = litellm.stream_chunk_builder(chunks)
    assert built is not None
    assert built.choices[0].message.content == TEXT
    assert stream.policyroute is not None
    assert list(stream) == []  # a second pass finds it finished, as litellm's does
    assert _calls(tmp_path) == ["ok"]


def test_a_stream_dropped_before_its_first_read_is_settled_once(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    stream = policyroute.completion(policy=path, messages=MESSAGES, stream=True)
    del stream
    gc.collect()
    assert _calls(tmp_path) == ["cancelled"]


def _consume_until_failure(stream: Any) -> None:
    with stream:
        for _chunk in stream:
            raise ValueError("consumer failed")


def test_a_loop_body_that_raises_settles_the_stream_once_on_close(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    stream = policyroute.completion(policy=path, messages=MESSAGES, stream=True)
    with pytest.raises(ValueError, match="consumer"):
        _consume_until_failure(stream)
    stream.close()
    assert _calls(tmp_path) == ["cancelled"]
    assert [r["status"] for r in _receipts(tmp_path) if r["kind"] == "attempt"] == ["cancelled"]


@pytest.mark.asyncio
async def test_an_async_stream_closed_after_one_chunk_is_settled_once(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    stream = await policyroute.acompletion(policy=path, messages=MESSAGES, stream=True)
    async for _chunk in stream:
        break
    await stream.aclose()
    await stream.aclose()
    await asyncio.sleep(0)
    assert _calls(tmp_path) == ["cancelled"]


@pytest.mark.asyncio
async def test_an_async_stream_cancelled_while_waiting_for_its_first_token_is_settled_once(
    fp: FakeProvider, tmp_path: Path
) -> None:
    path = _write(fp, tmp_path)
    fp.script("fake-a", Fault.slow_first_token(1.5))
    task = asyncio.create_task(policyroute.acompletion(policy=path, messages=MESSAGES, stream=True))
    await asyncio.to_thread(fp.wait_for_requests, 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _calls(tmp_path) == ["cancelled"]
