"""An LCEL chain (prompt | model | parser) whose model is routed by a policy.

The same chain answers on the cheap model by default and on the strong one when the call's
metadata says it is about code: routing facts travel in the RunnableConfig.

Run: python examples/lcel_chain.py
"""

from __future__ import annotations

from _fake import fake_llm
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from policyroute.testing import Reply


def main() -> None:
    with fake_llm() as (llm, fp):
        prompt = ChatPromptTemplate.from_messages(
            [("system", "You answer in one sentence."), ("human", "{question}")]
        )
        chain = prompt | llm
        text_chain = chain | StrOutputParser()

        fp.script("fake-mini", Reply(text="Paris is the capital of France."))
        print("answer:", text_chain.invoke({"question": "Capital of France?"}))

        message = chain.invoke(
            {"question": "Review: def add(a, b): return a - b"},
            config={"metadata": {"task": "review"}, "tags": ["example"]},
        )
        meta = message.response_metadata
        print("route:", meta["policyroute"]["route"], "model:", meta["model_name"])

        print("streamed:", end=" ")
        for piece in text_chain.stream({"question": "Say hello"}):
            print(piece, end="", flush=True)
        print()


if __name__ == "__main__":
    main()
