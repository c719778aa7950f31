"""The chat messages of a call, checked before it is routed, priced or sent.

litellm does not check a message's role or whether it has content: OpenAI answers a role it
does not know (``"bot"``), a user or system message without content, or a tool message that
answers no call with a 400, after the budget reservation was made, and litellm's conversions
for other providers fail on them before sending (Anthropic's with a ``KeyError``, Gemini's
with a bare ``Exception``). Each is refused here with a
:class:`~policyroute.errors.RequestError` naming the message and the field:

- ``role`` is one of OpenAI's: ``system``, ``developer``, ``user``, ``assistant``, ``tool``,
  ``function``, the roles litellm translates for the other providers (it maps no other);
- a ``system``, ``developer``, ``user`` or ``tool`` message has ``content`` (a string, ``""``
  included, or a list of parts);
- an ``assistant`` message has ``content`` unless it carries something else to send back:
  ``tool_calls``, ``function_call``, ``audio``, ``refusal``, thinking blocks, reasoning...;
- a ``function`` message has the ``name`` of the function it answers;
- a ``tool`` message names (``tool_call_id``) a call of the latest assistant message before
  it, unless ``litellm.modify_params`` is on (litellm then drops such a message for the
  providers that refuse it);
- tool calls and content parts have the shape :func:`check_parts` checks.

Everything else in a message (``name``, ``cache_control``, ``thinking_blocks``, provider
fields) is passed on untouched, for the provider to judge.

Example:
    >>> check_messages([{"role": "system", "content": "be brief"}, {"role": "user", "content": ""}])
    >>> try:
    ...     check_messages([{"role": "human", "content": "hi"}])
    ... except RequestError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    request field 'messages[0].role' is 'human' (did you mean 'user'?), which no provider takes:
    a message's role is 'system', 'developer', 'user', 'assistant', 'tool' or 'function'
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from policyroute._lazy import import_litellm
from policyroute._written import written
from policyroute.errors import RequestError

__all__ = ["ROLES", "check_messages", "check_parts", "shown"]

ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool", "function")
"""The roles a message may have: OpenAI's, which litellm translates for every provider."""

_ROLES = frozenset(ROLES)
_ROLES_TEXT = "'system', 'developer', 'user', 'assistant', 'tool' or 'function'"
# Roles of other APIs a history is sometimes converted from: LangChain's message types,
# Gemini's and Cohere's names for the model's turns.
_ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatbot": "assistant",
}
# The roles whose message is its content: without it there is nothing to send.
_CONTENT_ROLES = frozenset({"system", "developer", "user", "tool"})
# Fields of an assistant message that are not something it says: with only these and no
# content, the turn is empty.
_NOT_SAID = frozenset({"role", "name", "content", "cache_control", "prefix"})


def shown(value: Any) -> str:
    """``value`` as an error message shows it: its ``repr`` with nulls and booleans spelled
    as the request wrote them (``null``, ``true``), cut to 60 characters.

    Example:
        >>> shown("x" * 100)[-5:], shown(None), shown([True])
        ('xx...', 'null', '[true]')
    """
    return written(value, limit=60)


def check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """Raise :class:`RequestError` for the first message of ``messages`` that no provider
    takes (see the module's docstring for the rules), naming it by its index.

    Example:
        >>> try:
        ...     check_messages([{"role": "user", "content": "hi"}, {"role": "assistant"}])
        ... except RequestError as exc:
        ...     print(str(exc)[:68])
        request field 'messages[1].content' is missing: an assistant message
    """
    # The ids of the calls a tool message may answer: those of the latest assistant message.
    calls: frozenset[str] = frozenset()
    latest: int | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            _refuse_role(i, role)
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list, tuple)):
            raise RequestError(
                f"request field 'messages[{i}].content' must be a string or a list of parts,"
                f" got {type(content).__name__}"
            )
        if content is None:
            _check_without_content(i, role, message)
        if role == "function":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise RequestError(
                    f"request field 'messages[{i}].name' must be the name of the function"
                    f" whose result this function message returns, got {shown(name)}"
                )
        _check_tool_turn(i, message)
        _check_content_parts(i, message)
        if role == "assistant":
            latest = i
            calls = _call_ids(message.get("tool_calls"))
        elif role == "tool" and message["tool_call_id"] not in calls:
            _refuse_unanswerable(i, message["tool_call_id"], latest)


def _refuse_role(i: int, role: Any) -> NoReturn:
    where = f"request field 'messages[{i}].role'"
    if not isinstance(role, str) or not role:
        raise RequestError(f"{where} must be a non-empty string such as 'user', got {shown(role)}")
    guess = role.lower() if role.lower() in _ROLES else _ROLE_ALIASES.get(role.lower())
    hint = f" (did you mean {guess!r}?)" if guess else ""
    raise RequestError(
        f"{where} is {shown(role)}{hint}, which no provider takes: a message's role is"
        f" {_ROLES_TEXT}"
    )


def _check_without_content(i: int, role: str, message: Mapping[str, Any]) -> None:
    where = f"request field 'messages[{i}].content' is missing"
    if role in _CONTENT_ROLES:
        what = "the call's result" if role == "tool" else "a string ('' for none)"
        raise RequestError(f"{where}: a {role} message needs content, {what} or a list of parts")
    if role == "assistant" and not any(
        key not in _NOT_SAID and _given(value) for key, value in message.items()
    ):
        raise RequestError(
            f"{where}: an assistant message needs content unless it carries tool_calls,"
            " function_call, audio, a refusal or thinking blocks; an empty turn is content ''"
        )


def _given(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (str, bytes, Sequence, Mapping)):
        return len(value) > 0
    return True


def _call_ids(calls: Any) -> frozenset[str]:
    # Checked by _check_tool_turn: a list of mappings, each with a string id.
    if not calls:
        return frozenset()
    return frozenset(call["id"] for call in calls)


def _refuse_unanswerable(i: int, call_id: str, latest: int | None) -> None:
    if _litellm_fixes_tool_turns():
        return
    where = f"request field 'messages[{i}].tool_call_id'"
    if latest is None:
        before = "no assistant message comes before it"
    else:
        before = f"the latest assistant message before it, messages[{latest}], made no such call"
    raise RequestError(
        f"{where} is {shown(call_id)}, but {before}: a tool message answers a tool call of the"
        " assistant turn it follows, by that call's id"
    )


def _litellm_fixes_tool_turns() -> bool:
    """Whether litellm drops a tool message that answers no call before sending
    (``litellm.modify_params``, for the providers that refuse one)."""
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        return bool(getattr(litellm, "modify_params", False))
    # Not imported yet: it will read its setting from the environment as litellm does.
    return bool(os.environ.get("LITELLM_MODIFY_PARAMS"))


def check_parts(messages: Sequence[Mapping[str, Any]]) -> None:
    """Raise :class:`RequestError` when a content part of ``messages`` is malformed: every part
    is a mapping with a string ``type``, in a user message one litellm takes there (``text``,
    ``image_url``, ``file``, ``input_audio``...), and a ``text`` part's ``text`` is a string.
    Tool turns are checked too: a ``tool`` message names the call it answers
    (``tool_call_id``), and each of an assistant's ``tool_calls`` has an ``id`` and a
    ``function`` with a ``name``; every provider refuses them otherwise (some inside litellm,
    with errors that look like theirs).

    Example:
        >>> try:
        ...     check_parts([{"role": "user", "content": [{"type": "text", "text": 5}]}])
        ... except RequestError as exc:
        ...     print(exc)
        request field 'messages[0].content[0].text' must be a string, got 5
    """
    for i, message in enumerate(messages):
        _check_tool_turn(i, message)
        _check_content_parts(i, message)


def _check_content_parts(i: int, message: Mapping[str, Any]) -> None:
    content = message.get("content")
    if isinstance(content, (list, tuple)):
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            if not isinstance(part, Mapping):
                raise RequestError(
                    f"request field '{where}' must be a mapping with a 'type', got {shown(part)}"
                )
            kind = part.get("type")
            if not isinstance(kind, str) or not kind:
                raise RequestError(
                    f"request field '{where}.type' must be a non-empty string, got {shown(kind)}"
                )
            if kind == "text" and not isinstance(part.get("text"), str):
                raise RequestError(
                    f"request field '{where}.text' must be a string, got {shown(part.get('text'))}"
                )
            if message.get("role") == "user" and not _user_part(kind):
                raise RequestError(
                    f"request field '{where}.type' is {kind!r}, which a user message cannot"
                    f" carry; litellm takes {', '.join(sorted(_litellm_user_parts()))}"
                )


# The part types nearly every user message has: told apart without importing litellm.
_USUAL_USER_PARTS = frozenset({"text", "image_url"})


def _user_part(kind: str) -> bool:
    """Whether litellm takes a part of type ``kind`` in a user message. It refuses the others
    before sending with a bare ``Exception`` ("Invalid user message at index 0"), which reads
    as a connection failure: retried, fallen over, counted against the deployment's breaker.

    Example:
        >>> _user_part("text"), _user_part("file"), _user_part("refusal")
        (True, True, False)
    """
    return kind in _USUAL_USER_PARTS or kind in _litellm_user_parts()


@functools.cache
def _litellm_user_parts() -> frozenset[str]:
    """The part types a user message may carry, as the installed litellm lists them."""
    import_litellm()
    openai_types = importlib.import_module("litellm.types.llms.openai")
    return frozenset(openai_types.ValidUserMessageContentTypes)


def _check_tool_turn(i: int, message: Mapping[str, Any]) -> None:
    if message.get("role") == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise RequestError(
                f"request field 'messages[{i}].tool_call_id' must be the id of the assistant"
                f" tool call this tool message answers, got {shown(call_id)}"
            )
    calls = message.get("tool_calls")
    if calls is None or message.get("role") != "assistant":
        return
    if isinstance(calls, (str, bytes)) or not isinstance(calls, Sequence):
        raise RequestError(
            f"request field 'messages[{i}].tool_calls' must be a list of tool calls,"
            f" got {shown(calls)}"
        )
    for j, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call, Mapping):
            raise RequestError(f"request field '{where}' must be a mapping, got {shown(call)}")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise RequestError(
                f"request field '{where}.id' must be a non-empty string (the tool message"
                f" answering it names it), got {shown(call_id)}"
            )
        function = call.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise RequestError(
                f"request field '{where}.function.name' must be a non-empty string,"
                f" got {shown(name)}"
            )
