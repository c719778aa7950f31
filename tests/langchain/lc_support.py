"""Policies, tools and structured-output schemas for the LangChain adapter tests (importable by
conftest and test modules alike)."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.tools import tool
from pydantic import BaseModel
from typing_extensions import TypedDict

from policyroute.testing import FakeProvider

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

    Routes: ``code`` (metadata.task == code, or the tag ``strong``) -> strong;
    ``requested`` (requested model ``big`` or ``fake-strong``) -> strong; ``default`` -> fast,
    falling over to backup. No retries, so a scripted outage falls over at once.
    ``backup_tools`` sets whether the backup model supports tools.
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
    when: {{model: {{in: [big, fake-strong]}}}}
    to: strong
  - name: default
    to: [fast, backup]
defaults:
  retry: {{attempts: 0}}
receipts: {{sink: none}}
{extra}"""


def claude_and_gpt(
    anthropic_base: str,
    openai_base: str,
    *,
    name: str,
    first: str = "claude",
    claude_params: str = "",
    gpt_model: str = "gpt-4o",
    gpt_params: str = "",
) -> str:
    """A policy whose one route tries ``claude`` (claude-sonnet-4-5 on the Anthropic wire at
    ``anthropic_base``) and ``gpt`` (``gpt_model`` on the OpenAI wire at ``openai_base``),
    ``first`` first; no retries and no circuit breaker, so one scripted failure falls over once.
    ``claude_params`` and ``gpt_params`` are extra lines of each model's entry (a ``params:`` or
    ``capabilities:`` line, say)."""
    second = "gpt" if first == "claude" else "claude"
    return f"""
policyroute: 1
name: {name}
models:
  claude:
    model: anthropic/claude-sonnet-4-5
    api_base: {anthropic_base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
    {claude_params}
  gpt:
    model: openai/{gpt_model}
    api_base: {openai_base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
    {gpt_params}
routes:
  - name: default
    to: [{first}, {second}]
defaults:
  retry: {{attempts: 0}}
receipts: {{sink: none}}
"""


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


class Person(BaseModel):
    name: str
    age: int


class PersonDict(TypedDict):
    name: str
    age: int


PERSON_SCHEMA: dict[str, Any] = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
# One schema of each kind with_structured_output takes, and every method it has.
SCHEMAS = [Person, PersonDict, PERSON_SCHEMA]
SCHEMA_IDS = ["pydantic", "typeddict", "json-schema"]
METHODS = ["function_calling", "json_schema", "json_mode"]


def schema_name(schema: Any) -> str:
    """The name the model's tool call gives ``schema`` (a JSON schema's title, or a class's)."""
    return str(schema["title"]) if isinstance(schema, dict) else str(schema.__name__)


BREAKER_FAILURES = 2


def with_breaker(policy: str) -> str:
    """``policy`` (a :func:`policy_text`) with a circuit breaker that opens after
    ``BREAKER_FAILURES`` failures in a row."""
    assert "  retry: {attempts: 0}" in policy
    return policy.replace(
        "  retry: {attempts: 0}",
        f"  retry: {{attempts: 0}}\n  circuit_breaker: {{failures: {BREAKER_FAILURES},"
        " cooldown: 60s}",
    )


def bodies(fp: FakeProvider) -> dict[str, dict[str, Any]]:
    """The body each deployment received, by model (the last one, if it got several)."""
    out = {}
    for recorded in fp.requests:
        assert isinstance(recorded.body, dict)
        assert recorded.model is not None
        out[recorded.model] = recorded.body
    return out


def deployment(message: BaseMessage) -> str:
    """The deployment that answered ``message``, from its policyroute metadata."""
    return str(message.response_metadata["policyroute"]["deployment"])
