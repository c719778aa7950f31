"""Structured output through a policy: a pydantic object back, whichever model answers.

``method="json_schema"`` sends the schema as the OpenAI ``response_format`` (litellm
translates it for other providers); the fake provider answers with JSON built from the schema.

Run: python examples/structured_output.py
"""

from __future__ import annotations

from _fake import fake_llm
from pydantic import BaseModel, Field


class Ticket(BaseModel):
    """A support ticket extracted from a customer message."""

    title: str = Field(description="A short summary")
    priority: int = Field(description="1 (urgent) to 4 (low)", ge=1, le=4)
    tags: list[str]


def main() -> None:
    with fake_llm() as (llm, fp):
        extract = llm.with_structured_output(Ticket, method="json_schema")
        ticket = extract.invoke("My invoice is wrong and I am charged twice!")
        print("ticket:", type(ticket).__name__, ticket.model_dump_json())

        raw = llm.with_structured_output(Ticket, method="json_schema", include_raw=True)
        out = raw.invoke("The app crashes on start.", config={"tags": ["strong"]})
        meta = out["raw"].response_metadata
        print("parsed:", out["parsed"] is not None, "error:", out["parsing_error"])
        print("route:", meta["policyroute"]["route"], "model:", meta["model_name"])
        # The same schema, as litellm put it on the Anthropic wire for the strong model.
        wire = sorted(k for k in ("output_format", "tools") if k in fp.requests[-1].body)
        print("anthropic request carried:", ", ".join(wire))


if __name__ == "__main__":
    main()
