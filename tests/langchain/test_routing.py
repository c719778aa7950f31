"""Per-call routing facts reach the policy from each call's own RunnableConfig."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider


def _route(message: BaseMessage) -> tuple[str, str]:
    meta = message.response_metadata["policyroute"]
    return meta["route"], meta["deployment"]


def test_invoke_routes_on_metadata_and_tags(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    assert _route(llm.invoke("x")) == ("default", "fast")
    assert _route(llm.invoke("x", config={"metadata": {"task": "code"}})) == ("code", "strong")
    assert _route(llm.invoke("x", config={"tags": ["strong"]})) == ("code", "strong")
    assert [r.model for r in fp.requests] == ["fake-fast", "fake-strong", "fake-strong"]


def test_requested_model_is_a_fact(llm: ChatPolicyRoute) -> None:
    assert _route(llm.invoke("x", model="big")) == ("requested", "strong")
    assert _route(llm.bind(model="big").invoke("x")) == ("requested", "strong")


def test_instance_metadata_and_tags_are_defaults(make_policy: Any) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), metadata={"task": "code"})
    assert _route(llm.invoke("x")) == ("code", "strong")
    tagged = ChatPolicyRoute(policy=make_policy(), tags=["strong"])
    assert _route(tagged.invoke("x")) == ("code", "strong")


def test_stream_routes_on_metadata(llm: ChatPolicyRoute) -> None:
    chunks = list(llm.stream("x", config={"metadata": {"task": "code"}}))
    assert _route(chunks[-1]) == ("code", "strong")


def test_run_id_reaches_the_request(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    import uuid

    run_id = uuid.uuid4()
    seen: list[Any] = []
    original = llm.executor.complete

    def spy(request: Any) -> Any:
        seen.append(request)
        return original(request)

    object.__setattr__(llm.executor, "complete", spy)
    llm.invoke("x", config={"run_id": run_id, "metadata": {"k": 1}, "tags": ["t"]})
    (request,) = seen
    assert request.run_id == str(run_id)
    assert request.metadata == {"k": 1}
    assert list(request.tags) == ["t"]
    assert request.stream is False


def test_batch_with_per_item_configs(llm: ChatPolicyRoute) -> None:
    configs: list[RunnableConfig] = [
        {"metadata": {"task": "code"}},
        {},
        {"tags": ["strong"]},
        {"metadata": {"task": "chat"}},
    ]
    answers = llm.batch(["a", "b", "c", "d"], config=configs)
    assert [_route(m)[1] for m in answers] == ["strong", "fast", "strong", "fast"]


@pytest.mark.asyncio
async def test_concurrent_ainvokes_do_not_cross_talk(llm: ChatPolicyRoute) -> None:
    async def one(i: int) -> tuple[int, str]:
        config: RunnableConfig = {"metadata": {"task": "code" if i % 2 else "chat", "i": i}}
        message = await llm.ainvoke(f"call {i}", config=config)
        return i, _route(message)[1]

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert all(deployment == ("strong" if i % 2 else "fast") for i, deployment in results)


@pytest.mark.asyncio
async def test_concurrent_astreams_and_abatch(llm: ChatPolicyRoute) -> None:
    async def streamed(i: int) -> str:
        config: RunnableConfig = {"tags": ["strong"] if i % 2 else []}
        last: Any = None
        async for chunk in llm.astream(f"s {i}", config=config):
            last = chunk
        return str(_route(last)[1])

    deployments = await asyncio.gather(*(streamed(i) for i in range(10)))
    assert deployments == ["strong" if i % 2 else "fast" for i in range(10)]
    answers = await llm.abatch(
        ["a", "b"], config=[{"metadata": {"task": "code"}}, {"metadata": {}}]
    )
    assert [_route(m)[1] for m in answers] == ["strong", "fast"]


def test_chain_passes_config_down(llm: ChatPolicyRoute) -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{q}")])
    chain = prompt | llm
    message = chain.invoke({"q": "hi"}, config={"metadata": {"task": "code"}})
    assert _route(message) == ("code", "strong")
    chunks = list(chain.stream({"q": "hi"}, config={"tags": ["strong"]}))
    assert _route(chunks[-1]) == ("code", "strong")
    assert _route(chain.invoke({"q": "hi"})) == ("default", "fast")


class _State(TypedDict):
    messages: list[BaseMessage]


def _graph(llm: ChatPolicyRoute) -> Any:
    def call_model(state: _State) -> _State:
        answer = llm.invoke(state["messages"])
        return {"messages": [*state["messages"], answer]}

    graph = StateGraph(_State)
    graph.add_node("model", call_model)
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    return graph.compile()


def test_langgraph_node_sees_the_graph_config(llm: ChatPolicyRoute) -> None:
    app = _graph(llm)
    out = app.invoke({"messages": [HumanMessage("hi")]}, config={"metadata": {"task": "code"}})
    answer = out["messages"][-1]
    assert isinstance(answer, AIMessage)
    assert _route(answer) == ("code", "strong")
    plain = app.invoke({"messages": [HumanMessage("hi")]})
    assert _route(plain["messages"][-1]) == ("default", "fast")


@pytest.mark.asyncio
async def test_langgraph_concurrent_runs(llm: ChatPolicyRoute) -> None:
    async def call_model(state: _State, config: RunnableConfig) -> _State:
        # Before Python 3.11 asyncio tasks take no context, so LangGraph cannot hand its config
        # to an async node implicitly: the node passes it on, as LangGraph's docs say to.
        passed = config if sys.version_info < (3, 11) else None
        answer = await llm.ainvoke(state["messages"], passed)
        return {"messages": [*state["messages"], answer]}

    graph = StateGraph(_State)
    graph.add_node("model", call_model)
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    app = graph.compile()

    async def run(i: int) -> str:
        config: RunnableConfig = {"metadata": {"task": "code"}} if i % 2 else {}
        out = await app.ainvoke({"messages": [HumanMessage(f"hi {i}")]}, config=config)
        return str(_route(out["messages"][-1])[1])

    deployments = await asyncio.gather(*(run(i) for i in range(20)))
    assert deployments == ["strong" if i % 2 else "fast" for i in range(20)]


def test_langgraph_messages_stream_mode_routes(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    # In "messages" mode LangGraph attaches a streaming handler, so the node's invoke streams
    # through _stream, which langchain-core calls without a run manager.
    app = _graph(llm)
    chunks = [
        message
        for message, _meta in app.stream(
            {"messages": [HumanMessage("hi")]},
            config={"metadata": {"task": "code"}},
            stream_mode="messages",
        )
    ]
    assert fp.requests[0].stream is True
    routed = [c for c in chunks if c.response_metadata.get("policyroute")]
    assert _route(routed[-1]) == ("code", "strong")


@pytest.mark.asyncio
async def test_astream_events_route_and_stream(llm: ChatPolicyRoute) -> None:
    streamed = []
    final: Any = None
    async for event in llm.astream_events("x", config={"tags": ["strong"]}, version="v2"):
        if event["event"] == "on_chat_model_stream":
            streamed.append(event["data"]["chunk"])
        if event["event"] == "on_chat_model_end":
            final = event["data"]["output"]
    assert len(streamed) > 1
    assert _route(final) == ("code", "strong")


def test_facts_stay_out_of_traces_and_cache_keys(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    from langchain_core.caches import InMemoryCache
    from langchain_core.callbacks import BaseCallbackHandler

    class Capture(BaseCallbackHandler):
        def __init__(self) -> None:
            self.params: list[dict[str, Any]] = []

        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            self.params.append(kwargs["invocation_params"])

    cached = llm.model_copy(update={"cache": InMemoryCache()})
    handler = Capture()
    first = cached.invoke("same", config={"callbacks": [handler]})
    second = cached.invoke("same", config={"callbacks": [handler]})
    assert first.content == second.content
    assert len(fp.requests) == 1
    assert all(not any(k.startswith("_policyroute") for k in p) for p in handler.params)
