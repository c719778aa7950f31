"""What a provider bills for one input image: each model family's documented formula, and the
most it bills for any image (its ceiling), for images whose size cannot be read.

Every formula errs high where the documentation leaves room; each class says by how much.
Sizes are scaled with exact fractions and tiles counted with ceilings, so rounding never
lands below the provider's own.

=============================  =========================================  ==============
family                         formula (source)                           ceiling
=============================  =========================================  ==============
OpenAI tiles (gpt-4o, 4.1, o3)  base + tile x 512 px tiles (vision guide)  base + 8 tiles
OpenAI patches (4.1-mini, ...)  32 px patches, <= 1536, x multiplier       1536 x mult.
Claude                         width x height / 750 (vision guide)        1,700 / 5,000
Gemini 1.5 / 2.x               258 per tile (token-counting guide)        6,192
Gemini 3                       per media resolution, up to ultra high     2,240
unknown                        the largest ceiling above                  48,169
=============================  =========================================  ==============

Example:
    >>> family = image_family("openai/gpt-4o")
    >>> family.tokens((1024, 1024), "high"), family.tokens(None, "high"), family.tokens(None, "low")
    (765, 1445, 85)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "UNKNOWN",
    "AreaFamily",
    "FixedFamily",
    "GeminiTileFamily",
    "ImageFamily",
    "PatchFamily",
    "Size",
    "TileFamily",
    "image_family",
]

Size = tuple[int, int]


def _fit(size: Size, box: int) -> tuple[Fraction, Fraction]:
    """``size`` scaled down (never up) so that its long side fits ``box``."""
    w, h = Fraction(size[0]), Fraction(size[1])
    longest = max(w, h)
    if longest > box:
        w, h = w * box / longest, h * box / longest
    return w, h


@dataclass(frozen=True, slots=True)
class ImageFamily:
    """A way of billing images; ``tokens(None, detail)`` is the ceiling for any image."""

    name: str

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        """Input tokens billed for an image of ``size`` (``None``: any size) at ``detail``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class TileFamily(ImageFamily):
    """OpenAI's tiled models (OpenAI, "Images and vision", calculating costs).

    ``detail: low`` is ``base`` tokens whatever the size. Otherwise the image is scaled to fit
    2048 x 2048, then down until its short side is at most 768 px, and each 512 px tile costs
    ``tile`` tokens on top of ``base``: at most 8 tiles (2048 x 768), 1,445 tokens for gpt-4o.
    ``auto`` is counted as ``high``, which over-counts by up to 1,360 when the provider picks
    low. Small images are not scaled up (the guide's examples and measured bills agree: a
    512 x 512 image is 255 tokens).
    """

    base: int = 85
    tile: int = 170

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        if detail == "low":
            return self.base
        if size is None:
            return self.base + 8 * self.tile
        w, h = _fit(size, 2048)
        shortest = min(w, h)
        if shortest > 768:
            w, h = w * 768 / shortest, h * 768 / shortest
        return self.base + self.tile * math.ceil(w / 512) * math.ceil(h / 512)


@dataclass(frozen=True, slots=True)
class PatchFamily(ImageFamily):
    """OpenAI's patch models (same guide): 32 px patches covering the image, at most 1,536
    (a larger image is scaled down to fit), times the model's ``multiplier``.

    Counted as ``min(patches, 1536)`` without the scaling: exact up to the cap and the cap
    itself above it, which the scaled image never exceeds. ``detail`` does not lower the
    count of these models, so it is ignored. Measured bills have come in below the
    documented multiplier (1.20 against 1.62 for gpt-5-mini), an over-count of up to 35%.
    """

    multiplier: Fraction = Fraction(1)

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        patches = 1536
        if size is not None:
            patches = min(patches, math.ceil(size[0] / 32) * math.ceil(size[1] / 32))
        return math.ceil(patches * self.multiplier)


@dataclass(frozen=True, slots=True)
class AreaFamily(ImageFamily):
    """Claude (Anthropic, "Vision", evaluate image size): ``width * height / 750`` tokens after
    the image is scaled to fit ``long_edge``; a larger image is scaled down until within the
    limits, so ``ceiling`` caps any count.

    Claude models before Opus 4.7: 1,568 px, "about 1,600 tokens"; the guide's own table of
    largest sizes reaches 1,639 (784 x 1,568), so the ceiling is 1,700, at most 6% over. Opus
    4.7 and later read up to 2,576 px and 3.75 MP: 5,000 tokens (3.75 MP / 750), where
    4,784 is quoted.
    """

    long_edge: int = 1568
    ceiling: int = 1700

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        if size is None:
            return self.ceiling
        w, h = _fit(size, self.long_edge)
        return min(self.ceiling, math.ceil(w * h / 750))


@dataclass(frozen=True, slots=True)
class GeminiTileFamily(ImageFamily):
    """Gemini 1.5 and 2.x (Google, "Understand and count tokens"; Vertex AI, image tokens):
    258 tokens for an image with both sides at most 384 px; a larger one is cut into square
    crops of ``min(w, h) / 1.5`` px (between 256 and 768), 258 tokens each, after scaling to
    fit 3,072 x 3,072. Worst case 24 crops (257 x 3,072): 6,192 tokens. Gemini 1.5 documents
    a flat 258, so this over-counts it up to 24 times on large images.
    """

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        if size is None:
            return 258 * 24
        w, h = _fit(size, 3072)
        if w <= 384 and h <= 384:
            return 258
        unit = min(768, max(256, math.floor(min(w, h) / Fraction(3, 2))))
        return 258 * math.ceil(w / unit) * math.ceil(h / unit)


@dataclass(frozen=True, slots=True)
class FixedFamily(ImageFamily):
    """A flat count per image whatever its size. Gemini 3 bills by media resolution: 280,
    560, 1,120 (the default for images) and 2,240 (ultra high, set per part), so 2,240 is
    charged, twice the default bill."""

    count: int = 2240

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        return self.count


GPT_4O = TileFamily("openai-tiles", 85, 170)
GPT_4O_MINI = TileFamily("openai-tiles-4o-mini", 2833, 5667)
O_SERIES = TileFamily("openai-tiles-o", 75, 150)
GPT_5 = TileFamily("openai-tiles-5", 70, 140)
COMPUTER_USE = TileFamily("openai-tiles-computer-use", 65, 129)
MINI_PATCHES = PatchFamily("openai-patches-mini", Fraction("1.62"))
NANO_PATCHES = PatchFamily("openai-patches-nano", Fraction("2.46"))
O4_MINI_PATCHES = PatchFamily("openai-patches-o4-mini", Fraction("1.72"))
CLAUDE = AreaFamily("claude", 1568, 1700)
CLAUDE_HIGH_RES = AreaFamily("claude-high-res", 2576, 5000)
GEMINI_TILES = GeminiTileFamily("gemini-tiles")
GEMINI_3 = FixedFamily("gemini-3", 2240)


@dataclass(frozen=True, slots=True)
class _Largest(ImageFamily):
    """The largest ceiling of ``families`` for any image (a family the model may be in)."""

    families: tuple[ImageFamily, ...] = ()

    def tokens(self, size: Size | None, detail: str | None = None) -> int:
        return max(family.tokens(None, None) for family in self.families)


_OPENAI = (
    GPT_4O,
    GPT_4O_MINI,
    O_SERIES,
    GPT_5,
    COMPUTER_USE,
    MINI_PATCHES,
    NANO_PATCHES,
    O4_MINI_PATCHES,
)
OPENAI_ANY = _Largest("openai", _OPENAI)
CLAUDE_ANY = _Largest("claude", (CLAUDE, CLAUDE_HIGH_RES))
GEMINI_ANY = _Largest("gemini", (GEMINI_TILES, GEMINI_3))
UNKNOWN = _Largest("unknown", (*_OPENAI, CLAUDE, CLAUDE_HIGH_RES, GEMINI_TILES, GEMINI_3))
"""A model of no known family: the largest ceiling of all (gpt-4o-mini's 48,169, whose tile
counts are 33 times gpt-4o's to keep its price per image near gpt-4o's)."""

# Checked in order against the model name (after its last ``/`` and any Bedrock region and
# vendor prefix): more specific names first.
_OPENAI_NAMES: tuple[tuple[re.Pattern[str], ImageFamily], ...] = tuple(
    (re.compile(pattern), family)
    for pattern, family in (
        (r"^gpt-4o-mini(?:-|$)", GPT_4O_MINI),
        (r"^gpt-(?:4\.1|5)-mini(?:-\d{4}-\d\d-\d\d)?$", MINI_PATCHES),
        (r"^gpt-(?:4\.1|5)-nano(?:-\d{4}-\d\d-\d\d)?$", NANO_PATCHES),
        (r"^o4-mini(?:-\d{4}-\d\d-\d\d)?$", O4_MINI_PATCHES),
        (r"^(?:chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-4-turbo|gpt-4-vision)(?:-|$)", GPT_4O),
        (r"^o[13](?:-pro)?(?:-\d{4}-\d\d-\d\d)?$", O_SERIES),
        (r"^gpt-5(?:-chat-latest|-\d{4}-\d\d-\d\d)?$", GPT_5),
        (r"^computer-use-preview(?:-|$)", COMPUTER_USE),
    )
)
# Claude models before Opus 4.7: Claude 3.x, and the 4.x names up to 4.6 (with a date, a
# Bedrock version or a Vertex ``@`` after them).
_CLAUDE_STANDARD = re.compile(
    r"claude-3|claude-(?:opus|sonnet|haiku)-4(?:-[0-6])?(?:$|[-@:](?:\d{8}|v\d))"
)
_GEMINI_VERSION = re.compile(r"gemini-(\d+)(?:\.\d+)?-")
_OPENAI_PROVIDERS = frozenset({"openai", "azure", "azure_ai", "text-completion-openai"})
_GEMINI_PROVIDERS = frozenset({"gemini", "vertex_ai", "vertex_ai_beta"})


@lru_cache(maxsize=1024)
def image_family(model: str, provider: str | None = None) -> ImageFamily:
    """The image billing family of a litellm ``model`` string.

    The model name decides wherever it is served (a router or a cloud bills another vendor's
    model by that vendor's count); an unrecognised name takes the largest ceiling of its
    provider's families, and of every family when the provider is not one of theirs.
    ``provider`` is litellm's ``custom_llm_provider`` when the spec gives one.

    Example:
        >>> image_family("gpt-4.1-mini").name, image_family("azure/my-deployment").name
        ('openai-patches-mini', 'openai')
        >>> image_family("bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0").name
        'claude'
    """
    prefix, slash, _ = model.partition("/")
    provider = (provider or (prefix if slash else "")).lower()
    name = model.rsplit("/", 1)[-1].lower()
    if "claude" in name:
        return CLAUDE if _CLAUDE_STANDARD.search(name) else CLAUDE_HIGH_RES
    if "gemini" in name:
        version = _GEMINI_VERSION.search(name)
        if version is None:
            return GEMINI_ANY
        return GEMINI_TILES if int(version.group(1)) < 3 else GEMINI_3
    for pattern, family in _OPENAI_NAMES:
        if pattern.search(name):
            return family
    if provider in _OPENAI_PROVIDERS:
        return OPENAI_ANY
    if provider == "anthropic":
        return CLAUDE_ANY
    if provider in _GEMINI_PROVIDERS:
        return GEMINI_ANY
    return UNKNOWN
