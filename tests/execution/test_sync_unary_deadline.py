"""A sync call that is not streamed keeps its request timeout for the whole answer.

httpx applies litellm's ``timeout`` to each read of a sync call, so a provider that keeps
sending its answer a few bytes at a time would hold ``policyroute.completion`` and
``ChatPolicyRoute.invoke`` for as long as it likes. Like the async path, they stop at the
timeout plus a grace: the attempt fails as a timeout, billed its prompt (the provider had
answered its headers), its receipt written and nothing left reserved, and the call falls over
to the next deployment, on the same pooled client, when the route has one.

Against a small HTTP server on loopback that answers each chat request as scripted: at once,
slowly to its end, or a few bytes at a time for longer than any test waits. Through the
OpenAI SDK's client (``openai/`` models) and litellm's own ``HTTPHandler`` (``anthropic/``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest
from billing_support import INPUT_RATE, receipts
from exec_support import arun
from langchain_core.messages import HumanMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.costs.estimate import count_input_tokens
from policyroute.errors import AllCandidatesFailedError, ProviderTimeoutError

pytestmark = pytest.mark.timeout(20)

MESSAGES = [{"role": "user", "content": "name a lighthouse"}]
MODES = ["completion", "invoke"]

# How long a dripping answer keeps coming if nobody stops reading it: longer than any test.
DRIP_SECONDS = 30.0


class DrippingProvider(ThreadingHTTPServer):
    """Answers OpenAI (``/chat/completions``) and Anthropic (``/v1/messages``) requests with
    the scripted way of each model (``fast`` once the script is used up):

    - ``fast``: the whole answer at once;
    - ``slow``: the whole answer in ``pieces`` parts ``gap`` seconds apart;
    - ``drip``: 8 bytes every 0.3 s of an answer that never ends within ``DRIP_SECONDS``;
    - ``hold``: as ``drip``, until the event ``gate`` is set: then the rest at once.

    A way's event ``arrived``, if it has one, is set once its request is in.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, deque[tuple[str, dict[str, Any]]]] = defaultdict(deque)
        self.requests: list[str] = []
        self.dripped = threading.Event()  # a drip ended because the client went away
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, model: str, *ways: tuple[str, dict[str, Any]]) -> None:
        self.scripts[model].extend(ways)

    def way(self, model: str) -> tuple[str, dict[str, Any]]:
        script = self.scripts[model]
        return script.popleft() if script else ("fast", {})

    def __enter__(self) -> DrippingProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _answer(path: str, model: str, text: str) -> bytes:
    if path.endswith("/v1/messages"):
        body: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 3},
        }
    else:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }
    return json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    server: DrippingProvider
    protocol_version = "HTTP/1.1"  # keep-alive: the clients pool their connections

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = str(request["model"])
        self.server.requests.append(model)
        way, options = self.server.way(model)
        if "arrived" in options:
            options["arrived"].set()
        body = _answer(self.path, model, f"{way} answer")
        if way in ("drip", "hold"):
            body = body[:-1] + b" " * 100_000 + b"}"  # more than the drip ever sends
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        try:
            if way == "fast":
                self.wfile.write(body)
            elif way == "slow":
                pieces, gap = int(options["pieces"]), options["gap"]
                size = -(-len(body) // pieces)
                for start in range(0, len(body), size):
                    time.sleep(gap)
                    self.wfile.write(body[start : start + size])
                    self.wfile.flush()
            elif way == "hold":
                sent = 0
                while not options["gate"].wait(0.3) and sent < len(body) - 8:
                    self.wfile.write(body[sent : sent + 8])
                    self.wfile.flush()
                    sent += 8
                self.wfile.write(body[sent:])
            else:
                ends = time.monotonic() + DRIP_SECONDS
                for start in range(0, len(body), 8):
                    if time.monotonic() > ends:
                        break
                    self.wfile.write(body[start : start + 8])
                    self.wfile.flush()
                    time.sleep(0.3)
        except OSError:  # the client stopped reading
            self.server.dripped.set()
            self.close_connection = True


@pytest.fixture(scope="module")
def server() -> Iterator[DrippingProvider]:
    with DrippingProvider() as provider:
        yield provider


@pytest.fixture
def provider(server: DrippingProvider) -> Iterator[DrippingProvider]:
    server.scripts.clear()
    server.requests.clear()
    server.dripped.clear()
    yield server
    server.scripts.clear()


POLICY = """
policyroute: 1
name: sync-deadline
models:
  a:
    model: {model_a}
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: {model_b}
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: memory, lease: 300s}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes:
  - name: default
    to: {to}
defaults:
  max_tokens: 64
  timeout: 1s
  retry: {retry}
"""

WIRES = {
    "openai": ("openai/drip-a", "openai/drip-b", "/v1"),
    "anthropic": ("anthropic/claude-drip-a", "anthropic/claude-drip-b", ""),
}


def _policy(
    workdir: Path,
    provider: DrippingProvider,
    *,
    wire: str = "openai",
    to: str = "a",
    retry: str = "{attempts: 0}",
) -> Path:
    model_a, model_b, suffix = WIRES[wire]
    path = workdir / "policy.yaml"
    path.write_text(
        POLICY.format(
            model_a=model_a, model_b=model_b, base=provider.base + suffix, to=to, retry=retry
        )
    )
    return path


def _served(model: str) -> str:
    return model.partition("/")[2]


def _call(policy: Path, mode: str) -> str:
    if mode == "completion":
        response = policyroute.completion(policy=policy, messages=MESSAGES)
        return str(response.choices[0].message.content)
    message = ChatPolicyRoute(policy=policy).invoke([HumanMessage(MESSAGES[0]["content"])])
    return str(message.content)


def _prompt_cost(model: str) -> Decimal:
    tokens = count_input_tokens(model, MESSAGES, None)
    return (tokens * INPUT_RATE).quantize(Decimal("1e-6"))


def _assert_cut_and_billed(attempt: dict[str, Any], model: str) -> None:
    assert (attempt["status"], attempt["error_class"]) == ("error", "timeout")
    assert (attempt["provider_billed"], attempt["usage_estimated"]) == (True, True)
    assert Decimal(attempt["cost"]) == _prompt_cost(model)


def _reserved(attempt: dict[str, Any]) -> Decimal:
    (budget,) = attempt["budgets"]
    return Decimal(budget["reserved"])


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", MODES)
def test_an_answer_dripping_past_the_timeout_ends_the_call_as_a_timeout(
    provider: DrippingProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, provider, wire=wire)
    model = WIRES[wire][0]
    _call(policy, mode)  # litellm's first-use imports are not this test's subject
    provider.script(_served(model), ("drip", {}))

    with pytest.raises(AllCandidatesFailedError, match="request timeout of 1s") as info:
        _call(policy, mode)

    (error,) = info.value.errors
    assert isinstance(error, ProviderTimeoutError)
    assert (info.value.error_class, error.deployment) == ("timeout", "a")
    warm, attempt = receipts(workdir, "attempt")
    assert warm["status"] == "ok"
    _assert_cut_and_billed(attempt, model)
    assert _reserved(attempt) == 0
    _, call = receipts(workdir, "call")
    assert (call["status"], call["attempts"]) == ("error", 1)
    assert provider.dripped.wait(5)  # the connection was dropped, not left dripping


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", MODES)
def test_a_call_cut_at_its_deadline_falls_over_to_the_next_deployment(
    provider: DrippingProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, provider, wire=wire, to="[a, b]")
    model_a = WIRES[wire][0]
    provider.script(_served(model_a), ("drip", {}))

    assert _call(policy, mode) == "fast answer"

    cut, answered = receipts(workdir, "attempt")
    assert (cut["deployment"], answered["deployment"]) == ("a", "b")
    _assert_cut_and_billed(cut, model_a)
    assert (answered["status"], answered["provider_billed"]) == ("ok", True)
    assert _reserved(answered) == 0
    (call,) = receipts(workdir, "call")
    assert (call["status"], call["attempts"]) == ("ok", 2)


def test_a_retry_of_the_same_deployment_after_a_cut_is_answered(
    provider: DrippingProvider, workdir: Path
) -> None:
    retry = "{attempts: 2, backoff: {initial: 0s, jitter: false}}"
    policy = _policy(workdir, provider, retry=retry)
    provider.script("drip-a", ("drip", {}), ("drip", {}), ("fast", {}))

    assert _call(policy, "completion") == "fast answer"

    attempts = receipts(workdir, "attempt")
    assert [a["status"] for a in attempts] == ["error", "error", "ok"]
    for attempt in attempts[:2]:
        _assert_cut_and_billed(attempt, "openai/drip-a")
    assert provider.requests == ["drip-a"] * 3


@pytest.mark.parametrize("mode", MODES)
def test_an_answer_read_to_its_end_within_the_grace_is_kept(
    provider: DrippingProvider, workdir: Path, mode: str
) -> None:
    # Past the 1s timeout (no single read waits that long), well before timeout plus grace.
    policy = _policy(workdir, provider)
    provider.script("drip-a", ("slow", {"pieces": 5, "gap": 0.25}))

    assert _call(policy, mode) == "slow answer"

    (attempt,) = receipts(workdir, "attempt")
    assert (attempt["status"], attempt["usage_estimated"]) == ("ok", False)
    assert _reserved(attempt) == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_fast_answer_is_unaffected(provider: DrippingProvider, workdir: Path, mode: str) -> None:
    policy = _policy(workdir, provider)

    for _ in range(3):
        assert _call(policy, mode) == "fast answer"

    assert [a["status"] for a in receipts(workdir, "attempt")] == ["ok"] * 3


def test_every_deployment_cut_at_its_deadline_fails_the_call_with_their_timeouts(
    provider: DrippingProvider, workdir: Path
) -> None:
    policy = _policy(workdir, provider, to="[a, b]")
    provider.script("drip-a", ("drip", {}))
    provider.script("drip-b", ("drip", {}))

    with pytest.raises(AllCandidatesFailedError) as info:
        _call(policy, "completion")

    assert [e.error_class for e in info.value.errors] == ["timeout", "timeout"]
    assert all(_reserved(a) == 0 for a in receipts(workdir, "attempt"))


def test_the_users_own_litellm_calls_on_the_same_client_are_not_cut(
    provider: DrippingProvider, workdir: Path
) -> None:
    policy = _policy(workdir, provider)
    _call(policy, "completion")  # hooks the client litellm caches for this base and key
    # Slower than timeout plus grace as a whole, no read waiting as long as the timeout.
    provider.script("drip-a", ("slow", {"pieces": 6, "gap": 0.45}))

    response = litellm.completion(
        model="openai/drip-a",
        messages=MESSAGES,
        api_base=provider.base + "/v1",
        api_key="sk-test",
        timeout=1,
        max_retries=0,
    )

    assert response.choices[0].message.content == "slow answer"


@pytest.mark.parametrize("wire", sorted(WIRES))
def test_a_deadline_passing_as_the_answer_ends_cuts_no_later_request_on_its_connection(
    provider: DrippingProvider, workdir: Path, wire: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline passes while the answer's last byte is on its way: the cut has seen the
    # response unread and is about to shut its socket down when the byte comes in. Once the
    # answer is read its connection may serve the next request (here another thread's): the
    # cut must not end that one.
    policy = _policy(workdir, provider, wire=wire)
    model = _served(WIRES[wire][0])
    _call(policy, "completion")  # one pooled connection, litellm's first-use imports done
    last_byte, next_arrived, next_answer = threading.Event(), threading.Event(), threading.Event()
    provider.script(
        model,
        ("hold", {"gate": last_byte}),
        ("hold", {"gate": next_answer, "arrived": next_arrived}),
    )
    cutting = threading.Event()
    shutdown = socket.socket.shutdown

    def shutdown_once_the_next_request_is_in(sock: socket.socket, how: int) -> None:
        if threading.current_thread().name == "policyroute-sync-deadlines":
            cutting.set()
            next_arrived.wait(5)
        shutdown(sock, how)

    monkeypatch.setattr(socket.socket, "shutdown", shutdown_once_the_next_request_is_in)
    answers: dict[str, str | BaseException] = {}

    def answer(name: str) -> None:
        try:
            answers[name] = _call(policy, "completion")
        except Exception as exc:
            answers[name] = exc

    first = threading.Thread(target=answer, args=("first",))
    first.start()
    assert cutting.wait(10)
    last_byte.set()
    time.sleep(0.2)  # the first answer is read and, unguarded, its connection pooled again
    following = threading.Thread(target=answer, args=("next",))
    following.start()
    first.join(10)
    next_answer.set()
    following.join(10)

    assert answers == {"first": "hold answer", "next": "hold answer"}
    attempts = receipts(workdir, "attempt")
    assert [a["status"] for a in attempts] == ["ok"] * 3
    assert _reserved(attempts[-1]) == 0  # the two calls overlap: the last one ends alone


def _wait_for_child(pid: int, seconds: float) -> int:
    """The exit status of the child ``pid``, killed if it has not ended within ``seconds``."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -signal.SIGKILL


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_making_sync_calls_cuts_nothing_of_its_parent(
    provider: DrippingProvider, workdir: Path
) -> None:
    # The child is forked while a call of the parent is being answered. The child shares that
    # call's socket but not its thread: the call's deadline is the parent's, and must not pass
    # in the child, whose own sync call starts a watcher of its own. Past it, the parent's
    # connection serves the parent's next call.
    policy = _policy(workdir, provider)
    other = workdir / "other"
    other.mkdir()
    child_policy = _policy(other, provider, to="b")  # the same pooled client, another script
    _call(policy, "completion")
    in_flight, answered, next_answer = threading.Event(), threading.Event(), threading.Event()
    provider.script(
        "drip-a",
        ("hold", {"gate": answered, "arrived": in_flight}),
        ("hold", {"gate": next_answer}),
    )
    answers: list[str | BaseException] = []

    def two_calls() -> None:
        for _ in range(2):
            try:
                answers.append(_call(policy, "completion"))
            except Exception as exc:
                answers.append(exc)

    started = time.monotonic()  # the first call's deadline is at started + 2s, or later
    caller = threading.Thread(target=two_calls)
    caller.start()
    assert in_flight.wait(10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # the child: one sync call, then past the parent's first deadline
        code = 1
        try:
            code = 0 if _call(child_policy, "completion") == "fast answer" else 2
            time.sleep(max(0.0, started + 2.6 - time.monotonic()))
        finally:
            os._exit(code)
    time.sleep(1.5)  # the next call's deadline is then well past the first's
    answered.set()
    assert _wait_for_child(pid, 10) == 0
    next_answer.set()
    caller.join(10)

    assert answers == ["hold answer", "hold answer"]


@pytest.mark.parametrize("mode", ["completion", "acompletion"])
def test_a_timeout_given_as_an_httpx_timeout_bounds_the_whole_answer(
    provider: DrippingProvider, workdir: Path, mode: str
) -> None:
    # litellm takes an httpx.Timeout too: its longest limit is the call's, as a number is.
    policy = _policy(workdir, provider)
    _call(policy, "completion")
    provider.script("drip-a", ("drip", {}))
    timeout = httpx.Timeout(1.0, connect=0.5)

    def call() -> Any:
        if mode == "completion":
            return policyroute.completion(policy=policy, messages=MESSAGES, timeout=timeout)
        return arun(policyroute.acompletion(policy=policy, messages=MESSAGES, timeout=timeout))

    with pytest.raises(AllCandidatesFailedError) as info:
        call()

    assert info.value.error_class == "timeout"
    _, attempt = receipts(workdir, "attempt")
    _assert_cut_and_billed(attempt, "openai/drip-a")
    assert _reserved(attempt) == 0
