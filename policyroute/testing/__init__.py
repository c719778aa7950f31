"""Test helpers for policyroute: a fake OpenAI / Anthropic provider served on 127.0.0.1.

Example:
    >>> from policyroute.testing import FakeProvider, Fault, Reply, Usage
    >>> with FakeProvider() as fp:
    ...     fp.script("gpt-x", Fault.status(429, retry_after=1), Reply(text="hi", usage=Usage(3)))
    ...     api_base = fp.openai_base  # litellm: model="openai/gpt-x", api_base=api_base
"""

from policyroute.testing._faults import (
    BadRequestFault,
    ConnectionReset,
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    MalformedBody,
    MalformedChunk,
    MissingDone,
    NoResponse,
    RawResponse,
    RawStream,
    SlowFirstToken,
    StatusFault,
    Step,
    StreamCut,
    StreamStall,
)
from policyroute.testing._recorded import RecordedRequest, Source
from policyroute.testing._schema_value import value_for_schema
from policyroute.testing._steps import Reply, ToolCall, Usage, default_signature
from policyroute.testing._synth import count_tokens
from policyroute.testing._tls import LocalTLS
from policyroute.testing.fake_provider import ANY_MODEL, FakeProvider

__all__ = [
    "ANY_MODEL",
    "BadRequestFault",
    "ConnectionReset",
    "ContentFilterFault",
    "ContextLengthFault",
    "FakeProvider",
    "Fault",
    "LocalTLS",
    "MalformedBody",
    "MalformedChunk",
    "MissingDone",
    "NoResponse",
    "RawResponse",
    "RawStream",
    "RecordedRequest",
    "Reply",
    "SlowFirstToken",
    "Source",
    "StatusFault",
    "Step",
    "StreamCut",
    "StreamStall",
    "ToolCall",
    "Usage",
    "count_tokens",
    "default_signature",
    "value_for_schema",
]
