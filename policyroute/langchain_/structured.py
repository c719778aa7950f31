"""Structured output for :class:`~policyroute.langchain.ChatPolicyRoute`.

Three ways to ask a model for data in a shape: a forced tool call (``function_calling``), an
OpenAI ``response_format`` carrying the JSON schema (``json_schema``), or plain JSON mode
(``json_mode``). litellm translates the OpenAI forms for the other providers.

Example:
    >>> runnable = structured_runnable(llm, Joke, method="json_schema")  # doctest: +SKIP
    >>> runnable.invoke("tell me a joke")  # doctest: +SKIP
    Joke(setup='...', punchline='...')
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from policyroute.errors import RequestError

if TYPE_CHECKING:
    from policyroute.langchain import ChatPolicyRoute

__all__ = ["StructuredMethod", "structured_runnable"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
"""How structured output is asked for."""


def response_format_for(
    schema: Mapping[str, Any] | type, method: StructuredMethod, strict: bool | None
) -> dict[str, Any]:
    """The OpenAI ``response_format`` for ``json_schema`` or ``json_mode``.

    Example:
        >>> response_format_for({"title": "P", "type": "object", "properties": {}},
        ...                     "json_schema", None)["json_schema"]["name"]
        'P'
    """
    if method == "json_mode":
        return {"type": "json_object"}
    function = convert_to_openai_tool(schema, strict=strict)["function"]
    spec: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def structured_runnable(
    llm: ChatPolicyRoute,
    schema: Mapping[str, Any] | type,
    *,
    method: StructuredMethod,
    include_raw: bool,
    strict: bool | None,
) -> Runnable[LanguageModelInput, Any]:
    """``llm`` bound to ask for ``schema`` and piped into the matching parser.

    With ``include_raw`` the result is ``{"raw", "parsed", "parsing_error"}`` and a parsing
    failure is returned in ``parsing_error`` instead of raised (as langchain-openai does).
    """
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    # LangChain traces the requested schema under this key (and strips it before the call).
    ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    bound: Runnable[LanguageModelInput, Any]
    parser: Runnable[Any, Any]
    if method == "function_calling":
        name = convert_to_openai_tool(schema, strict=strict)["function"]["name"]
        bound = llm.bind_tools(
            [schema], tool_choice=name, strict=strict, ls_structured_output_format=ls_format
        )
        if is_pydantic:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    elif method in ("json_schema", "json_mode"):
        bound = llm.bind(
            response_format=response_format_for(schema, method, strict),
            ls_structured_output_format=ls_format,
        )
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if is_pydantic
            else JsonOutputParser()
        )
    else:
        raise RequestError(
            f"unknown structured output method {method!r};"
            " use 'function_calling', 'json_schema' or 'json_mode'"
        )
    if not include_raw:
        return bound | parser
    parsed = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parsed.with_fallbacks([unparsed], exception_key="parsing_error")
