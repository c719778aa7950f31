"""Fixtures for the LangChain adapter tests: a fake provider on loopback and policies for it."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Iterator

import pytest

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider

# Warnings litellm itself triggers in pydantic (ReadOnly TypedDict items on first use, and the
# instance access to ``model_fields`` and friends in its stream chunk handling); they are litellm's
# to fix and say nothing about our code.
_LITELLM_WARNINGS = (
    "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning",
    "ignore:Accessing the 'model_.*' attribute on the instance is deprecated",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/langchain/" in str(item.path).replace("\\", "/"):
            for spec in _LITELLM_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


# litellm's OpenAI client insists on a key; the fake provider ignores it.
os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

_MODEL = """
  {alias}:
    model: openai/fake-{alias}
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: {inp}, output_per_mtok: {out}}}
    context_window: {window}
    max_output_tokens: 4096
    capabilities: {{tools: {tools}, vision: true, json_schema: true}}
"""


def policy_text(
    base: str, *, name: str = "lc-tests", extra: str = "", backup_tools: bool = True
) -> str:
    """A policy whose three models are served by the fake provider at ``base``.

    Routes: ``code`` (metadata.task == code, or the tag ``strong``) -> strong; ``requested``
    (requested model ``big``) -> strong; ``default`` -> fast, falling over to backup. No
    retries, so a scripted outage falls over at once. ``backup_tools`` sets whether the
    backup model supports tools.
    """
    models = "".join(
        _MODEL.format(
            alias=alias,
            base=base,
            inp=inp,
            out=out,
            window=window,
            tools="true" if backup_tools or alias != "backup" else "false",
        )
        for alias, inp, out, window in (
            ("fast", 1, 2, 128000),
            ("strong", 3, 15, 200000),
            ("backup", 2, 4, 64000),
        )
    )
    return f"""policyroute: 1
name: {name}
models:{models}
routes:
  - name: code
    when:
      any:
        - metadata.task: code
        - tags: {{contains: strong}}
    to: strong
  - name: requested
    when: {{model: big}}
    to: strong
  - name: default
    to: [fast, backup]
defaults:
  retry: {{attempts: 0}}
receipts: {{sink: none}}
{extra}"""


@pytest.fixture(autouse=True)
def _closed_sync_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give sync tests a current event loop and close it afterwards.

    litellm's sync stream wrapper calls ``asyncio.get_event_loop()``, which in the main thread
    creates a loop that nobody closes (a ResourceWarning, an error here). Async tests run on
    pytest-asyncio's loop and need nothing.
    """
    if request.node.get_closest_marker("asyncio") is not None:
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def make_policy(fp: FakeProvider) -> Callable[..., str]:
    """:func:`policy_text` bound to the fake provider's address."""
    return functools.partial(policy_text, fp.openai_base)


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture
def fp(fake_provider: FakeProvider) -> FakeProvider:
    """The module's fake provider, with scripts and recordings cleared."""
    fake_provider.reset()
    return fake_provider


@pytest.fixture
def llm(fp: FakeProvider) -> ChatPolicyRoute:
    return ChatPolicyRoute(policy=policy_text(fp.openai_base), accounting=NullAccounting())
