"""A bound on the prompt tokens of the images in a request, measured without the network.

litellm's counter, told not to fetch image URLs, counts every image as 250 tokens, which a
provider bills several times over (gpt-4o up to 1,445, Claude up to 1,700, Gemini 2.x up to
6,192). Here each image is bounded by its model family's formula
(:mod:`policyroute.costs.image_families`) over its real size where that can be read, from the
header of a base64 image (:mod:`policyroute.costs.image_size`), and by the family's ceiling
where it cannot: an ``http(s)`` URL, a file id, an unreadable or unknown format.

Images are found where litellm's counter would count them, and in the shapes LangChain sends:
OpenAI ``image_url`` parts (with their ``detail``), Anthropic ``image`` blocks (``source`` of
type ``base64``, ``url`` or ``file``), LangChain ``image`` blocks (``base64``, ``data``,
``url``, ``file_id``), ``file`` parts holding an image data URL, and all of these inside a
``tool_result`` block's content.

Example:
    >>> from policyroute.costs.image_families import image_family
    >>> part = {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}}
    >>> image_tokens([{"role": "user", "content": [part]}], image_family("gpt-4o"))
    1445
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policyroute.costs.image_families import ImageFamily
from policyroute.costs.image_size import base64_image_size, data_url_image_size

__all__ = [
    "IMAGE_PART_TYPES",
    "Image",
    "any_images",
    "has_images",
    "image_of",
    "image_tokens",
    "is_image_part",
    "without_images",
]

IMAGE_PART_TYPES = frozenset({"image_url", "image", "file", "tool_result"})
"""The content part types that hold images or may (a ``file``, a ``tool_result``)."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image in a prompt: its data URL, bare base64 data or URL (``None`` for a file id or
    a part without a source), whether ``data`` is bare base64, and the ``detail`` asked."""

    data: str | None
    bare_base64: bool = False
    detail: str | None = None

    def size(self) -> tuple[int, int] | None:
        """Its ``(width, height)`` when read from base64 data, else ``None``."""
        if self.data is None:
            return None
        if self.bare_base64:
            return base64_image_size(self.data)
        return data_url_image_size(self.data)


def _source_image(source: Mapping[str, Any]) -> Image:
    kind = source.get("type")
    data = source.get("data")
    if kind == "base64" and isinstance(data, str):
        return Image(data, bare_base64=True)
    url = source.get("url")
    return Image(url if kind == "url" and isinstance(url, str) else None)


def image_of(part: Any) -> Image | None:
    """The image in a content part, ``None`` when the part is not an image.

    Example:
        >>> image_of({"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}})
        Image(data='data:,', bare_base64=False, detail='low')
    """
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):
            return Image(image)
        if isinstance(image, Mapping):
            url, detail = image.get("url"), image.get("detail")
            return Image(
                url if isinstance(url, str) else None,
                detail=detail if isinstance(detail, str) else None,
            )
        return Image(None)
    if kind == "image":
        source = part.get("source")
        if isinstance(source, Mapping):
            return _source_image(source)
        for key in ("base64", "data"):
            value = part.get(key)
            if isinstance(value, str) and part.get("source_type", "base64") == "base64":
                return Image(value, bare_base64=not value.startswith("data:"))
        url = part.get("url")
        return Image(url if isinstance(url, str) else None)
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, Mapping) else None
        if isinstance(data, str) and data.startswith("data:image/"):
            return Image(data)
    return None


def is_image_part(part: Any) -> bool:
    """Whether a content part holds an image (:func:`image_of`)."""
    return image_of(part) is not None


def _images(content: Any) -> Iterator[Image]:
    if not isinstance(content, list):
        return
    for part in content:
        image = image_of(part)
        if image is not None:
            yield image
        elif isinstance(part, Mapping) and part.get("type") == "tool_result":
            yield from _images(part.get("content"))


def has_images(content: Any) -> bool:
    """Whether a message's ``content`` holds an image (a ``tool_result``'s included)."""
    return next(_images(content), None) is not None


def any_images(messages: Sequence[Any]) -> bool:
    """Whether any message holds an image; a glance at part types settles most prompts.

    Example:
        >>> any_images([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
        False
    """
    for message in messages:
        if type(message) is dict:
            content = message.get("content")
            if type(content) is str:
                continue  # most of a long history: no parts to look at
        else:
            content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, Mapping)
                    and part.get("type") in IMAGE_PART_TYPES
                    and has_images([part])
                ):
                    return True
    return False


def image_tokens(
    messages: Sequence[Mapping[str, Any]], family: ImageFamily, cap: int | None = None
) -> int:
    """A bound on the tokens ``family`` bills for the images in ``messages``, each image's
    bound held to ``cap`` (the model's input window: one image cannot cost more, a prompt
    past the window is refused unbilled) when given."""
    return sum(
        family.tokens(image.size(), image.detail)
        if cap is None
        else min(cap, family.tokens(image.size(), image.detail))
        for message in messages
        for image in _images(message.get("content"))
    )


def _stripped(content: list[Any]) -> list[Any]:
    out: list[Any] = []
    for part in content:
        if is_image_part(part):
            continue
        if (
            isinstance(part, Mapping)
            and part.get("type") == "tool_result"
            and isinstance(part.get("content"), list)
        ):
            part = {**part, "content": _stripped(part["content"])}
        out.append(part)
    return out


def without_images(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``messages`` without their images, for litellm's counter (:func:`image_tokens` counts
    them); messages without images are kept as they are."""
    out: list[Mapping[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and has_images(content):
            message = {**message, "content": _stripped(content)}
        out.append(message)
    return out
