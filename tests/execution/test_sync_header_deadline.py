"""A sync call whose provider sends its response *headers* a few bytes at a time stops at
its timeout plus the grace, as one whose body drips does.

httpx applies the timeout to each read, and the headers of an answer are read before the
response exists: a provider that keeps them coming held ``policyroute.completion`` and
``ChatPolicyRoute.invoke`` for as long as it liked. The deadline is armed once the request is
written, on a new connection and on one the pool reuses, over plain HTTP and over TLS; the
attempt fails as a timeout, billed (the provider had the request), and the call falls over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from billing_support import receipts
from header_drip_support import HeaderDripper
from litellm.caching.llm_caching_handler import LLMClientCache
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler

import policyroute
from policyroute import ChatPolicyRoute
from policyroute._lazy import import_litellm
from policyroute.errors import AllCandidatesFailedError, ProviderTimeoutError
from policyroute.testing import LocalTLS

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "name a lighthouse"}]


@pytest.fixture(params=["plain", "tls"])
def server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HeaderDripper]:
    tls = LocalTLS() if request.param == "tls" else None
    litellm = import_litellm()
    cache = LLMClientCache()
    # Clients of the test's own, built (over TLS) trusting its authority, closed afterwards.
    if tls is not None:
        monkeypatch.setattr(litellm, "ssl_verify", tls.ca_file)
    monkeypatch.setattr(litellm, "in_memory_llm_clients_cache", cache)
    handler = HTTPHandler()
    monkeypatch.setattr(litellm, "module_level_client", handler)
    monkeypatch.setattr(litellm, "module_level_aclient", AsyncHTTPHandler())
    dripper = HeaderDripper(tls)
    yield dripper
    handler.close()
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not isinstance(client, AsyncHTTPHandler):
            try:
                close()
            except TypeError:
                pass
    cache.flush_cache()
    dripper.close()


POLICY = """
policyroute: 1
name: header-deadline
models:
  a:
    model: openai/drip-a
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: openai/drip-b
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
store: {{backend: memory, lease: 300s}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes:
  - name: default
    to: {to}
defaults:
  max_tokens: 64
  timeout: 1s
  retry: {{attempts: 0}}
"""


def _policy(workdir: Path, server: HeaderDripper, to: str = "[a, b]") -> Path:
    path = workdir / "policy.yaml"
    path.write_text(POLICY.format(base=server.base, to=to))
    return path


def _call(policy: Path, mode: str) -> str:
    if mode == "completion":
        response = policyroute.completion(policy=policy, messages=MESSAGES)
        return str(response.choices[0].message.content)
    return str(ChatPolicyRoute(policy=policy).invoke(MESSAGES[0]["content"]).content)


@pytest.mark.parametrize("pooled", [False, True], ids=["new-connection", "pooled-connection"])
@pytest.mark.parametrize("mode", ["completion", "invoke"])
def test_headers_dripping_past_the_timeout_fall_over_to_the_next_deployment(
    server: HeaderDripper, workdir: Path, mode: str, pooled: bool
) -> None:
    policy = _policy(workdir, server)
    if pooled:  # the pool keeps the connection of an answer: the next request reuses it
        assert _call(policy, mode) == "drip-a answer"
    server.drip.add("drip-a")

    assert _call(policy, mode) == "drip-b answer"

    attempts = receipts(workdir, "attempt")[1 if pooled else 0 :]
    assert [(a["deployment"], a["status"], a["error_class"]) for a in attempts] == [
        ("a", "error", "timeout"),
        ("b", "ok", None),
    ]
    assert attempts[0]["provider_billed"] is True  # the provider had the request
    assert server.requests[-2:] == ["drip-a", "drip-b"]
    if pooled:  # the dripping answer came on the connection of the first one
        assert server.connections[0] == server.connections[1]
    assert server.gave_up.wait(5)  # the connection was dropped, not left dripping


def test_a_deployment_whose_headers_drip_fails_the_call_as_a_timeout(
    server: HeaderDripper, workdir: Path
) -> None:
    policy = _policy(workdir, server, to="a")
    server.drip.add("drip-a")

    with pytest.raises(AllCandidatesFailedError, match="request timeout of 1s") as info:
        _call(policy, "completion")

    (error,) = info.value.errors
    assert isinstance(error, ProviderTimeoutError)
    server.drip.clear()
    assert _call(policy, "completion") == "drip-a answer"  # the pool is sound afterwards


def test_answers_in_time_are_not_cut(server: HeaderDripper, workdir: Path) -> None:
    policy = _policy(workdir, server, to="a")

    for _ in range(3):
        assert _call(policy, "completion") == "drip-a answer"
    time.sleep(2.5)  # past the deadlines of the calls, whose connection is pooled now
    assert _call(policy, "completion") == "drip-a answer"

    assert [a["status"] for a in receipts(workdir, "attempt")] == ["ok"] * 4


def test_a_trace_extension_the_request_had_is_still_called() -> None:
    import httpx

    from policyroute.execution.sync_deadline import _on_request
    from policyroute.execution.unary_deadline import UnaryDeadline

    events: list[str] = []
    request = httpx.Request(
        "POST", "http://127.0.0.1:9/v1", extensions={"trace": lambda name, _: events.append(name)}
    )
    deadline = UnaryDeadline.after(5, grace=1.0)
    assert deadline is not None
    with deadline:
        _on_request(request)
        _on_request(request)  # a redirect: traced once
        request.extensions["trace"]("http11.receive_response_headers.started", {})

    assert events == ["http11.receive_response_headers.started"]
    assert not deadline.cut
