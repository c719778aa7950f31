"""Structured output for :class:`~policyroute.langchain.ChatPolicyRoute`.

Three ways to ask a model for data in a shape: a forced tool call (``function_calling``), an
OpenAI ``response_format`` carrying the JSON schema (``json_schema``), or plain JSON mode
(``json_mode``). litellm translates the OpenAI forms for the other providers; JSON mode,
which Anthropic lacks, reaches a Claude deployment as the schema's ``json_schema`` form.

Example:
    >>> runnable = structured_runnable(llm, Joke, method="json_schema")  # doctest: +SKIP
    >>> runnable.invoke("tell me a joke")  # doctest: +SKIP
    Joke(setup='...', punchline='...')
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.output_parsers.transform import BaseCumulativeTransformOutputParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableMap
from langchain_core.runnables.utils import AddableDict
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from policyroute.errors import ModelRefusalError, RequestError
from policyroute.execution.one_tool_call import ONE_TOOL_CALL_KEY
from policyroute.execution.one_tool_call import PARAM as PARALLEL
from policyroute.execution.response_format import SCHEMA_KEY
from policyroute.langchain_.strict_schema import strict_expressible

if TYPE_CHECKING:
    from policyroute.langchain import ChatPolicyRoute

__all__ = ["StructuredMethod", "strict_response_format", "structured_runnable"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
"""How structured output is asked for."""


def _missing_call(result: list[Generation], name: str) -> OutputParserException:
    message = result[0].message if result and isinstance(result[0], ChatGeneration) else None
    invalid = [
        call
        for call in (message.invalid_tool_calls if isinstance(message, AIMessage) else ())
        if call.get("name") in (name, None)
    ]
    if invalid:
        why = f"called {name!r} with arguments that are not a JSON object: {invalid[0]['args']!r}"
    else:
        why = f"answered without calling {name!r}"
    return OutputParserException(
        f"the model {why}", llm_output=str(message.content) if message is not None else None
    )


class _ParsedAtEnd(BaseCumulativeTransformOutputParser[Any]):
    """A streaming parser whose stream raises what ``invoke`` raises when the whole answer
    does not parse.

    langchain-core's cumulative transform parses the answer so far with ``partial=True`` after
    each chunk, which answers ``None`` for what does not parse (yet), and never parses the
    whole answer without it: an answer that ends unparsable (prose for JSON, tool arguments
    that are not JSON) streamed nothing and no error, where ``invoke`` raises. Here the
    partial objects stream as before, and the whole answer is then parsed once more as
    ``invoke`` parses it: its error is raised at the stream's end, and its result is yielded
    if the last partial object was not it already.

    A whole answer that is a refusal (``additional_kwargs["refusal"]``, OpenAI's
    ``message.refusal``) raises :class:`~policyroute.errors.ModelRefusalError` with its text
    and ``refused_as`` (the name of the schema asked for), as langchain-openai raises its
    ``OpenAIRefusalError``, instead of a parse error about an empty answer.
    """

    refused_as: str | None = None

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        if not partial:
            refusal = _refusal_of(result)
            if refusal is not None:
                raise ModelRefusalError(refusal, schema=self.refused_as)
        return super().parse_result(result, partial=partial)

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        seen: list[str | BaseMessage] = []
        last: Any = None
        for last in super()._transform(_kept(input, seen)):
            yield last
        if seen:
            whole = self.parse_result([_whole(seen)])
            if whole != last and not self.diff:
                yield whole

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[Any]:
        seen: list[str | BaseMessage] = []
        last: Any = None
        async for last in super()._atransform(_akept(input, seen)):
            yield last
        if seen:
            whole = await self.aparse_result([_whole(seen)])
            if whole != last and not self.diff:
                yield whole


def _refusal_of(result: list[Generation]) -> str | None:
    """The refusal the answer in ``result`` is, if it is one."""
    message = result[0].message if result and isinstance(result[0], ChatGeneration) else None
    refusal = message.additional_kwargs.get("refusal") if message is not None else None
    return refusal if isinstance(refusal, str) and refusal else None


def _kept(input: Iterator[str | BaseMessage], seen: list[str | BaseMessage]) -> Iterator[Any]:
    for item in input:
        seen.append(item)
        yield item


async def _akept(
    input: AsyncIterator[str | BaseMessage], seen: list[str | BaseMessage]
) -> AsyncIterator[Any]:
    async for item in input:
        seen.append(item)
        yield item


def _whole(seen: Sequence[str | BaseMessage]) -> Generation:
    """The streamed answer merged, as ``invoke`` would have given it to the parser."""
    first = seen[0]
    if isinstance(first, str):
        return Generation(text="".join(str(item) for item in seen))
    if isinstance(first, AIMessageChunk) and len(seen) > 1:
        # One merge of the whole list: linear, and it ends with the arguments of tool calls
        # parsed strictly (see policyroute.langchain_.results.StreamedChunk).
        merged: Any = first + list(seen[1:])
    else:
        merged = first
        for item in seen[1:]:
            merged = merged + item
    return ChatGeneration(message=message_chunk_to_message(merged))


class _RequiredPydanticTool(_ParsedAtEnd, PydanticToolsParser):
    """:class:`PydanticToolsParser` that raises, rather than returns ``None``, when the answer
    holds no valid call of the forced tool: a garbage answer must reach ``parsing_error``."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        parsed = super().parse_result(result, partial=partial)
        if parsed is None and not partial:
            raise _missing_call(result, self.tools[0].__name__)
        return parsed


class _RequiredKeyTool(_ParsedAtEnd, JsonOutputKeyToolsParser):
    """:class:`JsonOutputKeyToolsParser` that raises when the forced tool was not validly
    called (see :class:`_RequiredPydanticTool`)."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        parsed = super().parse_result(result, partial=partial)
        if parsed is None and not partial:
            raise _missing_call(result, self.key_name)
        return parsed


class _WholeJson(_ParsedAtEnd, JsonOutputParser):
    """:class:`JsonOutputParser` whose stream raises when the whole answer is not JSON."""


class _WholePydantic(_ParsedAtEnd, PydanticOutputParser):  # type: ignore[type-arg]
    """:class:`PydanticOutputParser` whose stream raises when the whole answer does not parse
    into the schema."""


def response_format_for(
    schema: Mapping[str, Any] | type, method: StructuredMethod, strict: bool | None
) -> dict[str, Any]:
    """The OpenAI ``response_format`` for ``json_schema`` or ``json_mode``.

    As langchain-openai's, it carries the schema's ``description`` (a pydantic class's
    docstring), which tells the model what the object is for. With ``strict=True`` the schema
    is made what OpenAI accepts in strict mode: every object closed
    (``additionalProperties: false``) with all its properties required, and no ``null``
    defaults, the form OpenAI's SDK gives a pydantic class.

    Example:
        >>> response_format_for({"title": "P", "type": "object", "properties": {}},
        ...                     "json_schema", None)["json_schema"]["name"]
        'P'
    """
    if method == "json_mode":
        return {"type": "json_object"}
    function = convert_to_openai_tool(schema, strict=strict)["function"]
    spec: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["schema"] = function["parameters"]
    if strict is not None:
        spec["strict"] = strict
        if strict:
            _drop_null_defaults(spec["schema"])
    return {"type": "json_schema", "json_schema": spec}


def strict_response_format(response_format: Any) -> Any:
    """``response_format`` with its schema made strict as :func:`response_format_for` makes it
    for ``strict=True``, when it asks for strict mode (``json_schema.strict`` is true) with a
    schema that is not strict yet; otherwise ``response_format`` itself.

    A ``json_schema`` format may come built elsewhere: LangChain agents'
    ``ProviderStrategy(schema, strict=True)`` binds the bare JSON schema of a pydantic class
    or TypedDict, whose objects are not closed, and OpenAI refuses such a schema in strict
    mode. The schema's own ``title`` and ``description`` are kept; the name and every other
    field of the format are left as given.

    Example:
        >>> fmt = {"type": "json_schema", "json_schema": {"name": "P", "strict": True,
        ...        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}
        >>> strict_response_format(fmt)["json_schema"]["schema"]
        {'type': 'object', 'properties': {'a': {'type': 'integer'}}, 'required': ['a'], \
'additionalProperties': False}
    """
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return response_format
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping) or spec.get("strict") is not True:
        return response_format
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        return response_format
    name = spec.get("name")
    titled = {**schema}
    if not isinstance(titled.get("title"), str):
        titled["title"] = name if isinstance(name, str) and name else "response"
    try:
        made = response_format_for(copy.deepcopy(titled), "json_schema", True)
    except (TypeError, ValueError, KeyError):  # not a schema LangChain can convert: as given
        return response_format
    closed = made["json_schema"]["schema"]
    strict: dict[str, Any] = {}
    for key, value in schema.items():
        if key in closed:
            strict[key] = closed[key]
        elif key in ("title", "description"):
            strict[key] = value  # moved out to the tool's name and description: put back
    for key, value in closed.items():
        strict.setdefault(key, value)
    if strict == schema:
        return response_format
    return {**response_format, "json_schema": {**spec, "schema": strict}}


_VALUE_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
"""JSON Schema keywords whose values are data, not schemas: never walked into."""


_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
"""JSON Schema keywords whose values map names (any name, ``default`` too) to schemas."""


def _drop_null_defaults(node: Any) -> None:
    """Remove ``"default": null`` throughout a JSON schema, in place: a nullable property is
    required in strict mode anyway, and OpenAI's strict mode does not take defaults."""
    if isinstance(node, dict):
        if "default" in node and node["default"] is None:
            del node["default"]
        for key, value in node.items():
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                for schema in value.values():
                    _drop_null_defaults(schema)
            elif key not in _VALUE_KEYWORDS:
                _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


def structured_runnable(
    llm: ChatPolicyRoute,
    schema: Mapping[str, Any] | type,
    *,
    method: StructuredMethod,
    include_raw: bool,
    strict: bool | None,
    parallel_tool_calls: bool | None = None,
) -> Runnable[LanguageModelInput, Any]:
    """``llm`` bound to ask for ``schema`` and piped into the matching parser.

    With ``include_raw`` the result is ``{"raw", "parsed", "parsing_error"}`` and a parsing
    failure is returned in ``parsing_error`` instead of raised (as langchain-openai does); a
    stream yields the ``raw`` chunks, then ``parsed`` and ``parsing_error`` once, at its end.
    With ``function_calling``, an answer without a valid call of the schema's tool (plain text,
    or arguments that are not JSON) is a parsing failure, not a ``None`` result. Without
    ``include_raw``, a stream yields the partial objects as they grow and, when the whole
    answer does not parse, raises at its end what ``invoke`` raises.

    As langchain-openai's ``ChatOpenAI``: ``function_calling`` sends ``parallel_tool_calls:
    false`` unless ``parallel_tool_calls`` or the model's ``model_kwargs`` set it, to each
    deployment that takes it (see :mod:`policyroute.execution.one_tool_call`);
    ``json_schema`` with a pydantic class and no ``strict`` asks for strict mode, where strict
    mode can express its schema (see :mod:`policyroute.langchain_.strict_schema`).
    """
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    # LangChain traces the requested schema under this key (and strips it before the call).
    ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    bound: Runnable[LanguageModelInput, Any]
    parser: Runnable[Any, Any]
    if parallel_tool_calls is not None and method != "function_calling":
        raise RequestError(
            f"parallel_tool_calls applies to method='function_calling' only (method={method!r}"
            " offers the model no tools)"
        )
    if method == "function_calling":
        name = convert_to_openai_tool(schema, strict=strict)["function"]["name"]
        one_call: dict[str, Any] = {}
        if parallel_tool_calls is None and PARALLEL not in llm.model_kwargs:
            # As ChatOpenAI: one call of the schema's tool, not several the parser would drop,
            # asked of each deployment that takes the parameter (see
            # policyroute.execution.one_tool_call).
            one_call[ONE_TOOL_CALL_KEY] = True
        bound = llm.bind_tools(
            [schema],
            tool_choice=name,
            strict=strict,
            parallel_tool_calls=parallel_tool_calls,
            ls_structured_output_format=ls_format,
            **one_call,
        )
        if is_pydantic:
            parser = _RequiredPydanticTool(
                tools=[schema],  # type: ignore[list-item]
                first_tool_only=True,
                refused_as=name,
            )
        else:
            parser = _RequiredKeyTool(key_name=name, first_tool_only=True, refused_as=name)
    elif method in ("json_schema", "json_mode"):
        carried: dict[str, Any] = {}
        if method == "json_mode":
            # Claude has no JSON mode; a deployment speaking Anthropic's format gets the
            # schema instead (policyroute.execution.response_format), the others never see it.
            carried[SCHEMA_KEY] = response_format_for(schema, "json_schema", None)
        response_format = response_format_for(schema, method, strict)
        if (
            method == "json_schema"
            and strict is None
            and is_pydantic
            and strict_expressible(response_format["json_schema"]["schema"])
        ):
            # As ChatOpenAI: a pydantic class's schema goes strict, where strict mode can
            # say what it says (see policyroute.langchain_.strict_schema).
            response_format = response_format_for(schema, method, True)
        bound = llm.bind(
            response_format=response_format,
            ls_structured_output_format=ls_format,
            **carried,
        )
        asked = carried.get(SCHEMA_KEY, response_format)["json_schema"]["name"]
        parser = (
            _WholePydantic(pydantic_object=schema, refused_as=asked)  # type: ignore[arg-type]
            if is_pydantic
            else _WholeJson(refused_as=asked)
        )
    else:
        raise RequestError(
            f"unknown structured output method {method!r};"
            " use 'function_calling', 'json_schema' or 'json_mode'"
        )
    if not include_raw:
        return bound | parser
    return RunnableMap(raw=bound) | _raw_then_parsed(parser)


def _raw_then_parsed(parser: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """Pass the ``raw`` chunks on as they come, then parse the whole answer once and add
    ``parsed`` and ``parsing_error``.

    LangChain's usual ``RunnablePassthrough.assign(...).with_fallbacks(...)`` streams the
    answer through the parser's cumulative transform, which drops what it cannot parse
    without a word: a streamed garbage answer ended with neither ``parsed`` nor an error.
    """

    def transform(chunks: Iterator[Mapping[str, Any]]) -> Iterator[AddableDict]:
        raw: Any = None
        for chunk in chunks:
            raw = chunk["raw"] if raw is None else raw + chunk["raw"]
            yield AddableDict(raw=chunk["raw"])
        try:
            yield AddableDict(parsed=parser.invoke(raw), parsing_error=None)
        except Exception as exc:  # what with_fallbacks caught: any parser failure
            yield AddableDict(parsed=None, parsing_error=exc)

    async def atransform(chunks: AsyncIterator[Mapping[str, Any]]) -> AsyncIterator[AddableDict]:
        raw: Any = None
        async for chunk in chunks:
            raw = chunk["raw"] if raw is None else raw + chunk["raw"]
            yield AddableDict(raw=chunk["raw"])
        try:
            yield AddableDict(parsed=await parser.ainvoke(raw), parsing_error=None)
        except Exception as exc:
            yield AddableDict(parsed=None, parsing_error=exc)

    return RunnableGenerator(transform, atransform, name="parse_with_raw")
