"""A tool-calling agent (LangChain ``create_agent``) whose model calls are routed by a policy.

The agent loop runs on the fake provider, scripted to behave like a model: first it asks for
the weather tool, then it answers with the tool's result. Every model call of the loop goes
through the policy, with its route and cost in the message metadata.

Run: python examples/agent_tools.py
"""

from __future__ import annotations

from _fake import fake_llm
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from policyroute.testing import Reply, ToolCall


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny, 21 degrees in {city}."


def main() -> None:
    with fake_llm() as (llm, fp):
        fp.script(
            "fake-mini",
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Lyon"})]),
            Reply(text="It is sunny and 21 degrees in Lyon."),
        )
        agent = create_agent(llm, tools=[get_weather], system_prompt="Be helpful.")
        state = agent.invoke(
            {"messages": [{"role": "user", "content": "What's the weather in Lyon?"}]},
            config={"metadata": {"user_id": "u-42"}},
        )
        for message in state["messages"]:
            if isinstance(message, AIMessage) and message.tool_calls:
                call = message.tool_calls[0]
                print(f"tool call: {call['name']}({call['args']})")
        final = state["messages"][-1]
        print("answer:", final.content)
        cost = sum(
            float(m.response_metadata["policyroute"]["cost"])
            for m in state["messages"]
            if isinstance(m, AIMessage)
        )
        print(f"model calls: {sum(isinstance(m, AIMessage) for m in state['messages'])}")
        print(f"total cost: ${cost:.6f}")


if __name__ == "__main__":
    main()
