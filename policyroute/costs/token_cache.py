"""Prompt token counts that do not re-tokenize a conversation's history on every call.

An agent sends its whole conversation on every turn, and a budget guard counts the prompt of
every attempt: with litellm's counter that is about 2.5 ms of CPU per 10,000 tokens, on the
event loop, growing with the conversation. litellm's count of a message list is additive: the
list counts its messages one by one plus a constant (the reply priming), which is also the count
of an empty list::

    count(A + B) == count(A) + count(B) - count([])

So a list whose first messages were counted before (the previous turn) is counted from that
stored prefix plus its new messages, and the result is exact. ``tests/costs`` checks the identity
against the installed litellm on random conversations; a litellm release that broke it would
fail there.

The cache keeps the counts of recent message lists per model. Keys hold the messages' content
(strings are shared with the messages, not copied) and are compared by value, so a hit is
always the same prompt. Lists are probed from the longest: the whole list, then up to
:data:`PROBES` shorter prefixes.

Example:
    >>> counts = PrefixCounts()
    >>> def words(messages):  # stands in for litellm's counter: 3 + words per message
    ...     return 3 + sum(len(str(m["content"]).split()) for m in messages)
    >>> turn1 = [{"role": "user", "content": "hello there"}]
    >>> counts.count("m", turn1, words)
    5
    >>> counts.count("m", [*turn1, {"role": "assistant", "content": "hi"}], words)
    6
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from policyroute._fork import reset_after_fork

__all__ = ["PROBES", "PrefixCounts", "freeze", "message_key", "tools_key"]

PROBES = 8
"""Shorter prefixes tried after the whole list: an agent's turn adds a few messages."""

_SIMPLE_KEYS = frozenset({"role", "content", "name"})
_SYSTEM_PROBE: Mapping[str, Any] = {"role": "system", "content": ""}


def freeze(value: Any) -> Any:
    """A hashable value equal for equal JSON values and different for different ones.

    Mappings keep their key order: litellm counts some of them (tool inputs, tool schemas)
    as their text, whose tokens depend on it.

    Example:
        >>> freeze({"a": [1, True]}) == freeze({"a": [1, True]})
        True
        >>> freeze([1]) == freeze([True]), freeze({"a": 1, "b": 2}) == freeze({"b": 2, "a": 1})
        (False, False)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ("{", tuple((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("[", tuple(freeze(v) for v in value))
    if value is None or isinstance(value, (bool, int, float)):
        # The type is part of the key: 1, 1.0 and True are equal in Python, not as tokens.
        return (type(value).__name__, value)
    raise TypeError(f"cannot key a {type(value).__name__} in a message")


def message_key(message: Mapping[str, Any]) -> Any:
    """A hashable key equal for messages that tokenize the same.

    Plain text messages (role, string content, optional name) key as a flat tuple that
    reuses the content string; anything else as its frozen JSON structure.

    Example:
        >>> message_key({"role": "user", "content": "hi"})
        ('user', 'hi', None)
    """
    content = message.get("content")
    if isinstance(content, str) and message.keys() <= _SIMPLE_KEYS:
        return (message.get("role"), content, message.get("name"))
    return freeze(message)


# Compact, and every character as itself: the text is a key, never shown or sent.
_TOOLS_TEXT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def tools_key(tools: Sequence[Mapping[str, Any]]) -> str | None:
    """A key equal for tool lists that tokenize the same: their JSON text, ``None`` for tools
    that are not JSON.

    Like :func:`freeze`, it keeps each mapping's key order and tells ``1``, ``1.0`` and
    ``true`` apart; made by the C encoder, it takes about a third of the time of freezing
    an agent's tool list, which is rebuilt on every call.

    Example:
        >>> tools_key([{"type": "function", "function": {"name": "f"}}])
        '[{"type":"function","function":{"name":"f"}}]'
        >>> tools_key([{"a": 1}]) == tools_key([{"a": True}]), tools_key([{"a": {1, 2}}])
        (False, None)
    """
    try:
        return _TOOLS_TEXT.encode(list(tools))
    except (TypeError, ValueError, RecursionError):  # not JSON, circular, nested too deep
        return None


def _chars(key: Any) -> int:
    """The characters of the strings a key holds."""
    if isinstance(key, str):
        return len(key)
    if isinstance(key, tuple):
        return sum(_chars(part) for part in key)
    return 0


class PrefixCounts:
    """A bounded, thread-safe store of message-list token counts, per model.

    Least recently used entries go first once there are ``max_entries`` of them or their keys
    hold ``max_chars`` characters in all. Keys refer to the messages' strings; a string two
    entries share (a conversation's history, counted again each turn) is counted once per
    entry, so the real memory is at most about ``max_chars`` bytes (ASCII text) and usually
    far less. Large payloads rebuilt on every call (a base64 image's data URL) are copies,
    which is why the bound is on characters and not only on entries.
    """

    def __init__(self, max_entries: int = 1024, max_chars: int = 32_000_000) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[Any, tuple[int, int]] = OrderedDict()
        self._chars = 0
        self._empty: dict[str, int] = {}
        self._lock = threading.Lock()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at fork(), mid-update: start afresh
        # (these are only counts that can be made again).
        self._lock = threading.Lock()
        self._entries = OrderedDict()
        self._chars = 0
        self._empty = {}

    def _get(self, key: Any) -> int | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def _put(self, key: Any, value: int, chars: int) -> None:
        if chars > self.max_chars:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._chars -= previous[1]
            self._entries[key] = (value, chars)
            self._chars += chars
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._chars -= evicted

    @property
    def chars(self) -> int:
        """The characters the kept keys hold (each entry's strings counted for that entry)."""
        return self._chars

    def clear(self) -> None:
        """Forget every count."""
        with self._lock:
            self._entries.clear()
            self._chars = 0
            self._empty.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def count(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        counter: Callable[[Sequence[Mapping[str, Any]]], int],
    ) -> int:
        """The count ``counter`` gives ``messages``, from stored prefixes where it can.

        ``counter`` must count a message list for ``model`` and be additive as described in
        the module docstring (litellm's counter is). Messages that cannot be keyed are
        counted directly.
        """
        try:
            keys = [message_key(m) for m in messages]
        except TypeError:
            return counter(messages)
        whole = (model, tuple(keys))
        found = self._get(whole)
        if found is not None:
            return found
        total: int | None = None
        for length in range(len(keys) - 1, max(0, len(keys) - 1 - PROBES), -1):
            prefix = self._get((model, tuple(keys[:length])))
            if prefix is not None:
                total = prefix + counter(messages[length:]) - self._empty_count(model, counter)
                break
        if total is None:
            total = counter(messages)
        self._put(whole, total, sum(_chars(key) for key in keys))
        return total

    def tool_tokens(
        self,
        model: str,
        tools: Sequence[Mapping[str, Any]],
        with_system: bool,
        counter: Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]] | None], int],
    ) -> int:
        """What ``tools`` add to the count of a message list for ``model``.

        ``counter(messages, tools)`` counts a list with tools. litellm's tool overhead depends
        on whether the list holds a system message, so the difference is measured on an empty
        list or on a list of one empty system message, as ``with_system`` says. ``counter`` is
        called only when the figure is not kept already.

        Example:
            >>> counts = PrefixCounts()
            >>> def count(messages, tools):  # 12 for tools, 4 less beside a system message
            ...     return 3 + len(messages) + (8 if tools and messages else 12 if tools else 0)
            >>> counts.tool_tokens("m", [{"type": "function"}], True, count)
            8
        """
        text = tools_key(tools)
        key = None if text is None else ("tools", model, text, with_system)
        if key is not None:
            found = self._get(key)
            if found is not None:
                return found
        base = [_SYSTEM_PROBE] if with_system else []
        extra = counter(base, tools) - counter(base, None)
        if key is not None:
            self._put(key, extra, _chars(key))
        return extra

    def _empty_count(
        self, model: str, counter: Callable[[Sequence[Mapping[str, Any]]], int]
    ) -> int:
        empty = self._empty.get(model)
        if empty is None:
            empty = self._empty[model] = counter([])
        return empty
