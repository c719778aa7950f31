"""ChatPolicyRoute from the environment, and through LangChain's dumpd/dumps and load/loads.

What is serialised names the policy (its path or its text, keys as ``${VAR}`` references),
never a secret; what cannot be rebuilt is written as ``not_implemented`` and refused by load.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps, load, loads

from policyroute.errors import PolicyError, PolicyValidationError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy, load_policy_text
from policyroute.testing import FakeProvider, Reply

ENV = "POLICYROUTE_POLICY"

# load() and loads() are beta APIs of langchain-core; their warning says nothing about this code.
pytestmark = pytest.mark.filterwarnings(r"ignore:The function `loads?` is in beta")


def _revive(data: Any, **options: Any) -> ChatPolicyRoute:
    model = load(
        data, valid_namespaces=["policyroute"], allowed_objects=[ChatPolicyRoute], **options
    )
    assert isinstance(model, ChatPolicyRoute)
    return model


@pytest.fixture
def policy_file(tmp_path: Path, make_policy: Callable[..., str]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(make_policy(name="from-file"), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_env_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


# --------------------------------------------------------------------------- environment


def test_policy_path_from_the_environment(
    policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"  {policy_file}\n")
    llm = ChatPolicyRoute(temperature=0.3)
    assert llm.policy == str(policy_file)
    assert llm.compiled_policy.name == "from-file"
    assert llm.compiled_policy.source == str(policy_file)
    assert llm.temperature == 0.3


def test_policy_text_from_the_environment(
    make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, make_policy(name="from-env-text"))
    assert ChatPolicyRoute().compiled_policy.name == "from-env-text"


def test_an_explicit_none_reads_the_environment(
    policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(policy_file))
    assert ChatPolicyRoute(policy=None).policy == str(policy_file)


def test_a_given_policy_wins_over_the_environment(
    make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "/nowhere/policy.yaml")
    assert ChatPolicyRoute(policy=make_policy(name="given")).compiled_policy.name == "given"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_policy_anywhere_says_what_to_set(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(
        PolicyError,
        match=r"set the environment variable POLICYROUTE_POLICY to a policy file's path or its"
        r" YAML text$",
    ):
        ChatPolicyRoute()


def test_a_broken_policy_from_the_environment_fails_with_its_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("policyroute: 1\nname: broken\nmodels: {}\nroutes:\n  - to: nowhere\n")
    monkeypatch.setenv(ENV, str(broken))
    with pytest.raises(PolicyValidationError) as caught:
        ChatPolicyRoute()
    assert caught.value.source == str(broken)
    assert caught.value.diagnostics
    assert all(d.file == str(broken) for d in caught.value.diagnostics)


def test_a_missing_policy_file_from_the_environment_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.yaml"
    monkeypatch.setenv(ENV, str(missing))
    with pytest.raises(PolicyValidationError, match="cannot read the policy file") as caught:
        ChatPolicyRoute()
    assert [d.code for d in caught.value.diagnostics] == ["PR001"]


# --------------------------------------------------------------------------- round trips


def test_a_policy_path_round_trips_and_the_loaded_model_answers(
    policy_file: Path, fp: FakeProvider
) -> None:
    llm = ChatPolicyRoute(policy=policy_file, model="big", temperature=0.2, max_tokens=30)
    data = dumpd(llm)
    assert data["id"] == ["policyroute", "langchain", "ChatPolicyRoute"]
    assert data["kwargs"] == {
        "policy": str(policy_file),
        "model": "big",
        "temperature": 0.2,
        "max_tokens": 30,
    }
    again = _revive(data)
    assert again.asdict() == llm.asdict()
    fp.script("fake-strong", Reply(text="from the loaded model"))
    message = again.invoke("hello")
    assert message.content == "from the loaded model"
    assert message.response_metadata["policyroute"]["route"] == "requested"
    (request,) = fp.requests
    assert isinstance(request.body, dict)
    assert request.body["temperature"] == 0.2
    assert request.body["max_tokens"] == 30


def test_policy_text_round_trips_through_json(
    make_policy: Callable[..., str], fp: FakeProvider
) -> None:
    text = make_policy(name="as-text")
    llm = ChatPolicyRoute(policy=text, stop=["END"], streaming=True)
    blob = dumps(llm)
    assert json.loads(blob)["kwargs"]["policy"] == text
    again = loads(blob, valid_namespaces=["policyroute"], allowed_objects=[ChatPolicyRoute])
    assert isinstance(again, ChatPolicyRoute)
    assert again.asdict() == llm.asdict()
    assert again.streaming
    fp.script("fake-fast", Reply(text="streamed"))
    assert again.invoke("hi").content == "streamed"


def test_a_compiled_policy_loaded_from_a_file_serialises_as_its_path(policy_file: Path) -> None:
    llm = ChatPolicyRoute(policy=load_policy(policy_file))
    assert dumpd(llm)["kwargs"]["policy"] == str(policy_file)
    assert _revive(dumpd(llm)).asdict() == llm.asdict()


def test_a_changed_policy_file_changes_the_cache_key(
    tmp_path: Path, make_policy: Callable[..., str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(make_policy(name="before"), encoding="utf-8")
    before = ChatPolicyRoute(policy=path)._get_llm_string()
    path.write_text(make_policy(name="after"), encoding="utf-8")
    after = ChatPolicyRoute(policy=path)._get_llm_string()
    assert before != after
    assert ChatPolicyRoute(policy=path)._get_llm_string() == after


def test_tracers_receive_the_serialised_model(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    class Capture(BaseCallbackHandler):
        serialized: dict[str, Any] | None = None

        def on_chat_model_start(self, serialized: dict[str, Any], *args: Any, **kw: Any) -> None:
            self.serialized = serialized

    handler = Capture()
    llm.invoke("hi", config={"callbacks": [handler]})
    assert handler.serialized is not None
    assert handler.serialized["id"] == ["policyroute", "langchain", "ChatPolicyRoute"]
    assert handler.serialized["kwargs"]["accounting"]["type"] == "not_implemented"


# --------------------------------------------------------------------------- not serialisable


def _not_implemented(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict)
    assert value["lc"] == 1
    assert value["type"] == "not_implemented"
    return value


def test_an_accounting_object_is_not_serialised(make_policy: Callable[..., str]) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    entry = _not_implemented(dumpd(llm)["kwargs"]["accounting"])
    assert entry["id"] == ["policyroute", "execution", "hooks", "NullAccounting"]
    assert "ignore_unserializable_fields=True" in entry["repr"]
    with pytest.raises(NotImplementedError, match="accounting objects hold live state"):
        _revive(dumpd(llm))
    again = _revive(dumpd(llm), ignore_unserializable_fields=True)
    assert again.accounting is None
    assert again.asdict() == llm.asdict()


def test_a_compiled_policy_from_text_is_not_serialised(
    make_policy: Callable[..., str], policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = load_policy_text(make_policy(name="in-memory"))
    entry = _not_implemented(dumpd(ChatPolicyRoute(policy=compiled))["kwargs"]["policy"])
    assert entry["id"] == ["policyroute", "policy", "compile", "CompiledPolicy"]
    assert "'in-memory'" in entry["repr"]
    assert "was not loaded from a file" in entry["repr"]
    data = dumpd(ChatPolicyRoute(policy=compiled))
    with pytest.raises(NotImplementedError, match="not loaded from a file"):
        _revive(data)
    # Told to drop it, load rebuilds the model on the policy the environment names.
    monkeypatch.setenv(ENV, str(policy_file))
    again = _revive(data, ignore_unserializable_fields=True)
    assert again.compiled_policy.name == "from-file"


# --------------------------------------------------------------------------- secrets


def test_no_key_value_is_serialised(
    make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-live-0123456789")
    llm = ChatPolicyRoute(policy=make_policy())
    assert llm.compiled_policy.spec.models["fast"].api_key is not None
    assert llm.compiled_policy.spec.models["fast"].api_key.reveal() == "sk-live-0123456789"
    blob = dumps(llm)
    assert "sk-live-0123456789" not in blob
    assert "${POLICYROUTE_TEST_KEY}" in blob


_STORE = """budgets:
  - {name: all, limit_usd: 10, window: day}
store:
  backend: redis
  url: URL
"""


@pytest.mark.parametrize(
    ("extra", "secret", "where"),
    [
        (
            _STORE.replace("URL", "redis://:hunter2-pass@localhost:6379/0"),
            "hunter2-pass",
            "store.url",
        ),
        (
            "",
            "Bearer tok-9876543210",
            "models.fast.params.extra_headers.Authorization",
        ),
        ("description: key sk-live-0123456789 for reference\n", "sk-live-0123456789", "api_key"),
    ],
    ids=["store-url-password", "credential-header", "referenced-value-in-text"],
)
def test_policy_text_holding_a_secret_is_not_serialised(
    extra: str,
    secret: str,
    where: str,
    make_policy: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-live-0123456789")
    text = make_policy(extra=extra)
    if "Authorization" in where:
        text = text.replace(
            "    max_output_tokens: 4096\n",
            "    max_output_tokens: 4096\n"
            "    params: {extra_headers: {Authorization: 'Bearer tok-9876543210'}}\n",
            1,
        )
    llm = ChatPolicyRoute(policy=text, accounting=NullAccounting())
    assert secret in text
    blob = dumps(llm)
    assert secret not in blob
    entry = _not_implemented(json.loads(blob)["kwargs"]["policy"])
    assert where in entry["repr"]
    assert "${ENV_VAR}" in entry["repr"]


def test_harmless_headers_and_env_passwords_keep_the_text(
    make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-env-only")
    extra = _STORE.replace("URL", "redis://:${REDIS_PASSWORD}@localhost:6379/0")
    text = make_policy(extra=extra).replace(
        "    max_output_tokens: 4096\n",
        "    max_output_tokens: 4096\n    params: {extra_headers: {anthropic-beta: tools-1}}\n",
        1,
    )
    llm = ChatPolicyRoute(policy=text, accounting=NullAccounting())
    policy = dumpd(llm)["kwargs"]["policy"]
    assert policy == text
    assert "from-the-env-only" not in dumps(llm)


def _withheld_for(text: str, secret: str) -> str:
    """The ``repr`` of the not_implemented entry ``text`` is written as; checks ``secret`` is in
    ``text`` and nowhere in the serialised model."""
    assert secret in text
    blob = dumps(ChatPolicyRoute(policy=text, accounting=NullAccounting()))
    assert secret not in blob
    entry = _not_implemented(json.loads(blob)["kwargs"]["policy"])
    assert secret not in entry["repr"]
    assert "${ENV_VAR}" in entry["repr"]
    return str(entry["repr"])


def _on_fast(text: str, line: str) -> str:
    """``text`` with ``line`` added to the model ``fast``."""
    anchor = "    max_output_tokens: 4096\n"
    return text.replace(anchor, f"{anchor}    {line}\n", 1)


@pytest.mark.parametrize(
    ("api_base", "secret", "problem"),
    [
        ("https://api.example.com/v1?key=AIzaSECRET999", "AIzaSECRET999", "has a query string"),
        ("https://ghp_TOKEN@host/v1", "ghp_TOKEN", "has user info"),
        ("'https://user:p%40ss%2Fword@host/v1'", "p%40ss%2Fword", "has user info"),
        ("https://host/v1#access_token=tok-55", "tok-55", "has a fragment"),
    ],
    ids=["query-key", "user-name-token", "password-with-slash", "fragment-token"],
)
def test_an_api_base_with_literal_credentials_is_not_serialised(
    api_base: str, secret: str, problem: str, make_policy: Callable[..., str], fp: FakeProvider
) -> None:
    text = make_policy().replace(f"api_base: {fp.openai_base}", f"api_base: {api_base}", 1)
    assert f"models.fast.api_base {problem}" in _withheld_for(text, secret)


def test_an_api_base_whose_password_holds_a_bare_slash_is_refused_without_showing_it(
    make_policy: Callable[..., str], fp: FakeProvider
) -> None:
    # An unencoded '/' ends the URL's authority: httpx would read "p%40ss" as the port.
    text = make_policy().replace(
        f"api_base: {fp.openai_base}", "api_base: 'https://user:p%40ss/word@host/v1'", 1
    )
    with pytest.raises(PolicyValidationError) as caught:
        ChatPolicyRoute(policy=text, accounting=NullAccounting())
    assert [d.code for d in caught.value.diagnostics] == ["PR136"]
    assert "p%40ss" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "secret", "problem"),
    [
        ("redis://admin-9f3c@localhost:6379/0", "admin-9f3c", "has user info"),
        ("rediss://localhost:6379/0?password=hunter2", "hunter2", "has a query string"),
        ("redis://default-u7:${REDIS_PASSWORD}@localhost/0", "default-u7", "has user info"),
    ],
    ids=["user-name", "query-password", "literal-user-env-password"],
)
def test_a_store_url_with_literal_credentials_is_not_serialised(
    url: str,
    secret: str,
    problem: str,
    make_policy: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-env-only")
    text = make_policy(extra=_STORE.replace("URL", url))
    assert f"store.url {problem}" in _withheld_for(text, secret)


@pytest.mark.parametrize(
    ("header", "secret", "where"),
    [
        # YAML escapes: the text never holds the parsed value "Bearer sk-ABC".
        (r'Authorization: "Bearer sk-\x41BC"', r"sk-\x41BC", "Authorization"),
        ("X-Custom: sk-ant-api03-abcdef", "sk-ant-api03-abcdef", "X-Custom"),
        ("X-Upstream: 'Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz", "X-Upstream"),
    ],
    ids=["escaped-authorization", "key-under-a-plain-name", "basic-auth-under-a-plain-name"],
)
def test_a_literal_credential_header_is_not_serialised(
    header: str, secret: str, where: str, make_policy: Callable[..., str]
) -> None:
    text = _on_fast(make_policy(), f"params: {{extra_headers: {{{header}}}}}")
    problem = f"models.fast.params.extra_headers.{where} is a literal credential"
    assert problem in _withheld_for(text, secret)


def test_a_credential_header_on_a_route_is_not_serialised(make_policy: Callable[..., str]) -> None:
    text = make_policy().replace(
        "    to: [fast, backup]\n",
        "    to: [fast, backup]\n    params: {extra_headers: {X-Api-Key: route-key-31337}}\n",
        1,
    )
    problem = "routes[2].params.extra_headers.X-Api-Key is a literal credential"
    assert problem in _withheld_for(text, "route-key-31337")


def test_an_escaped_copy_of_an_environment_secret_is_not_serialised(
    make_policy: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYROUTE_TEST_KEY", "sk-live-0123456789")
    text = make_policy(extra='description: "old key sk-live-\\x30123456789"\n')
    repr_ = _withheld_for(text, "sk-live-\\x30123456789")
    assert "the value of models.fast.api_key is written in the text" in repr_


def test_a_harmless_policy_keeps_its_text_and_round_trips(
    make_policy: Callable[..., str], fp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # References wherever a credential could go, and headers that are not credentials.
    monkeypatch.setenv("POLICYROUTE_TEST_BASE", fp.openai_base)
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-env-only")
    text = _on_fast(
        make_policy(
            extra=_STORE.replace("URL", "redis://:${REDIS_PASSWORD}@localhost:6379/0")
            + "description: 'see https://docs.example.com/routing for the tiers'\n"
        ).replace(f"api_base: {fp.openai_base}", "api_base: ${POLICYROUTE_TEST_BASE}"),
        "params: {extra_headers: {anthropic-beta: tools-1, X-Request-Source: lc-tests}}",
    )
    llm = ChatPolicyRoute(policy=text, accounting=NullAccounting())
    data = dumpd(llm)
    assert data["kwargs"]["policy"] == text
    assert "from-the-env-only" not in dumps(llm)
    again = _revive(data, ignore_unserializable_fields=True)
    assert again.policy == text
    assert again.compiled_policy.spec.models["fast"].api_base == fp.openai_base


def test_a_policy_path_is_written_as_the_path_whatever_the_file_holds(
    tmp_path: Path, make_policy: Callable[..., str], fp: FakeProvider
) -> None:
    path = tmp_path / "policy.yaml"
    leaky = make_policy().replace(f"api_base: {fp.openai_base}", "api_base: https://tok@host/v1")
    path.write_text(leaky, encoding="utf-8")
    assert dumpd(ChatPolicyRoute(policy=path))["kwargs"]["policy"] == str(path)
    assert dumpd(ChatPolicyRoute(policy=str(path)))["kwargs"]["policy"] == str(path)
