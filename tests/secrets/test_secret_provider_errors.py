"""A provider that echoes the key, the Authorization header and the URL with its password:
none of them reaches the caller's exception (its text, its repr, its chain, its traceback),
the receipts, the callbacks or policyroute's logs."""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import litellm
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from secret_support import HEADER, KEY, PASSWORD, PROXY_KEY, assert_clean

from policyroute import AllCandidatesFailedError, ChatPolicyRoute, completion
from policyroute.testing import FakeProvider, Fault


def _echoes(fp: FakeProvider) -> None:
    """``a`` answers 401 quoting the key and the URL with its password (as OpenAI and httpx
    do); ``b`` quotes the Authorization header it got, and its credentials bare."""
    url = fp.openai_base.replace("http://", f"http://user:{PASSWORD}@")
    fp.script("fake-a", Fault.status(401, message=f"Incorrect API key provided: {KEY}. At {url}"))
    fp.script(
        "fake-b",
        Fault.status(401, message=f"rejected Authorization: Bearer {HEADER}; token {HEADER}"),
    )


def _with_header(policy: str) -> str:
    """``policy`` with a credential header on ``b`` (a call may not pass one), whose api_base
    has no user info to take the Authorization header's place."""
    header = f"params: {{extra_headers: {{Authorization: Bearer {HEADER}}}}}"
    return policy.replace("    model: openai/fake-b\n", f"    model: openai/fake-b\n    {header}\n")


def _chain_texts(exc: BaseException) -> list[str]:
    """str and repr of ``exc``, of each error it collects, and of everything they were
    raised from, and the tracebacks a logger would print."""
    texts: list[str] = []
    todo: list[BaseException] = [exc, *getattr(exc, "errors", ())]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts.append("".join(traceback.format_exception_only(type(current), current)))
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    # Traceback lines quote the caller's source; only the messages are checked here.
    texts += [line for line in traceback.format_exception(exc) if not line.startswith("    ")]
    return texts


def _stored(tmp: Path) -> str:
    """Everything written under ``tmp``: text files as they are, SQLite files dumped."""
    out: list[str] = []
    for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
        if path.read_bytes()[:15] == b"SQLite format 3":
            with sqlite3.connect(path) as db:
                out += list(db.iterdump())
            db.close()
        elif path.suffix not in (".sqlite3-wal", ".sqlite3-shm", ".lock"):
            out.append(path.read_text("utf-8", "replace"))
    return "\n".join(out)


class _Seen(BaseCallbackHandler):
    """Captures what LangChain hands every tracer (LangSmith included)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append((serialized, kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append((str(error), repr(error), kwargs))


@pytest.mark.parametrize("sink", ["jsonl", "sqlite"])
def test_completion_error_and_receipts_hold_no_secret(
    fp: FakeProvider,
    make_policy: Callable[..., str],
    tmp_path: Path,
    policyroute_logs: list[str],
    sink: str,
) -> None:
    _echoes(fp)
    policy = _with_header(make_policy(sink=sink))
    with pytest.raises(AllCandidatesFailedError) as info:
        completion(policy=policy, messages=[{"role": "user", "content": "hello there"}])
    assert [e.error_class for e in info.value.errors] == ["authentication", "authentication"]
    assert fp.requests[-1].headers.get("authorization") == f"Bearer {HEADER}"
    for text in _chain_texts(info.value):
        assert_clean(text, "the raised error")
    # The chain keeps litellm's own types, for the caller's except clauses and debugging.
    assert isinstance(info.value.errors[0].__cause__, litellm.AuthenticationError)
    assert "Incorrect API key provided" in str(info.value.errors[0])
    stored = _stored(tmp_path)
    assert "authentication" in stored
    assert_clean(stored, f"the {sink} receipts")
    assert_clean("\n".join(policyroute_logs), "policyroute's logs")


def test_a_key_of_no_known_shape_is_found_by_value(
    fp: FakeProvider, make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYROUTE_SENTINEL_KEY", PROXY_KEY)
    fp.script("fake-a", Fault.status(401, message=f"key {PROXY_KEY} was revoked"))
    fp.script("fake-b", Fault.status(403, message=f"proxy says: {PROXY_KEY} has no quota"))
    with pytest.raises(AllCandidatesFailedError) as info:
        completion(policy=make_policy(), messages=[{"role": "user", "content": "hi"}])
    assert "was revoked" in str(info.value.errors[0])
    for text in _chain_texts(info.value):
        assert_clean(text, "the raised error")


def test_chat_model_error_and_callbacks_hold_no_secret(
    fp: FakeProvider, make_policy: Callable[..., str], policyroute_logs: list[str]
) -> None:
    _echoes(fp)
    llm = ChatPolicyRoute(policy=_with_header(make_policy()))
    seen = _Seen()
    with pytest.raises(AllCandidatesFailedError) as info:
        llm.invoke("hello there", config={"callbacks": [seen]})
    assert fp.requests[-1].headers.get("authorization") == f"Bearer {HEADER}"
    for text in _chain_texts(info.value):
        assert_clean(text, "the raised error")
    assert len(seen.seen) == 2
    assert_clean(seen.seen, "the callbacks' arguments")
    assert_clean("\n".join(policyroute_logs), "policyroute's logs")


@pytest.mark.asyncio
async def test_async_stream_error_holds_no_secret(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    _echoes(fp)
    llm = ChatPolicyRoute(policy=_with_header(make_policy()))
    with pytest.raises(AllCandidatesFailedError) as info:
        async for _ in llm.astream("hello there"):
            pass
    assert fp.requests[-1].headers.get("authorization") == f"Bearer {HEADER}"
    for text in _chain_texts(info.value):
        assert_clean(text, "the raised error")
