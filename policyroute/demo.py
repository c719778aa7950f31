"""``policyroute demo``: a policy routing real LangChain calls, offline, in a few seconds.

A fake OpenAI / Anthropic provider is started on 127.0.0.1 and a small policy (embedded below)
points its models at it, so no API key and no network are needed. Four calls are made through
:class:`~policyroute.langchain.ChatPolicyRoute`: a plain one, a streamed one routed by its
metadata, one that uses a tool, and one that meets an outage and falls over. For each, the
route, the model that answered, the attempts, the tokens and the cost are printed.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> run_demo(out)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from policyroute._environ import environment

__all__ = ["DEMO_POLICY", "get_weather", "run_demo"]

DEMO_POLICY = """\
policyroute: 1
name: demo
description: Cheap model by default, a strong one for code, failover between providers.
models:
  mini:
    model: openai/fake-mini
    api_base: {openai_base}
    api_key: ${{POLICYROUTE_DEMO_KEY}}
    price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
    capabilities: {{tools: true, json_schema: true}}
  sonnet:
    model: anthropic/fake-sonnet
    api_base: {anthropic_base}
    api_key: ${{POLICYROUTE_DEMO_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
    capabilities: {{tools: true, json_schema: true}}
routes:
  - name: code
    when: {{metadata.task: {{in: [code, review]}}}}
    to: sonnet
  - name: default
    to: [mini, sonnet]
defaults:
  retry: {{attempts: 0}}
  max_tokens: 256
receipts: {{sink: none}}
"""
"""The demo policy; ``{openai_base}`` and ``{anthropic_base}`` are the fake provider's."""


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny and 21 degrees in {city}."


_LOOPBACK = ("127.0.0.1", "localhost")
_NO_PROXY_NAMES = ("no_proxy", "NO_PROXY")


@contextmanager
def _loopback_unproxied() -> Iterator[None]:
    """Calls to 127.0.0.1 go straight to it, not through a proxy named in the environment.

    httpx (and so litellm) sends every request through ``HTTP(S)_PROXY`` or ``ALL_PROXY``
    unless ``NO_PROXY`` names its host; behind a proxy, the fake provider's calls went to the
    proxy, which cannot reach this machine's loopback, and every demo call failed. Both
    spellings are set (the lower-case one wins where both exist) to the hosts either named
    plus the loopback ones, and restored on the way out.

    Example:
        >>> with _loopback_unproxied():
        ...     "127.0.0.1" in os.environ["NO_PROXY"].split(",")
        True
    """
    named = [os.environ.get(name) for name in _NO_PROXY_NAMES]
    hosts = [h.strip() for v in named if v for h in v.split(",") if h.strip()]
    merged = ",".join(dict.fromkeys([*hosts, *_LOOPBACK]))
    with environment(dict.fromkeys(_NO_PROXY_NAMES, merged)):
        yield


def _report(out: TextIO, title: str, message: Any) -> None:
    meta = message.response_metadata["policyroute"]
    attempts = ", ".join(
        f"{a['deployment']}:{a['status']}" + (f"({a['error_class']})" if a["error_class"] else "")
        for a in meta["attempts"]
    )
    usage = message.usage_metadata or {}
    out.write(
        f"  route={meta['route']}  model={message.response_metadata['model_name']}"
        f"  attempts=[{attempts}]\n"
        f"  tokens in={usage.get('input_tokens', 0)} out={usage.get('output_tokens', 0)}"
        f"  cost=${meta['cost']}\n\n"
    )


def run_demo(out: TextIO = sys.stdout) -> int:
    """Run the demo, writing to ``out``; returns the exit status (0).

    Example:
        >>> run_demo()  # doctest: +SKIP
    """
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from policyroute._lazy import import_litellm
    from policyroute.langchain import ChatPolicyRoute
    from policyroute.testing import FakeProvider, Fault, Reply, ToolCall

    started = time.perf_counter()
    # The fake provider ignores keys, but litellm's clients refuse to run without one.
    os.environ.setdefault("POLICYROUTE_DEMO_KEY", "demo-key-for-the-fake-provider")
    import_litellm()  # before the clock starts mattering: it also silences litellm's banners
    weather = tool(get_weather)
    with _loopback_unproxied(), FakeProvider() as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party deprecation noise has no place in a demo
        policy = DEMO_POLICY.format(openai_base=fp.openai_base, anthropic_base=fp.anthropic_base)
        llm = ChatPolicyRoute(policy=policy)
        out.write(f"policyroute demo: policy '{llm.compiled_policy.name}', fake provider at")
        out.write(f" {fp.base_url}\n\n")

        out.write("1. plain call -> the default route picks the cheap model\n")
        fp.script("fake-mini", Reply(text="policyroute routes each LLM call by policy."))
        _report(out, "plain", llm.invoke("What does policyroute do?"))

        out.write("2. streamed call with metadata task=code -> the code route\n   ")
        fp.script("fake-sonnet", Reply(text="def add(a, b):\n    return a + b", chunk_delay=0.01))
        merged: Any = None
        for chunk in llm.stream("Write add()", config={"metadata": {"task": "code"}}):
            out.write(str(chunk.content).replace("\n", "\n   "))
            merged = chunk if merged is None else merged + chunk
        out.write("\n")
        _report(out, "stream", merged)

        out.write("3. tool call -> the model asks for the weather, then answers with it\n")
        fp.script(
            "fake-mini",
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
            Reply(text="It is sunny and 21 degrees in Paris."),
        )
        with_tools = llm.bind_tools([weather])
        question = HumanMessage("What's the weather in Paris?")
        asked = with_tools.invoke([question])
        call = asked.tool_calls[0]
        out.write(f"   tool call: {call['name']}({call['args']})\n")
        _report(out, "tool request", asked)
        result = ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"])
        answer = with_tools.invoke([question, asked, result])
        out.write(f"   answer: {answer.content}\n")
        _report(out, "tool answer", answer)

        out.write("4. outage: the cheap model answers 503 -> fall over to the next provider\n")
        fp.schedule_outage("fake-mini", failures=1, fault=Fault.status(503))
        fp.script("fake-sonnet", Reply(text="Still here, from the fallback."))
        _report(out, "outage", llm.invoke("Are you there?"))

    out.write(f"done in {time.perf_counter() - started:.2f}s\n")
    return 0
