"""What a person prints, logs or sees in a debugger (``repr``, ``str``, LangChain's
serialisation and trace data, ``policyroute explain``) holds no credential the policy or the
call carries: not the key, not a URL's password or ``key=``, not a credential header."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumps
from secret_support import HEADER, KEY, PASSWORD, assert_clean

from policyroute import ChatPolicyRoute, load_policy_text
from policyroute.cli import main
from policyroute.costs.redact import param_secrets, redact_params
from policyroute.policy.model import StoreSpec
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

LITERALS = f"""policyroute: 1
name: literal-secrets
models:
  gw:
    model: openai/gpt-4o-mini
    api_base: https://user:{PASSWORD}@127.0.0.1:9/v1?key={PASSWORD}
    api_key: ${{POLICYROUTE_SENTINEL_KEY}}
    params: {{extra_headers: {{Authorization: Bearer {HEADER}}}}}
routes:
  - name: default
    to: gw
    params: {{extra_headers: {{X-Api-Key: {HEADER}}}}}
store: {{backend: redis, url: "redis://:{PASSWORD}@127.0.0.1:9/0"}}
"""


def test_policy_objects_show_no_literal_credential(sentinel_key: str) -> None:
    compiled = load_policy_text(LITERALS)
    decision = compiled.route(Request(messages=[{"role": "user", "content": "hi"}]))
    for shown in (compiled, compiled.spec, decision, *decision.candidates):
        assert_clean(repr(shown), f"repr of {type(shown).__name__}")
        assert_clean(str(shown), f"str of {type(shown).__name__}")
    # Redacted, not dropped: what is not a credential still shows.
    assert "127.0.0.1:9/v1" in repr(compiled.spec.models["gw"])
    assert "[REDACTED]" in repr(decision)


def test_store_spec_shows_no_password() -> None:
    spec = StoreSpec(backend="redis", url=f"redis://app:{PASSWORD}@cache:6379/0")
    assert_clean(repr(spec), "repr of StoreSpec")
    assert "cache:6379" in repr(spec)


def test_chat_model_repr_and_dumps_show_no_policy_text_credential(sentinel_key: str) -> None:
    llm = ChatPolicyRoute(policy=LITERALS)
    assert_clean(repr(llm), "repr of ChatPolicyRoute")
    assert_clean(str(llm), "str of ChatPolicyRoute")
    assert_clean(dumps(llm), "dumps of ChatPolicyRoute")


def test_model_kwargs_credential_is_redacted_in_repr_traces_and_withheld_by_dumps(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    # A credential header is refused (a call may not replace the policy's key); a gateway's
    # own header may carry a secret, and it is redacted wherever the model is shown.
    headers = {"X-Upstream-Token": HEADER}
    llm = ChatPolicyRoute(policy=make_policy(), model_kwargs={"extra_headers": headers})
    assert_clean(repr(llm), "repr of ChatPolicyRoute")
    assert_clean(llm._identifying_params, "_identifying_params")
    assert_clean(llm._get_ls_params(), "_get_ls_params")
    serialised = dumps(llm)
    assert_clean(serialised, "dumps of ChatPolicyRoute")
    assert json.loads(serialised)["kwargs"]["model_kwargs"]["type"] == "not_implemented"
    # The call itself still carries the header.
    fp.set_default("fake-a", Reply(text="ok"))
    llm.invoke("hi")
    assert fp.requests[-1].headers.get("x-upstream-token") == HEADER


class _Start(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append((serialized, kwargs))


def test_callbacks_see_no_call_credential(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    fp.set_default("fake-a", Reply(text="ok"))
    llm = ChatPolicyRoute(policy=make_policy())
    start = _Start()
    llm.invoke(
        "hi",
        config={"callbacks": [start]},
        extra_headers={"X-Upstream-Token": HEADER, "X-Trace": "t-1"},
    )
    assert len(start.seen) == 1
    assert_clean(start.seen, "on_chat_model_start's arguments")
    invocation = start.seen[0][1]["invocation_params"]
    assert invocation["extra_headers"] == {"X-Upstream-Token": "[REDACTED]", "X-Trace": "t-1"}
    assert fp.requests[-1].headers.get("x-upstream-token") == HEADER
    # (httpx sends deployment a's URL user info as the Authorization header.)
    assert fp.requests[-1].headers.get("x-trace") == "t-1"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_shows_no_literal_credential(
    tmp_path: Path, sentinel_key: str, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(LITERALS, encoding="utf-8")
    request = tmp_path / "req.json"
    request.write_text('{"messages": [{"role": "user", "content": "hi"}]}', encoding="utf-8")
    code = main(["explain", "--format", fmt, "--request", str(request), str(policy)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "extra_headers" in out
    assert_clean(out + err, f"explain --format {fmt}")


@pytest.mark.parametrize(
    "argv",
    [["validate"], ["validate", "--format", "json"], ["budget", "status"], ["test"]],
)
def test_other_commands_show_no_credential(
    tmp_path: Path, sentinel_key: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(LITERALS, encoding="utf-8")
    main([*argv, str(policy)])  # budget status fails: nothing listens on the store's port
    out, err = capsys.readouterr()
    assert out + err
    assert_clean(out + err, " ".join(argv))


def test_param_secrets_finds_every_credential_value() -> None:
    found = param_secrets(
        {
            "api_key": KEY,
            "api_base": f"https://u:{PASSWORD}@gw/v1?key=qk-1234&api-version=2024-10-21",
            "extra_headers": {"Authorization": f"Bearer {HEADER}", "X-Trace": "trace-1"},
            "temperature": 0.5,
        }
    )
    # The Basic credentials the user info is sent as (httpx's Authorization header) count too.
    basic = base64.b64encode(f"u:{PASSWORD}".encode()).decode()
    assert set(found) == {KEY, PASSWORD, basic, "qk-1234", f"Bearer {HEADER}", HEADER}


def test_redact_params_keeps_what_is_not_a_credential() -> None:
    shown = redact_params(
        {
            "max_tokens": 10,
            "api_key": KEY,
            "api_base": f"https://u:{PASSWORD}@gw/v1",
            "stop": ["\n"],
            "extra_headers": {"Authorization": f"Bearer {HEADER}", "X-Trace": "trace-1"},
        }
    )
    assert shown == {
        "max_tokens": 10,
        "api_key": "[REDACTED]",
        "api_base": "https://u:[REDACTED]@gw/v1",
        "stop": ["\n"],
        "extra_headers": {"Authorization": "[REDACTED]", "X-Trace": "trace-1"},
    }
