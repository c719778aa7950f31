"""The facts routing conditions read from a request, computed lazily and at most once.

A :class:`RequestFacts` wraps one :class:`~policyroute.request.Request`. Cheap facts
(``metadata.*``, ``params.*``, ``tags``, ``model``, ``stream``, ...) are read straight from the
request; facts that cost something (``input_tokens``, ``has_images``, ``last_user_message``) are
computed on first use and cached on the instance, so a condition that never runs never pays.
A fact whose value is ``None`` (or that the request does not have) is *absent*: :data:`MISSING`;
so is ``tags`` when the call has none.
Which facts exist, and their types, is :mod:`policyroute.policy.facts_catalog`'s to say.

Example:
    >>> facts = RequestFacts(request_from_mapping(
    ...     {"messages": [{"role": "user", "content": "hi"}], "metadata": {"tier": "gold"}}))
    >>> facts.get("metadata.tier"), facts.get("message_count"), facts.get("metadata.nope")
    ('gold', 1, MISSING)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from policyroute.errors import RequestError
from policyroute.message_checks import check_messages
from policyroute.policy.facts_catalog import DERIVED_FACTS, FACT_PREFIXES, is_known_fact
from policyroute.policy.hints import with_hints
from policyroute.request import Request
from policyroute.request_checks import check_call, check_facts

__all__ = [
    "CALL_PARAM_KEYS",
    "CHEAP_FACTS",
    "DERIVED_FACTS",
    "FACT_PREFIXES",
    "MISSING",
    "FactGetter",
    "RequestFacts",
    "TokenCounter",
    "default_token_counter",
    "fact_getter",
    "is_known_fact",
    "metadata_at",
    "parse_messages",
    "request_from_mapping",
]


class _Missing:
    """The value of an absent fact; falsy, equal only to itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""Returned by :meth:`RequestFacts.get` for an absent fact (``None`` counts as absent)."""

CHEAP_FACTS: Final[frozenset[str]] = frozenset(
    {"message_count", "has_tools", "stream", "model", "run_id", "tags"}
)
"""Derived facts that cost next to nothing (safe to read for every request, e.g. to index).

Listed rather than derived from the catalogue, so that a new fact is costly until shown cheap.
"""

CALL_PARAM_KEYS: Final[frozenset[str]] = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "reasoning_effort",
        "parallel_tool_calls",
        "extra_headers",
        "timeout",
    }
)
"""Call parameters :func:`request_from_mapping` also accepts at the top level."""

TokenCounter = Callable[[Request], int]
FactGetter = Callable[["RequestFacts"], Any]

_UNSET: Final[Any] = object()
_IMAGE_PART_TYPES: Final[frozenset[str]] = frozenset({"image_url", "image", "input_image"})
_LIST_TYPES: Final = (list, tuple)
# A byte-level BPE token is at least one byte, so UTF-8 bytes bound the text's tokens; these
# cover what token counters add on top: per-message framing and an image's tile estimate.
_PER_MESSAGE_OVERHEAD: Final = 8
_PER_IMAGE_ALLOWANCE: Final = 4096
_PER_TOOL_OVERHEAD: Final = 64
_STAND_IN_TOKENIZER: Final = "gpt-4o"


def default_token_counter(request: Request) -> int:
    """Count the request's input tokens as budget estimates do
    (:func:`~policyroute.costs.estimate.count_input_tokens`: litellm's counter, audio bounded
    from its length).

    The request's model names the tokenizer; without one, ``gpt-4o``'s stands in. Images are
    counted with litellm's default size, so counting never fetches an image. Content that
    cannot be counted raises :class:`~policyroute.errors.RequestError`.
    """
    # Imported here: policies that never test input_tokens never load the counter.
    from policyroute.costs.estimate import count_input_tokens

    return count_input_tokens(
        request.model or _STAND_IN_TOKENIZER, request.messages, request.tools or None
    )


def _is_image_part(part: Any) -> bool:
    if not isinstance(part, Mapping):
        return False
    kind = part.get("type")
    if kind in _IMAGE_PART_TYPES:
        return True
    # LangChain's older blocks: {"type": "media" | "file", "mime_type": "image/png", ...}
    mime = part.get("mime_type")
    return kind in ("media", "file") and isinstance(mime, str) and mime.startswith("image/")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, _LIST_TYPES):
        texts = [
            p["text"]
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


def _json_size(value: Any) -> int:
    """Bytes of a value's JSON form (``ensure_ascii`` escapes bound any UTF-8 encoding)."""
    return len(json.dumps(value, default=str))


class RequestFacts:
    """The facts of one request, each computed at most once.

    ``token_counter`` replaces litellm's counter for ``input_tokens`` (tests, custom
    tokenizers). Instances are cheap and meant to live for one routing decision; they are not
    shared across threads.

    Example:
        >>> calls = []
        >>> facts = RequestFacts(Request(messages=[{"role": "user", "content": "hello"}]),
        ...                      token_counter=lambda r: calls.append(1) or 5)
        >>> facts.get("input_tokens"), facts.get("input_tokens"), len(calls)
        (5, 5, 1)
    """

    __slots__ = (
        "_has_images",
        "_input_tokens",
        "_last_user",
        "_messages_bound",
        "_size_bound",
        "_token_counter",
        "metadata",
        "params",
        "request",
    )

    def __init__(self, request: Request, token_counter: TokenCounter | None = None) -> None:
        self.request = request
        self.metadata = request.metadata
        self.params = request.params
        self._token_counter = token_counter
        self._input_tokens: Any = _UNSET
        self._has_images: Any = _UNSET
        self._last_user: Any = _UNSET
        self._messages_bound: Any = _UNSET
        self._size_bound: Any = _UNSET

    def get(self, path: str) -> Any:
        """The fact at ``path`` or :data:`MISSING`."""
        return fact_getter(path)(self)

    # ------------------------------------------------------------------ derived facts

    def input_tokens(self) -> int:
        """Input tokens of the request (messages and tools), counted once."""
        if self._input_tokens is _UNSET:
            counter = self._token_counter or default_token_counter
            self._input_tokens = int(counter(self.request))
        return int(self._input_tokens)

    def token_upper_bound(self) -> int:
        """A cheap bound no tokenizer count should exceed: UTF-8 bytes plus framing.

        Used to skip counting tokens when the request cannot come near any context window.
        """
        if self._size_bound is _UNSET:
            if self._messages_bound is _UNSET:
                self._scan()
            total = int(self._messages_bound)
            if self.request.tools:
                tools = list(self.request.tools)
                # counters render tools in their own prompt format, with framing per tool
                total += _json_size(tools) + _PER_TOOL_OVERHEAD * len(tools)
            self._size_bound = total
        return int(self._size_bound)

    def _scan(self) -> None:
        """One pass over the messages for their size bound and the image flag (the tools'
        size, which the image flag does not need, is added by :meth:`token_upper_bound`)."""
        total = 0
        images = 0
        for message in self.request.messages:
            total += _PER_MESSAGE_OVERHEAD
            content = message.get("content")
            if isinstance(content, str):
                # UTF-8 needs at most 4 bytes a character; ASCII exactly one
                total += len(content) if content.isascii() else 4 * len(content)
            elif isinstance(content, _LIST_TYPES):
                for part in content:
                    if _is_image_part(part):
                        images += 1
                    else:
                        total += _json_size(part)
            elif content is not None:
                total += _json_size(content)
            if len(message) > 2:  # beyond role and content: tool calls, names, ...
                total += sum(
                    _json_size(v) for k, v in message.items() if k not in ("role", "content")
                )
        self._messages_bound = total + images * _PER_IMAGE_ALLOWANCE
        self._has_images = images > 0

    def message_count(self) -> int:
        """Number of messages."""
        return len(self.request.messages)

    def has_tools(self) -> bool:
        """Whether the call offers tools."""
        return bool(self.request.tools)

    def has_images(self) -> bool:
        """Whether any message carries an image part, computed once."""
        if self._has_images is _UNSET:
            self._scan()
        return bool(self._has_images)

    def wants_json_schema(self) -> bool:
        """Whether the call asks for structured output (``response_format`` json_schema)."""
        fmt = self.request.response_format
        if fmt is None:
            return False
        if isinstance(fmt, Mapping):
            return fmt.get("type") == "json_schema"
        # pydantic models and other schema classes passed as response_format
        return isinstance(fmt, type)

    def stream(self) -> bool:
        """Whether the caller streams the answer."""
        return bool(self.request.stream)

    def model(self) -> Any:
        """The model the caller asked for, or :data:`MISSING`."""
        model = self.request.model
        return MISSING if model is None else model

    def run_id(self) -> Any:
        """The caller's run id, or :data:`MISSING`."""
        run_id = self.request.run_id
        return MISSING if run_id is None else run_id

    def tags(self) -> Any:
        """The call's tags (a list fact), or :data:`MISSING` when it has none.

        An empty list is no tags: ``tags: {exists: false}`` must hold for a call without
        any, and every other test reads an empty list as it reads an absent fact.
        """
        tags = self.request.tags
        return tags if tags else MISSING

    def last_user_message(self) -> Any:
        """Text of the last user message, or :data:`MISSING` when there is none."""
        if self._last_user is _UNSET:
            value: Any = MISSING
            for message in reversed(self.request.messages):
                if message.get("role") in ("user", "human"):
                    value = _text_of(message.get("content"))
                    break
            self._last_user = value
        return self._last_user


_DERIVED_GETTERS: Final[Mapping[str, FactGetter]] = {
    "input_tokens": RequestFacts.input_tokens,
    "message_count": RequestFacts.message_count,
    "has_tools": RequestFacts.has_tools,
    "has_images": RequestFacts.has_images,
    "stream": RequestFacts.stream,
    "model": RequestFacts.model,
    "last_user_message": RequestFacts.last_user_message,
    "run_id": RequestFacts.run_id,
    "tags": RequestFacts.tags,
}


def _missing(_: RequestFacts) -> Any:
    return MISSING


def _walk(value: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return MISSING
        value = value.get(key)
        if value is None:
            return MISSING
    return value


def _walk_dotted(value: Any, keys: tuple[str, ...]) -> Any:
    """:func:`_walk`, where a key missing at some level may also be written flat: the rest of
    the path, dots and all, as one key of that level (``{"user.id": "u1"}`` for
    ``user.id``). The nested path is read first; the flat key only when it holds nothing.

    Example:
        >>> _walk_dotted({"user.id": "u1"}, ("user", "id"))
        'u1'
        >>> _walk_dotted({"user": {"id": "u2"}, "user.id": "u1"}, ("user", "id"))
        'u2'
        >>> _walk_dotted({"user": {"profile.tier": "gold"}}, ("user", "profile", "tier"))
        'gold'
    """
    if not isinstance(value, Mapping):
        return MISSING
    head = value.get(keys[0])
    if len(keys) == 1:
        return MISSING if head is None else head
    found = MISSING if head is None else _walk_dotted(head, keys[1:])
    if found is MISSING:
        flat = value.get(".".join(keys))
        if flat is not None:
            return flat
    return found


def metadata_at(metadata: Mapping[str, Any], path: str) -> Any:
    """The value at the dotted ``path`` of ``metadata`` as routing conditions read
    ``metadata.<path>`` (nested first, else a flat key holding the rest of the path), or
    :data:`MISSING`; what budgets scoped ``per: metadata.<path>`` and their receipts read too.

    Example:
        >>> metadata_at({"user.id": "u1"}, "user.id"), metadata_at({}, "user")
        ('u1', MISSING)
    """
    return _walk_dotted(metadata, tuple(path.split(".")))


def _metadata_getter(keys: tuple[str, ...]) -> FactGetter:
    if len(keys) == 1:
        (key,) = keys

        def get_one(facts: RequestFacts) -> Any:
            value = facts.metadata.get(key)
            return MISSING if value is None else value

        return get_one

    def get_deep(facts: RequestFacts) -> Any:
        # Metadata keys often hold dots themselves (OpenTelemetry's "user.id", "session.id"):
        # such a key answers the path its dots spell when the nested one holds nothing,
        # instead of a condition on ``metadata.user.id`` never matching, silently.
        return _walk_dotted(facts.metadata, keys)

    return get_deep


def _params_getter(keys: tuple[str, ...]) -> FactGetter:
    def get(facts: RequestFacts) -> Any:
        return _walk(facts.params, keys)

    return get


@functools.lru_cache(maxsize=4096)
def fact_getter(path: str) -> FactGetter:
    """A function reading the fact at ``path`` from :class:`RequestFacts` (unknown: MISSING).

    Getters are pure and cached by path, so compiled conditions share them. A ``metadata``
    path is read nested first, then, where that holds nothing, as a flat key holding the rest
    of the path, dots and all (:func:`_walk_dotted`); ``params`` paths are read nested only.

    Example:
        >>> fact_getter("metadata.user.tier")(RequestFacts(
        ...     Request(messages=[], metadata={"user": {"tier": "gold"}})))
        'gold'
        >>> fact_getter("metadata.user.tier")(RequestFacts(
        ...     Request(messages=[], metadata={"user.tier": "silver"})))
        'silver'
    """
    derived = _DERIVED_GETTERS.get(path)
    if derived is not None:
        return derived
    # the same rule the policy checks apply, so routing resolves exactly the facts they accept
    if not is_known_fact(path):
        return _missing
    head, _, rest = path.partition(".")
    keys = tuple(rest.split("."))
    return _metadata_getter(keys) if head == "metadata" else _params_getter(keys)


# --------------------------------------------------------------------------- mappings


_REQUEST_KEYS: Final[frozenset[str]] = frozenset(
    {
        "messages",
        "model",
        "params",
        "tools",
        "tool_choice",
        "response_format",
        "stream",
        "metadata",
        "tags",
        "run_id",
        "request_id",
    }
)


def parse_messages(value: Any) -> list[Mapping[str, Any]]:
    """Chat messages checked for shape: a list of mappings that
    :func:`~policyroute.message_checks.check_messages` accepts (a known ``role``, ``content``
    where the role needs it, tool turns that match); a bare string is one user message.
    Raises :class:`RequestError`.

    Example:
        >>> parse_messages("hi")
        [{'role': 'user', 'content': 'hi'}]
    """
    if value is None:
        return []
    if isinstance(value, str):
        # a bare string is one user message: convenient in policy test files
        return [{"role": "user", "content": value}]
    if not isinstance(value, _LIST_TYPES):
        raise RequestError(
            "request field 'messages' must be a list of messages or a string (one user"
            f" message), got {type(value).__name__}"
        )
    out: list[Mapping[str, Any]] = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise RequestError(
                f"request field 'messages[{i}]' must be a mapping with 'role' and 'content',"
                f" got {'null' if message is None else type(message).__name__}"
            )
        out.append(dict(message))
    check_messages(out)
    return out


def _mapping(field: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestError(f"request field '{field}' must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise RequestError(f"request field '{field}' has a non-string key {key!r}")
    return dict(value)


def request_from_mapping(data: Mapping[str, Any]) -> Request:
    """Build a :class:`Request` from a plain mapping (policy test files, ``explain --request``).

    Keys: ``messages`` (a list of message mappings, or a string for one user message),
    ``model``, ``params`` (call parameters such as ``temperature`` may also be given at the
    top level), ``tools``, ``tool_choice``, ``response_format``, ``stream``, ``metadata``,
    ``tags``, ``run_id``, ``request_id``. A wrong shape raises
    :class:`~policyroute.errors.RequestError` naming the field.

    Example:
        >>> r = request_from_mapping({"messages": "hi", "temperature": 0, "tags": ["beta"]})
        >>> r.messages, dict(r.params), r.tags
        ([{'role': 'user', 'content': 'hi'}], {'temperature': 0}, ('beta',))
    """
    if not isinstance(data, Mapping):
        raise RequestError(f"a request must be a mapping, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _REQUEST_KEYS and k not in CALL_PARAM_KEYS)
    if unknown:
        named = with_hints(unknown, _REQUEST_KEYS | CALL_PARAM_KEYS, quote=True)
        # A name close to none of them is most likely a call parameter of its own
        # (web_search_options, thinking): those go under params.
        elsewhere = (
            ""
            if named != with_hints(unknown, (), quote=True)
            else f"; other call parameters go under 'params' (params: {{{unknown[0]}: ...}})"
        )
        raise RequestError(
            f"unknown request field(s) {named}; expected some of "
            + ", ".join(sorted(_REQUEST_KEYS))
            + " or a common call parameter such as 'temperature'"
            + elsewhere
        )
    params = _mapping("params", data.get("params"))
    for key in CALL_PARAM_KEYS & data.keys():
        if key in params:
            raise RequestError(
                f"request parameter '{key}' is given both at the top level and in"
                " 'params'; give it once"
            )
        params[key] = data[key]

    model = data.get("model")
    tags = data.get("tags", ())
    if tags is None:  # written but empty in a file: not a list, as check_facts would let pass
        raise RequestError("request field 'tags' must be a list of strings, got None")
    check_facts(model, data.get("metadata"), tags)

    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, _LIST_TYPES) or not all(isinstance(t, Mapping) for t in tools):
            raise RequestError("request field 'tools' must be a list of tool mappings")
        tools = [dict(t) for t in tools]

    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(f"request field 'stream' must be true or false, got {stream!r}")

    run_id = data.get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        run_id = str(run_id)  # LangChain hands out UUIDs

    extra: dict[str, Any] = {}
    request_id = data.get("request_id")
    if request_id is not None:
        if not isinstance(request_id, str):
            raise RequestError("request field 'request_id' must be a string")
        extra["request_id"] = request_id

    check_call(
        params,
        tools=tools,
        tool_choice=data.get("tool_choice"),
        response_format=data.get("response_format"),
    )
    return Request(
        messages=parse_messages(data.get("messages")),
        model=model,
        params=params,
        tools=tools,
        tool_choice=data.get("tool_choice"),
        response_format=data.get("response_format"),
        stream=stream,
        metadata=_mapping("metadata", data.get("metadata")),
        tags=tuple(tags),
        run_id=run_id,
        **extra,
    )
