"""LangChain content blocks as OpenAI content parts, the shape litellm takes for every provider.

Accepted: LangChain's standard (v1) blocks (text, image, file, audio, video, text-plain), the
older v0 data blocks, OpenAI-format parts, and Anthropic-format ``image`` and ``document``
blocks with a ``source``. A block's ``cache_control`` mark is kept on its part. Blocks that
are not content (tool calls, thinking, reasoning) are dropped here: they travel elsewhere in
the message.

Example:
    >>> to_openai_content([{"type": "image", "url": "https://x/y.png"}])
    [{'type': 'image_url', 'image_url': {'url': 'https://x/y.png'}}]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from policyroute.errors import RequestError

__all__ = ["Content", "cache_control", "convert_block", "to_openai_content"]

Content = str | Sequence[str | Mapping[str, Any]]

# Block types that are not content in the OpenAI shape: tool calls travel in ``tool_calls``,
# signed thinking travels in ``thinking_blocks`` (see ``outbound``), and other reasoning
# is the provider's own and is not sent back.
_NOT_CONTENT = frozenset(
    {
        "reasoning",
        "thinking",
        "redacted_thinking",
        "tool_call",
        "tool_call_chunk",
        "function_call",
        "tool_use",
    }
)


def cache_control(block: Mapping[str, Any]) -> Any:
    """A block's prompt-cache mark: Anthropic-format blocks carry it at the top, LangChain's
    standard blocks in ``extras``."""
    mark = block.get("cache_control")
    if mark is None:
        extras = block.get("extras")
        if isinstance(extras, Mapping):
            mark = extras.get("cache_control")
    return mark


def _data_url(block: Mapping[str, Any], default_mime: str) -> str:
    # v1 standard blocks carry ``base64``; the older v0 ones ``source_type: base64`` + ``data``.
    data = block.get("base64") or block.get("data")
    if not data:
        raise RequestError(
            f"{block.get('type')} block has no data: give a url, base64 data or a file id"
        )
    mime = block.get("mime_type") or default_mime
    return f"data:{mime};base64,{data}"


def _block_url(block: Mapping[str, Any]) -> str | None:
    if block.get("url"):
        return str(block["url"])
    if block.get("base64") or (block.get("source_type") == "base64" and block.get("data")):
        return None
    if block.get("source_type") == "url" and block.get("data"):
        # Legacy v0 blocks put the URL in ``data``.
        return str(block["data"])
    return None


def _source(block: Mapping[str, Any], default_mime: str) -> tuple[str, str]:
    """An Anthropic-format ``source`` as ``(kind, value)``: ``("url", data or web URL)``,
    ``("file_id", id)`` or ``("text", text)``."""
    source = block["source"]
    if not isinstance(source, Mapping):
        raise RequestError(f"{block.get('type')} block: source must be an object")
    kind = source.get("type")
    if kind == "base64" and source.get("data"):
        mime = source.get("media_type") or default_mime
        return "url", f"data:{mime};base64,{source['data']}"
    if kind == "url" and source.get("url"):
        return "url", str(source["url"])
    if kind == "file" and source.get("file_id"):
        return "file_id", str(source["file_id"])
    if kind == "text" and isinstance(source.get("data"), str):
        return "text", source["data"]
    if kind == "content":
        return "text", _source_content_text(block, source.get("content"))
    raise RequestError(
        f"{block.get('type')} block: unsupported source {dict(source)!r} "
        "(expected base64 with data, url, file, text or content)"
    )


def _source_content_text(block: Mapping[str, Any], content: Any) -> str:
    """The text of a ``content`` source (a custom document): a string or text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(b, Mapping) and b.get("type") == "text" for b in content
    ):
        return "\n\n".join(str(b.get("text", "")) for b in content)
    raise RequestError(f"{block.get('type')} block: a content source must be text or text blocks")


def _by_id(file_id: Any, mime: Any) -> dict[str, Any]:
    """A file part naming its file by id, with its MIME type as litellm's ``format``.

    litellm picks the Anthropic block from the format (a PDF or text file a ``document``, an
    image an ``image``) and sends a file without one as a ``container_upload``, a file for the
    code-execution tool; Gemini needs it too. litellm drops the key for OpenAI.
    """
    file: dict[str, Any] = {"file_id": file_id}
    if isinstance(mime, str) and mime:
        file["format"] = mime
    return {"type": "file", "file": file}


def _image(block: Mapping[str, Any]) -> dict[str, Any]:
    if "source" in block:
        kind, value = _source(block, "image/png")
        if kind == "file_id":
            # An Anthropic file, whose type the block gives and no format: any image type
            # makes it an image block again.
            return _by_id(value, "image/png")
        if kind == "text":
            raise RequestError("image block: a text source is not an image")
        return {"type": "image_url", "image_url": {"url": value}}
    if block.get("file_id"):
        return _by_id(block["file_id"], block.get("mime_type"))
    url = _block_url(block)
    return {"type": "image_url", "image_url": {"url": url or _data_url(block, "image/png")}}


def _file_part(block: Mapping[str, Any], default_mime: str, name: str | None) -> dict[str, Any]:
    """A standard block as an OpenAI file part: by file id, else by URL or data URL."""
    if block.get("file_id"):
        return _by_id(block["file_id"], block.get("mime_type"))
    url = _block_url(block) or _data_url(block, default_mime)
    file = {"file_data": url} if name is None else {"filename": name, "file_data": url}
    return {"type": "file", "file": file}


def _video(block: Mapping[str, Any]) -> dict[str, Any]:
    """A video block as a file part: litellm sends it to the providers that take video
    (Gemini) as inline data or a file URI."""
    return _file_part(block, "video/mp4", None)


def _name(block: Mapping[str, Any]) -> str:
    return str(
        (block.get("extras") or {}).get("filename")
        or block.get("filename")
        or block.get("title")
        or "document"
    )


def _file(block: Mapping[str, Any]) -> dict[str, Any]:
    name = _name(block)
    if "source" in block:
        kind, value = _source(block, "application/pdf")
        if kind == "text":
            return {"type": "text", "text": value}
        if kind == "file_id":
            # An Anthropic document (a PDF or a text), whose file source carries no type.
            return _by_id(value, "application/pdf")
        return {"type": "file", "file": {"filename": name, "file_data": value}}
    if not block.get("file_id") and isinstance(block.get("file"), Mapping):
        # Already the OpenAI shape.
        return {"type": "file", "file": dict(block["file"])}
    return _file_part(block, "application/pdf", name)


def _plain_text(block: Mapping[str, Any]) -> dict[str, Any]:
    """A standard ``text-plain`` document: its text as a text part (as an Anthropic document
    with a text source is sent), else its data, URL or file id as a text/plain file."""
    text = block.get("text")
    if isinstance(text, str):
        return {"type": "text", "text": text}
    return _file_part(block, "text/plain", None if block.get("file_id") else _name(block))


def _audio(block: Mapping[str, Any]) -> dict[str, Any]:
    mime = str(block.get("mime_type") or "audio/wav")
    data = block.get("base64") or block.get("data")
    if not data:
        raise RequestError("audio block has no base64 data (audio URLs are not sent)")
    return {"type": "input_audio", "input_audio": {"data": data, "format": mime.split("/")[-1]}}


def _image_url(block: Mapping[str, Any]) -> dict[str, Any]:
    image = block.get("image_url")
    return {"type": "image_url", "image_url": {"url": image} if isinstance(image, str) else image}


_CONVERTERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "text": lambda block: {"type": "text", "text": block.get("text", "")},
    "image_url": _image_url,
    "image": _image,
    "file": _file,
    "document": _file,
    "input_audio": dict,
    "audio": _audio,
    "video": _video,
    "text-plain": _plain_text,
}


def convert_block(block: str | Mapping[str, Any]) -> dict[str, Any] | None:
    """One LangChain content block as an OpenAI content part; ``None`` drops it."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    convert = _CONVERTERS.get(kind) if isinstance(kind, str) else None
    if convert is None:
        if kind in _NOT_CONTENT:
            return None
        raise RequestError(f"unsupported content block type {kind!r} in a message")
    part = convert(block)
    mark = cache_control(block)
    if mark is not None:
        part["cache_control"] = mark
    return part


def to_openai_content(content: Content) -> Any:
    """LangChain message content as OpenAI content: a string or a list of parts.

    Example:
        >>> to_openai_content([{"type": "image", "url": "https://x/y.png"}])
        [{'type': 'image_url', 'image_url': {'url': 'https://x/y.png'}}]
        >>> to_openai_content([{"type": "text", "text": "ctx", "cache_control": {"type": "ephemeral"}}])
        [{'type': 'text', 'text': 'ctx', 'cache_control': {'type': 'ephemeral'}}]
    """  # noqa: E501
    if isinstance(content, str):
        return content
    return [part for part in (convert_block(b) for b in content) if part is not None]
