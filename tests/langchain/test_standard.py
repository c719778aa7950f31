"""LangChain's standard chat model test suites, run against the fake provider on loopback.

The fake provider stands in for a model: by default it answers from the request (a forced tool
call with arguments drawn from the schema, JSON for a JSON ``response_format``). A few tests
check that the *model* understood the prompt (call ``magic_function`` with 3, keep the Chinese
name); for those the provider is scripted with the answer such a model gives, so what is
tested is everything between LangChain and the wire: conversions, streaming, tool-call
assembly, usage.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from lc_support import policy_text

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Step, ToolCall


class _Features:
    """What ChatPolicyRoute supports, declared once for both standard suites."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatPolicyRoute

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The suites pass ``max_retries=2`` (and the integration suite ``api_key``) to every
        # model; ChatPolicyRoute refuses both, since the policy owns retries and keys.
        params = dict(super().standard_chat_model_params)  # type: ignore[misc]
        params.pop("max_retries", None)
        params.pop("api_key", None)
        return params

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # The requested model is a routing fact: the test policy routes requests for
        # "fake-strong" to the deployment of that name.
        return "fake-strong"


# test_serdes calls load(), a beta API, and the deprecated BaseChatModel.dict().
@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
@pytest.mark.filterwarnings("ignore:The method `BaseChatModel.dict` was deprecated")
class TestChatPolicyRouteUnit(_Features, ChatModelUnitTests):
    @pytest.fixture(autouse=True)
    def _loadable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # test_serdes loads with allowed_objects="all", which langchain-core 1.7 limits to the
        # classes in its own serialization mapping; applications load ChatPolicyRoute with
        # allowed_objects=[ChatPolicyRoute] (tests/langchain/test_serialization.py). List it in
        # the mapping for the length of the test, so the suite's own round trip runs.
        import importlib

        lc_load = importlib.import_module("langchain_core.load.load")

        path = tuple(ChatPolicyRoute.lc_id())
        monkeypatch.setattr(
            lc_load, "ALL_SERIALIZABLE_MAPPINGS", {**lc_load.ALL_SERIALIZABLE_MAPPINGS, path: path}
        )
        monkeypatch.setattr(lc_load, "_default_class_paths_cache", {})

    # Unit tests never call the model; the address is never dialled. The policy is this
    # class's own, as test_serdes pins its serialised form in a snapshot.
    _POLICY = """policyroute: 1
name: lc-unit
models:
  fast:
    model: openai/fake-fast
    api_base: http://127.0.0.1:9/v1
    api_key: ${POLICYROUTE_TEST_KEY}
    price: {input_per_mtok: 1, output_per_mtok: 2}
    capabilities: {tools: true, vision: true, json_schema: true}
routes:
  - name: default
    to: fast
receipts: {sink: none}
"""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # No accounting object: one is serialised as not_implemented, which load refuses.
        return {"policy": self._POLICY}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        from pathlib import Path

        # A checked-in policy, named by an absolute path so the test runs from any directory.
        tiered = str(Path(__file__).resolve().parents[2] / "policies" / "tiered.yaml")
        return (
            {"POLICYROUTE_POLICY": tiered},
            {"model": "gpt-4.1", "temperature": 0.5},
            {"policy": tiered, "model": "gpt-4.1", "temperature": 0.5},
        )


_JOKE = '{"setup": "Why do cats sit on keyboards?", "punchline": "To keep an eye on the mouse."}'
_MAGIC = Reply(tool_calls=[ToolCall("magic_function", {"input": 3})])

# test name -> (queued steps, default step) for any model.
_SCRIPTS: dict[str, tuple[tuple[Step, ...], Step | None]] = {
    "test_tool_calling": ((), _MAGIC),
    "test_tool_calling_async": ((), _MAGIC),
    "test_json_mode": ((), Reply(text=_JOKE)),
    "test_agent_loop": (
        (Reply(tool_calls=[ToolCall("get_weather", {"location": "San Francisco, CA"})]),),
        Reply(text="It is sunny in San Francisco."),
    ),
    "test_unicode_tool_call_integration": (
        (
            Reply(
                tool_calls=[
                    ToolCall(
                        "unicode_customer", {"customer_name": "你好啊集团", "description": "tech"}
                    )
                ]
            ),
            Reply(
                tool_calls=[
                    ToolCall(
                        "unicode_customer",
                        {"customer_name": "こんにちは株式会社", "description": "company"},
                    )
                ]
            ),
        ),
        None,
    ),
}

# A 1x1 PNG: the image tests download a picture from the internet, which tests never do.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


# The smallest well-formed PDF and WAV files, for the document and audio tests.
_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 3 3]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
_WAV = (
    b"RIFF"
    + (36 + 2).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little")
    + (2).to_bytes(2, "little")
    + (16).to_bytes(2, "little")
    + b"data"
    + (2).to_bytes(4, "little")
    + b"\x00\x00"
)


def _offline_get(url: str, **_: Any) -> httpx.Response:
    content = _PDF if url.endswith(".pdf") else _WAV if url.endswith(".wav") else _PNG
    return httpx.Response(200, content=content, request=httpx.Request("GET", url))


@pytest.fixture(scope="module")
def standard_provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


# The suite's async tests carry no asyncio mark and pytest runs in strict asyncio mode: mark the
# class, which marks the sync tests too, and silence pytest-asyncio's note about those.
@pytest.mark.asyncio
@pytest.mark.filterwarnings(
    "ignore:The test .* is marked with '@pytest.mark.asyncio' but it is not"
)
class TestChatPolicyRouteIntegration(_Features, ChatModelIntegrationTests):
    provider: FakeProvider

    @pytest.fixture(autouse=True)
    def _provider(
        self,
        standard_provider: FakeProvider,
        request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        standard_provider.reset()
        queued, default = _SCRIPTS.get(request.node.originalname, ((), None))
        standard_provider.script("*", *queued)
        standard_provider.set_default("*", default)
        monkeypatch.setattr("langchain_tests.integration_tests.chat_models.httpx.get", _offline_get)
        # Read by the audio test's download helper (served offline above); unset, it warns.
        monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "policyroute-tests/1 (offline)")
        self.provider = standard_provider

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"policy": policy_text(self.provider.openai_base), "accounting": NullAccounting()}

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_pdf_tool_message(self) -> bool:
        return True

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def enable_vcr_tests(self) -> bool:
        # test_stream_time replays a cassette of a stream from the fake provider
        # (tests/langchain/cassettes; see vcr_config in conftest.py).
        return True

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        # The native way (a JSON schema response_format); function calling is covered by the
        # suite's other tool tests and by tests/langchain/test_chat_model.py.
        return {"method": "json_schema"}
