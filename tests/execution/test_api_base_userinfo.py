"""A deployment whose ``api_base`` carries credentials (``http://user:pw@host/v1``, a basic-auth
proxy in front of the provider) is reached the same way on every path.

httpx turns the URL's user info into ``Authorization: Basic``; litellm's aiohttp transport
(the async path) handed aiohttp that header together with the URL still holding the user info,
which aiohttp refuses, so async calls never left the process. Each call here goes through a
public entry point to the fake provider, whose recorded headers show what a proxy receives.
"""

from __future__ import annotations

import base64
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from exec_support import arun

import policyroute
from policyroute import ChatPolicyRoute, api
from policyroute.errors import ProviderError
from policyroute.execution.url_credentials import basic_authorization, credentials_as_header
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

KEY = "sk-userinfo-key-0123456789"
PASSWORD = "PW-userinfo-4711"
BASIC = "Basic " + base64.b64encode(f"proxyuser:{PASSWORD}".encode()).decode()
MESSAGES = [{"role": "user", "content": "hello there"}]
TEXT = "through the proxy"

# One deployment and no retry: a call that cannot reach it fails instead of hiding elsewhere.
POLICY = """
policyroute: 1
name: userinfo-{api}
models:
  gated:
    model: {api}/fake-gated
    api_base: {base}
    api_key: ${{PR_USERINFO_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: main
    to: gated
store: {{backend: memory}}
receipts: {{sink: jsonl, path: {receipts}}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""

Api = Literal["openai", "anthropic"]
APIS: tuple[Api, ...] = ("openai", "anthropic")


def _gated_base(fp: FakeProvider, api_name: Api, userinfo: str = f"proxyuser:{PASSWORD}") -> str:
    base = fp.openai_base if api_name == "openai" else fp.anthropic_base
    return base.replace("http://", f"http://{userinfo}@", 1)


@pytest.fixture
def make_policy(
    fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., str]]:
    """A policy text whose one deployment reaches the fake provider through a URL with
    credentials; the fake provider answers ``TEXT``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_USERINFO_KEY", KEY)
    fp.set_default("fake-gated", Reply(text=TEXT, usage=Usage(prompt=5, completion=3)))
    api.clear_cache()

    def make(api_name: Api, userinfo: str = f"proxyuser:{PASSWORD}") -> str:
        base = _gated_base(fp, api_name, userinfo)
        return POLICY.format(api=api_name, base=base, receipts=tmp_path / "receipts")

    yield make
    api.clear_cache()


def _assert_sent_through_proxy(fp: FakeProvider, api_name: Api, basic: str = BASIC) -> None:
    """One request reached the provider, with the proxy's credentials as a Basic header."""
    assert len(fp.requests) == 1, [r.source for r in fp.requests]
    request = fp.requests[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers.get("authorization") == basic
    if api_name == "anthropic":
        assert request.path == "/v1/messages"
        assert headers.get("x-api-key") == KEY
    else:
        # The key travels as "Authorization: Bearer", the header the URL's credentials take
        # over (as httpx does on the sync path): the proxy receives no key of its own.
        assert request.path == "/v1/chat/completions"
        assert KEY not in repr(request.headers)
    assert PASSWORD not in request.path


def _text(chunks: list[Any]) -> str:
    """The streamed text, after checking that no chunk carries the password: litellm's
    chunks keep the URL they were sent to in their ``_hidden_params``."""
    for chunk in chunks:
        assert PASSWORD not in repr(getattr(chunk, "_hidden_params", None))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ------------------------------------------------------------------ policyroute.completion


@pytest.mark.parametrize("api_name", APIS)
def test_completion(fp: FakeProvider, make_policy: Callable[..., str], api_name: Api) -> None:
    answer = policyroute.completion(policy=make_policy(api_name), messages=MESSAGES)
    assert answer.choices[0].message.content == TEXT
    _assert_sent_through_proxy(fp, api_name)


@pytest.mark.parametrize("api_name", APIS)
def test_streamed_completion(
    fp: FakeProvider, make_policy: Callable[..., str], api_name: Api
) -> None:
    stream = policyroute.completion(policy=make_policy(api_name), messages=MESSAGES, stream=True)
    assert _text(list(stream)) == TEXT
    _assert_sent_through_proxy(fp, api_name)


@pytest.mark.parametrize("api_name", APIS)
def test_acompletion(fp: FakeProvider, make_policy: Callable[..., str], api_name: Api) -> None:
    answer = arun(policyroute.acompletion(policy=make_policy(api_name), messages=MESSAGES))
    assert answer.choices[0].message.content == TEXT
    assert answer._hidden_params["policyroute"]["deployment"] == "gated"
    _assert_sent_through_proxy(fp, api_name)


@pytest.mark.parametrize("api_name", APIS)
def test_streamed_acompletion(
    fp: FakeProvider, make_policy: Callable[..., str], api_name: Api
) -> None:
    async def main() -> str:
        stream = await policyroute.acompletion(
            policy=make_policy(api_name), messages=MESSAGES, stream=True
        )
        return _text([chunk async for chunk in stream])

    assert arun(main()) == TEXT
    _assert_sent_through_proxy(fp, api_name)


# ------------------------------------------------------------------ ChatPolicyRoute


@pytest.mark.parametrize("api_name", APIS)
@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
def test_chat_policy_route(
    fp: FakeProvider, make_policy: Callable[..., str], api_name: Api, mode: str
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(api_name))
    if mode == "invoke":
        text = llm.invoke("hello there").content
    elif mode == "ainvoke":
        text = arun(llm.ainvoke("hello there")).content
    elif mode == "stream":
        text = "".join(str(c.content) for c in llm.stream("hello there"))
    else:

        async def main() -> str:
            return "".join([str(c.content) async for c in llm.astream("hello there")])

        text = arun(main())
    assert text == TEXT
    _assert_sent_through_proxy(fp, api_name)


# ------------------------------------------------------------------ what the header holds


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("userinfo", "decoded"),
    [
        ("proxyuser:p%40ss%3Aword", "proxyuser:p@ss:word"),  # percent-decoded, as httpx does
        ("tokenonly", "tokenonly:"),  # a username alone
        ("j%C3%B6rg:pw", "jörg:pw"),  # UTF-8
    ],
)
def test_async_sends_what_the_sync_path_sends(
    fp: FakeProvider,
    make_policy: Callable[..., str],
    userinfo: str,
    decoded: str,
    streamed: bool,
) -> None:
    policy = make_policy("openai", userinfo)
    expected = "Basic " + base64.b64encode(decoded.encode()).decode()
    answer = policyroute.completion(policy=policy, messages=MESSAGES, stream=streamed)
    if streamed:
        list(answer)
    sync_headers = fp.requests[0].headers
    fp.clear()

    async def main() -> None:
        answer = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=streamed)
        if streamed:
            [chunk async for chunk in answer]

    arun(main())
    assert sync_headers.get("authorization") == expected
    assert fp.requests[0].headers.get("authorization") == expected


def test_an_authorization_header_of_the_policy_gives_way_to_the_url_credentials(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    # httpx replaces any Authorization header with the URL's credentials on the sync path;
    # the async path does the same instead of sending two. (A call may not pass a credential
    # header; the policy's model may set one in its params.)
    headers = "params: {extra_headers: {authorization: Bearer policy-token, X-Trace: t-1}}"
    policy = make_policy("anthropic").replace("    price:", f"    {headers}\n    price:")
    llm = ChatPolicyRoute(policy=policy)
    llm.invoke("hello there")
    arun(llm.ainvoke("hello there"))
    assert [r.headers.get("authorization") for r in fp.requests] == [BASIC, BASIC]
    assert [r.headers.get("x-trace") for r in fp.requests] == ["t-1", "t-1"]


# ------------------------------------------------------------------ secrets stay out


@pytest.mark.parametrize("streamed", [False, True])
def test_async_hidden_api_base_shows_the_deployment_without_its_password(
    fp: FakeProvider, make_policy: Callable[..., str], streamed: bool
) -> None:
    async def main() -> Any:
        answer = await policyroute.acompletion(
            policy=make_policy("openai"), messages=MESSAGES, stream=streamed
        )
        if streamed:
            [chunk async for chunk in answer]
        return answer

    hidden = arun(main())._hidden_params
    gated = _gated_base(fp, "openai", "proxyuser:[REDACTED]")
    assert hidden["api_base"].startswith(gated)
    assert PASSWORD not in repr(hidden)
    assert BASIC.split()[1] not in repr(hidden)


@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_provider_echoing_the_credentials_is_scrubbed(
    fp: FakeProvider, make_policy: Callable[..., str], tmp_path: Path, run: str
) -> None:
    token = BASIC.split()[1]
    echo = f"proxy refused credentials {token} ({BASIC}) at {_gated_base(fp, 'openai')}"
    fp.script("fake-gated", Fault.status(401, message=echo))
    policy = make_policy("openai")

    def call() -> Any:
        if run == "sync":
            return policyroute.completion(policy=policy, messages=MESSAGES)
        return arun(policyroute.acompletion(policy=policy, messages=MESSAGES))

    with pytest.raises(ProviderError) as caught:
        call()
    assert caught.value.error_class == "authentication"
    assert len(fp.requests) == 1  # the provider was reached, and its echo is what is checked
    # The messages of the whole chain, litellm's and the SDK's under policyroute's.
    shown = [
        line
        for line in traceback.format_exception(caught.value)
        if not line.startswith("    ")  # the caller's source lines
    ]
    receipts = (tmp_path / "receipts").read_text()
    for text in (*shown, receipts):
        assert PASSWORD not in text
        assert token not in text
    assert '"status":"error"' in receipts  # the failed attempt's receipt was checked


# ------------------------------------------------------------------ the conversion itself


def test_params_without_user_info_are_passed_as_they_are() -> None:
    params = {"api_base": "http://gw.example/v1?x=a@b", "extra_headers": {"A": "1"}}
    assert credentials_as_header(params) is params
    assert credentials_as_header({"model": "m"}) == {"model": "m"}


def test_only_the_user_info_leaves_the_url() -> None:
    moved = credentials_as_header(
        {"api_base": "https://u:p@w@gw.example:8443/v1/@x?q=1#f", "api_key": "k", "headers": {}}
    )
    assert moved["api_base"] == "https://gw.example:8443/v1/@x?q=1#f"
    # The last "@" of the authority ends the user info, as httpx reads it.
    assert moved["extra_headers"] == {"Authorization": basic_authorization("https://u:p@w@h")}
    assert base64.b64decode(moved["extra_headers"]["Authorization"].split()[1]) == b"u:p@w"
    assert moved["api_key"] == "k"
    assert moved["headers"] == {}


def test_an_empty_user_info_sends_no_credentials() -> None:
    assert credentials_as_header({"api_base": "http://:@gw/v1"}) == {"api_base": "http://gw/v1"}
    assert basic_authorization("http://@gw/v1") is None
