"""``additional_kwargs["parsed"]``: the answer read into the pydantic class a call passed as
``response_format``, as langchain-openai's ``ChatOpenAI`` gives it.

``llm.invoke(messages, response_format=Person)`` sends ``Person``'s JSON schema and returns an
``AIMessage`` whose ``additional_kwargs["parsed"]`` is a ``Person`` (``None`` when the model
answered without text: a refusal, tool calls only). Streamed, the last chunk carries it. An
answer that does not fit the class (cut short by ``max_tokens``, a field missing) raises
LangChain's ``OutputParserException`` with the text as its ``llm_output``. A ``response_format``
dict, and ``with_structured_output`` (which parses for itself), leave ``additional_kwargs`` as
it was.

Example:
    >>> from pydantic import BaseModel
    >>> class Person(BaseModel):
    ...     name: str
    >>> target = parse_target(Person)
    >>> parsed_answer(target, '{"name": "Ada"}')
    Person(name='Ada')
    >>> parse_target({"type": "json_object"}) is None
    True
"""

from __future__ import annotations

from typing import Any

from langchain_core.exceptions import OutputParserException
from pydantic import BaseModel, ValidationError

__all__ = ["PARSED_KEY", "parse_target", "parsed_answer"]

PARSED_KEY = "parsed"


def parse_target(response_format: Any) -> type[BaseModel] | None:
    """``response_format`` when it is a pydantic model class, else ``None``."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format
    return None


def parsed_answer(target: type[BaseModel], text: Any) -> BaseModel | None:
    """``text`` (an answer's content) read into ``target``; ``None`` when there is no text.

    Raises ``OutputParserException`` naming ``target`` when the text does not fit it.

    Example:
        >>> from pydantic import BaseModel
        >>> class Age(BaseModel):
        ...     years: int
        >>> parsed_answer(Age, None) is None
        True
        >>> parsed_answer(Age, '{"years": "old"}')
        Traceback (most recent call last):
        ...
        langchain_core.exceptions.OutputParserException: the answer does not fit Age: ...
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return target.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise OutputParserException(
            f"the answer does not fit {target.__name__}: {where}: {first['msg']}"
            f" ({exc.error_count()} error(s))",
            llm_output=text,
        ) from exc
