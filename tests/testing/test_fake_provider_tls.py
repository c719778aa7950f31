"""The fake provider served over HTTPS: ``FakeProvider(tls=...)`` and ``LocalTLS``.

A client that trusts the test's certificate authority gets the same answers and faults as over
plain HTTP; one that does not (the system's authorities, plain HTTP) is refused.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Iterator

import httpx
import pytest

from policyroute.testing import FakeProvider, Fault, LocalTLS, Reply

pytestmark = pytest.mark.timeout(30)

BODY = {"model": "m", "messages": [{"role": "user", "content": "a b"}]}
TIMEOUT = httpx.Timeout(5.0)


@pytest.fixture(scope="module")
def tls() -> LocalTLS:
    return LocalTLS()


@pytest.fixture(scope="module")
def provider(tls: LocalTLS) -> Iterator[FakeProvider]:
    with FakeProvider(tls=tls) as fp:
        yield fp


@pytest.fixture
def client(tls: LocalTLS) -> Iterator[httpx.Client]:
    with httpx.Client(verify=tls.client_context(), timeout=TIMEOUT) as http:
        yield http


def _chat(http: httpx.Client, fp: FakeProvider, **extra: object) -> httpx.Response:
    return http.post(fp.openai_base + "/chat/completions", json={**BODY, **extra})


def test_the_provider_answers_over_https_a_client_that_trusts_its_authority(
    fp: FakeProvider, client: httpx.Client
) -> None:
    fp.script("m", Reply(text="pong"))

    response = _chat(client, fp)

    assert fp.base_url == f"https://127.0.0.1:{fp.port}"
    assert response.json()["choices"][0]["message"]["content"] == "pong"
    assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None
    assert [r.model for r in fp.requests] == ["m"]


def test_a_stream_arrives_over_https(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("m", Reply(text="one two three"))

    with client.stream(
        "POST", fp.openai_base + "/chat/completions", json={**BODY, "stream": True}
    ) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "data: [DONE]"
    assert len(events) > 3


def test_a_client_that_does_not_trust_the_authority_is_refused(fp: FakeProvider) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(fp.openai_base + "/chat/completions", json=BODY, timeout=TIMEOUT)
    assert fp.requests == []


def test_plain_http_to_the_tls_port_gets_no_answer(fp: FakeProvider) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"http://127.0.0.1:{fp.port}/v1/chat/completions", json=BODY, timeout=TIMEOUT)
    assert fp.requests == []
    fp.wait_for_connections(0)


def test_a_reset_connection_over_https(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("m", Fault.connection_reset())

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        _chat(client, fp)

    assert _chat(client, fp).status_code == 200  # the client's pool recovers
    assert fp.attempts("m") == 2


def test_a_body_cut_midway_over_https(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("m", Fault.stream_cut(after=0))

    with pytest.raises(httpx.RemoteProtocolError):
        _chat(client, fp)

    assert _chat(client, fp).status_code == 200


def test_a_provider_that_never_answers_lets_go_of_a_client_that_gave_up(
    fp: FakeProvider, tls: LocalTLS
) -> None:
    fp.script("m", Fault.no_response(timeout=60))

    http = httpx.Client(verify=tls.client_context(), timeout=httpx.Timeout(0.5))
    with http, pytest.raises(httpx.ReadTimeout):
        _chat(http, fp)

    fp.wait_for_connections(0)


def test_one_authority_serves_several_providers(tls: LocalTLS, client: httpx.Client) -> None:
    with FakeProvider(tls=tls) as first, FakeProvider(tls=tls) as second:
        codes = [_chat(client, fp).status_code for fp in (first, second)]
        assert (first.tls, second.tls) == (tls, tls)

    assert codes == [200, 200]


def test_tls_true_makes_an_authority_for_the_provider() -> None:
    with FakeProvider(tls=True) as fp:
        assert fp.tls is not None
        with httpx.Client(verify=fp.tls.client_context(), timeout=TIMEOUT) as http:
            assert http.get(fp.base_url + "/health").json() == {"status": "ok"}


def test_a_server_context_of_the_callers_own_is_used_as_it_is(
    tls: LocalTLS, client: httpx.Client
) -> None:
    with FakeProvider(tls=tls.server_context()) as fp:
        assert fp.tls is None
        assert fp.base_url.startswith("https://")
        assert _chat(client, fp).status_code == 200


def test_an_async_client_gets_answers_over_https(tls: LocalTLS, fp: FakeProvider) -> None:
    async def ask() -> str:
        async with httpx.AsyncClient(verify=tls.client_context(), timeout=TIMEOUT) as http:
            response = await http.post(fp.openai_base + "/chat/completions", json=BODY)
            return str(response.json()["choices"][0]["message"]["content"])

    fp.script("m", Reply(text="async pong"))
    assert asyncio.run(ask()) == "async pong"


@pytest.mark.parametrize("tls", [False, None])
def test_without_tls_the_provider_serves_plain_http(tls: bool | None) -> None:
    provider = FakeProvider(tls=tls)
    assert provider.tls is None
    with provider as fp:
        assert fp.base_url.startswith("http://")


@pytest.mark.parametrize("tls", ["yes", 1.0, "cert.pem"])
def test_a_tls_that_is_none_of_the_kinds_is_refused(tls: object) -> None:
    with pytest.raises(
        TypeError, match=r"FakeProvider tls must be True, False \(or None\), a policyroute"
    ):
        FakeProvider(tls=tls)  # type: ignore[arg-type]


@pytest.mark.parametrize("hosts", ["localhost", (), ("localhost", 1)])
def test_local_tls_refuses_hosts_that_are_not_a_list_of_names(hosts: object) -> None:
    with pytest.raises(TypeError, match="non-empty sequence of host names"):
        LocalTLS(hosts)  # type: ignore[arg-type]


def test_local_tls_issues_its_certificate_for_the_hosts_given() -> None:
    tls = LocalTLS(hosts=("localhost",))
    with FakeProvider(host="127.0.0.1", tls=tls) as fp:
        by_name = fp.base_url.replace("127.0.0.1", "localhost")
        with httpx.Client(verify=tls.client_context(), timeout=TIMEOUT) as http:
            assert http.get(by_name + "/health").status_code == 200
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                http.get(fp.base_url + "/health")  # not issued for 127.0.0.1


def test_local_tls_contexts_verify_peers() -> None:
    tls = LocalTLS()
    client = tls.client_context()
    assert (client.verify_mode, client.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert tls.server_context().verify_mode == ssl.CERT_NONE  # no client certificate asked
    with open(tls.ca_file, "rb") as pem:
        assert pem.read() == tls.ca_pem


def test_local_tls_without_trustme_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)

    with pytest.raises(ImportError, match=r"pip install 'policyroute\[testing\]'"):
        LocalTLS()
