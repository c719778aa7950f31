"""Bounds on the prompt tokens litellm's token counter does not measure: audio and video, and
what an assistant turn sends beyond its content (:func:`countable`).

litellm refuses ``input_audio`` parts and counts an audio or video file as one default-sized
image, which would let a long recording through a budget at a fraction of its cost. Each
audio or video part is bounded from its length instead:

- audio: the duration read from a WAV header, fixed for ``pcm16``, else assumed from a bitrate
  (4 kbit/s) below any speech codec's; :data:`AUDIO_TOKENS_PER_SECOND` tokens a second;
- video: the duration assumed from a low bitrate (50 kbit/s); :data:`VIDEO_TOKENS_PER_SECOND`
  tokens a second.

Each part's bound is capped at the model's input window where it is known: a provider never
bills more input than it accepts. Text is always counted exactly, never capped.

:func:`prompt_facts` reads in one pass over the messages what the estimate needs to know of
them: whether they hold audio or video, whether audio, and the longest prompt-cache lifetime
they ask for.

:func:`countable` shows litellm's counter what else a provider bills as prompt: the text of a
turn's ``thinking_blocks`` and the names and ids of its tool calls (litellm counts neither),
and bounds what no tokenizer can read, a thinking block's ``signature`` and a redacted block's
``data`` (encrypted thinking), at one token per byte: a byte-level BPE token is at least one
byte, so this holds for any text, and over-counts English thinking about fourfold.

Example:
    >>> pcm = {"type": "input_audio", "input_audio": {"data": "A" * 64000, "format": "pcm16"}}
    >>> media_tokens([{"role": "user", "content": [pcm]}])  # one second of audio
    32
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policyroute.errors import RequestError

__all__ = [
    "AUDIO_TOKENS_PER_SECOND",
    "VIDEO_TOKENS_PER_SECOND",
    "Media",
    "PromptFacts",
    "audio_input_tokens",
    "countable",
    "has_audio",
    "has_media",
    "media_of",
    "media_tokens",
    "prompt_facts",
    "without_media",
]

AUDIO_TOKENS_PER_SECOND = 32
"""Audio tokens per second of input: the highest rate chat models publish (Gemini's)."""

VIDEO_TOKENS_PER_SECOND = 300
"""Video tokens per second of input: Gemini's frame (258 at one frame a second) and sound."""

_AUDIO_BYTES_PER_SECOND = 500  # 4 kbit/s
_VIDEO_BYTES_PER_SECOND = 6_250  # 50 kbit/s
_PCM16_BYTES_PER_SECOND = 48_000  # OpenAI's pcm16: 24 kHz, 16-bit, mono


@dataclass(frozen=True, slots=True)
class Media:
    """An audio or video part: its base64 data (``None`` when missing) and format."""

    kind: Literal["audio", "video"]
    data: str | None
    format: str


def media_of(part: Any) -> Media | None:
    """The audio or video in a content part: an ``input_audio`` part, or a ``file`` part holding
    an ``audio/*`` or ``video/*`` data URL; ``None`` for anything else.

    Example:
        >>> media_of({"type": "file", "file": {"file_data": "data:video/mp4;base64,AAAA"}})
        Media(kind='video', data='AAAA', format='mp4')
    """
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, Mapping):
            return Media("audio", None, "")
        data = audio.get("data")
        fmt = str(audio.get("format") or "").lower()
        return Media("audio", data if isinstance(data, str) else None, fmt)
    if kind == "file":
        file = part.get("file")
        url = file.get("file_data") if isinstance(file, Mapping) else None
        if isinstance(url, str) and url.startswith(("data:audio/", "data:video/")):
            mime, _, data = url[5:].partition(";base64,")
            family, _, subtype = mime.partition("/")
            return Media("audio" if family == "audio" else "video", data or None, subtype.lower())
    return None


def _parts(messages: Sequence[Mapping[str, Any]]) -> Iterator[Media]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                media = media_of(part)
                if media is not None:
                    yield media


CacheTTL = Literal["5m", "1h"]


@dataclass(frozen=True, slots=True)
class PromptFacts:
    """What a prompt holds that changes its worst-case price.

    Attributes:
        media: some message holds an audio or video part (:func:`media_of`).
        audio: some message holds an audio part.
        cache_ttl: the longest prompt-cache lifetime a ``cache_control`` mark asks for
            (``"1h"`` for ``ttl: 1h``, else ``"5m"``), ``None`` without any mark.
    """

    media: bool = False
    audio: bool = False
    cache_ttl: CacheTTL | None = None


_NO_FACTS = PromptFacts()


def prompt_facts(messages: Sequence[Any], tools: Sequence[Any] | None = None) -> PromptFacts:
    """:class:`PromptFacts` of ``messages`` (and the cache marks of ``tools``), in one pass.

    Cache marks are read where Anthropic takes them: on a message or tool, on its content
    blocks, on its tool calls. Items that are not mappings hold nothing.

    Example:
        >>> mark = {"type": "ephemeral", "ttl": "1h"}
        >>> prompt_facts([{"role": "system", "content": "be brief", "cache_control": mark},
        ...               {"role": "user", "content": [{"type": "input_audio",
        ...                                             "input_audio": {"data": "AAAA"}}]}])
        PromptFacts(media=True, audio=True, cache_ttl='1h')
    """
    media = audio = marked = hour = False
    for items in (messages, tools or ()):
        for item in items:
            # type() first: messages are dicts, and the ABC check costs more than the rest.
            if type(item) is not dict and not isinstance(item, Mapping):
                continue
            if "cache_control" in item:
                marked = True
                hour = hour or _hour_long(item["cache_control"])
            content = item.get("content")
            if isinstance(content, list):
                for part in content:
                    if type(part) is not dict and not isinstance(part, Mapping):
                        continue
                    if "cache_control" in part:
                        marked = True
                        hour = hour or _hour_long(part["cache_control"])
                    kind = part.get("type")
                    if (
                        (kind == "input_audio" or kind == "file")
                        and items is messages
                        and not audio
                    ):
                        found = media_of(part)
                        if found is not None:
                            media = True
                            audio = found.kind == "audio"
            calls = item.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, Mapping) and "cache_control" in call:
                        marked = True
                        hour = hour or _hour_long(call["cache_control"])
    if not (media or marked):
        return _NO_FACTS
    return PromptFacts(media, audio, ("1h" if hour else "5m") if marked else None)


def _hour_long(mark: Any) -> bool:
    return isinstance(mark, Mapping) and mark.get("ttl") == "1h"


def has_media(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any message holds an audio or video part."""
    return next(_parts(messages), None) is not None


def has_audio(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any message holds an audio part."""
    return any(media.kind == "audio" for media in _parts(messages))


def _wav_byte_rate(data: str) -> int | None:
    """The byte rate in a base64 WAV's header, when its ``fmt `` chunk comes first."""
    try:
        header = base64.b64decode(data[:64], validate=False)
    except (ValueError, TypeError):
        return None
    if (
        len(header) < 32
        or header[:4] != b"RIFF"
        or header[8:12] != b"WAVE"
        or header[12:16] != b"fmt "
    ):
        # Other chunks (``bext``, ``LIST``) may come first: then the duration is bounded
        # like compressed audio rather than read from the wrong bytes.
        return None
    rate = int.from_bytes(header[28:32], "little")
    return rate if rate > 0 else None


def _tokens(media: Media) -> int:
    data = media.data
    if not data:
        raise RequestError(f"{media.kind} part without base64 data")
    size = len(data) * 3 // 4 - data[-2:].count("=")
    if media.kind == "video":
        return math.ceil(size / _VIDEO_BYTES_PER_SECOND * VIDEO_TOKENS_PER_SECOND)
    if media.format == "pcm16":
        rate = _PCM16_BYTES_PER_SECOND
    elif media.format in ("wav", "x-wav", "wave"):
        rate = _wav_byte_rate(data) or _AUDIO_BYTES_PER_SECOND
    else:
        rate = _AUDIO_BYTES_PER_SECOND
    return math.ceil(size / rate * AUDIO_TOKENS_PER_SECOND)


def media_tokens(messages: Sequence[Mapping[str, Any]], cap: int | None = None) -> int:
    """A bound on the tokens of the audio and video parts in ``messages``, each part's bound
    capped at ``cap`` (the model's input window) when given.

    Raises:
        RequestError: a part carries no data to measure.
    """
    bounds = (_tokens(media) for media in _parts(messages))
    return sum(bounds if cap is None else (min(bound, cap) for bound in bounds))


def audio_input_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """A bound on the tokens of the audio parts in ``messages`` alone.

    Example:
        >>> pcm = {"type": "input_audio", "input_audio": {"data": "A" * 64000, "format": "pcm16"}}
        >>> audio_input_tokens([{"role": "user", "content": [pcm]}])  # one second
        32
    """
    return sum(_tokens(media) for media in _parts(messages) if media.kind == "audio")


def without_media(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``messages`` without their audio and video parts, for litellm's counter."""
    out: list[Mapping[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            message = {**message, "content": [p for p in content if media_of(p) is None]}
        out.append(message)
    return out


_THINKING_TYPES = ("thinking", "redacted_thinking")


def _opaque_tokens(block: Mapping[str, Any]) -> int:
    """A bound on the tokens of the encrypted thinking a block carries: the bytes of its
    ``signature`` or ``data`` (base64, so three bytes for four characters)."""
    blob = block.get("data") if block.get("type") == "redacted_thinking" else block.get("signature")
    if not isinstance(blob, str):
        return 0
    return math.ceil(len(blob) * 3 / 4) if blob.isascii() else len(blob.encode())


_PLAIN_KEYS = frozenset({"role", "content", "name"})


def countable(messages: Sequence[Mapping[str, Any]]) -> tuple[Sequence[Mapping[str, Any]], int]:
    """``messages`` as litellm's counter must see them to count what is sent, and a bound on
    the tokens of the encrypted thinking they carry.

    litellm's counter skips a message's ``thinking_blocks`` and counts only the arguments of
    its tool calls, yet a provider bills all of it as prompt: Anthropic counts the thinking
    sent back in a tool-use loop as input, and a tool call goes out with its name and id.
    Turns that carry any of these are copied with that text added as text parts (and without
    their ``thinking_blocks``); the others, and ``messages`` itself when no turn changes, are
    returned as they are. Signatures and redacted data, which no tokenizer can read, are
    bounded at one token per byte (:func:`_opaque_tokens`), in ``thinking_blocks`` and in
    content alike.

    Example:
        >>> turn = {"role": "assistant", "content": None, "thinking_blocks": [
        ...     {"type": "thinking", "thinking": "Let me think.", "signature": "AAAA"}]}
        >>> view, opaque = countable([turn])
        >>> view[0]["content"], opaque
        ([{'type': 'text', 'text': 'Let me think.'}], 3)
    """
    out: list[Mapping[str, Any]] | None = None
    opaque = 0
    for index, message in enumerate(messages):
        if (
            type(message) is dict
            and message.keys() <= _PLAIN_KEYS
            and type(message.get("content")) is not list
        ) or not isinstance(message, Mapping):
            # Most of a long history is role and text alone: nothing litellm skips there.
            if out is not None:
                out.append(message)
            continue
        texts: list[str] = []
        blocks = message.get("thinking_blocks")
        if isinstance(blocks, Sequence) and not isinstance(blocks, str):
            for block in blocks:
                if isinstance(block, Mapping):
                    thought = block.get("thinking")
                    if isinstance(thought, str) and thought:
                        texts.append(thought)
                    opaque += _opaque_tokens(block)
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and part.get("type") in _THINKING_TYPES:
                    opaque += _opaque_tokens(part)  # litellm counts the text itself
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, Mapping):
                function = call.get("function")
                name = function.get("name") if isinstance(function, Mapping) else None
                texts.extend(s for s in (name, call.get("id")) if isinstance(s, str) and s)
        legacy = message.get("function_call")
        if isinstance(legacy, Mapping) and isinstance(legacy.get("name"), str):
            texts.append(legacy["name"])
        if not texts and not blocks:
            if out is not None:
                out.append(message)
            continue
        if out is None:
            out = list(messages[:index])
        parts: list[Any] = (
            list(content)
            if isinstance(content, list)
            else [{"type": "text", "text": content}]
            if isinstance(content, str) and content
            else []
        )
        parts.extend({"type": "text", "text": text} for text in texts)
        turn = {k: v for k, v in message.items() if k != "thinking_blocks"}
        turn["content"] = parts or None
        out.append(turn)
    return (messages if out is None else out), opaque
