"""Worst-case estimates of prompts holding audio or video, which litellm's token counter cannot
measure, and of content nothing can count."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import policyroute
from budgets.helpers import candidate
from policyroute.costs.estimate import count_input_tokens, worst_case
from policyroute.costs.media import AUDIO_TOKENS_PER_SECOND, audio_input_tokens, media_tokens
from policyroute.errors import BudgetExceeded, RequestError
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

D = Decimal


def wav(seconds: float, rate: int = 16_000) -> str:
    """A base64 16-bit mono WAV of silence lasting ``seconds``."""
    data = b"\x00\x00" * int(rate * seconds)
    header = (
        b"RIFF"
        + (36 + len(data)).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + rate.to_bytes(4, "little")
        + (rate * 2).to_bytes(4, "little")  # byte rate
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + len(data).to_bytes(4, "little")
    )
    return base64.b64encode(header + data).decode()


def audio_message(data: str, fmt: str = "wav", text: str = "Transcribe this.") -> dict[str, Any]:
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": text},
            {"type": "input_audio", "input_audio": {"data": data, "format": fmt}},
        ],
    }


def test_wav_duration_comes_from_its_header() -> None:
    # 10 s at 16 kHz: 320 kB, 320 tokens (plus the 44-byte header's share of a second).
    tokens = audio_input_tokens([audio_message(wav(10))])
    assert tokens == 10 * AUDIO_TOKENS_PER_SECOND + 1
    # The same bytes at 8 kHz last twice as long.
    assert audio_input_tokens([audio_message(wav(20, rate=8_000))]) == 20 * 32 + 1


def test_pcm16_and_compressed_audio_are_bounded_from_their_size() -> None:
    one_second_pcm16 = base64.b64encode(b"\x00" * 48_000).decode()
    assert audio_input_tokens([audio_message(one_second_pcm16, "pcm16")]) == 32
    # 20 kB of mp3 is taken as 40 s (4 kbit/s), longer than at any speech codec's bitrate.
    mp3 = base64.b64encode(b"\xff" * 20_000).decode()
    assert audio_input_tokens([audio_message(mp3, "mp3")]) == 1280
    # A "wav" without a RIFF header is bounded like compressed audio.
    assert audio_input_tokens([audio_message(mp3, "wav")]) == 1280


def test_a_wav_whose_format_chunk_is_not_first_is_bounded_like_compressed_audio() -> None:
    # A broadcast WAV puts a ``bext`` chunk before ``fmt ``: the bytes at the usual offset are
    # not the byte rate (here they would read as a huge rate, i.e. a tiny duration).
    plain = base64.b64decode(wav(1))
    bext = b"bext" + (8).to_bytes(4, "little") + b"\xff" * 8
    broadcast = base64.b64encode(plain[:12] + bext + plain[12:]).decode()
    size = len(plain) + len(bext)
    assert audio_input_tokens([audio_message(broadcast)]) == -(-size * 32 // 500)


def test_audio_sent_as_a_file_is_bounded_and_not_counted_as_an_image() -> None:
    mp3 = base64.b64encode(b"\xff" * 20_000).decode()
    as_file = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Transcribe this."},
            {
                "type": "file",
                "file": {"filename": "a.mp3", "file_data": f"data:audio/mpeg;base64,{mp3}"},
            },
        ],
    }
    text_only = count_input_tokens(
        "openai/gpt-audio",
        [{"role": "user", "content": [{"type": "text", "text": "Transcribe this."}]}],
        None,
    )
    assert audio_input_tokens([as_file]) == 1280
    assert count_input_tokens("openai/gpt-audio", [as_file], None) == text_only + 1280


def test_audio_adds_to_the_text_count() -> None:
    text_only = count_input_tokens(
        "openai/gpt-audio", [{"role": "user", "content": "Transcribe this."}], None
    )
    with_audio = count_input_tokens("openai/gpt-audio", [audio_message(wav(10))], None)
    assert with_audio == text_only + 321


def test_audio_without_data_is_a_request_error() -> None:
    message = {
        "role": "user",
        "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}],
    }
    with pytest.raises(RequestError, match="without base64 data"):
        count_input_tokens("openai/gpt-audio", [message], None)


def test_content_no_counter_understands_is_a_request_error() -> None:
    message = {"role": "user", "content": [{"type": "hologram", "data": "..."}]}
    with pytest.raises(RequestError, match=r"cannot count the input tokens .* hologram"):
        count_input_tokens("openai/gpt-4o-mini", [message], None)


def test_audio_input_is_priced_at_the_audio_rate() -> None:
    cand = candidate("audio", "openai/gpt-audio", price=None)
    text = worst_case(
        Request(messages=[{"role": "user", "content": "Transcribe this."}]),
        cand,
        {"max_tokens": 0},
        default_max_tokens=None,
    )
    spoken = worst_case(
        Request(messages=[audio_message(wav(10))]), cand, {"max_tokens": 0}, default_max_tokens=None
    )
    # gpt-audio: $2.50 per million text tokens in, $32 per million audio tokens in.
    assert text.input_rate == D("0.0000025")
    assert spoken.input_rate == D("0.000032")
    assert spoken.cost == spoken.input_tokens * D("0.000032")


def test_audio_output_is_priced_at_the_audio_output_rate_when_asked_for() -> None:
    cand = candidate("audio", "openai/gpt-audio", price=None)
    messages = [{"role": "user", "content": "Say hello."}]
    text = worst_case(Request(messages=messages), cand, {"max_tokens": 10}, default_max_tokens=None)
    spoken = worst_case(
        Request(messages=messages),
        cand,
        {"max_tokens": 10, "modalities": ["text", "audio"]},
        default_max_tokens=None,
    )
    assert (text.output_rate, spoken.output_rate) == (D("0.00001"), D("0.000064"))


# --------------------------------------------------------------------------- through a call

POLICY = """
policyroute: 1
name: audio-budget
models:
  voice:
    model: openai/gpt-audio
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
routes:
  - name: default
    to: voice
defaults:
  max_tokens: 100
budgets:
  - name: per-call
    limit_usd: 0.005
    window: call
store: {{backend: memory}}
receipts: {{sink: none}}
"""


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="hello"))
        yield fp


def test_a_long_recording_is_refused_before_it_is_sent(provider: FakeProvider) -> None:
    policy = load_policy_text(POLICY.format(base=provider.openai_base))
    # 10 s: 321 audio tokens at $32/M plus 100 output tokens at $10/M, about $0.011.
    with pytest.raises(BudgetExceeded):
        policyroute.completion(policy=policy, messages=[audio_message(wav(10))])
    assert provider.requests == []
    # 2 s fits: 65 tokens, about $0.0031.
    answer = policyroute.completion(policy=policy, messages=[audio_message(wav(2))])
    assert answer.choices[0].message.content == "hello"
    sent = provider.requests[-1].body["messages"][0]["content"][1]
    assert sent["type"] == "input_audio"


def video_file(size: int) -> dict[str, Any]:
    data = base64.b64encode(b"\x00" * size).decode()
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe this clip."},
            {
                "type": "file",
                "file": {"filename": "clip.mp4", "file_data": f"data:video/mp4;base64,{data}"},
            },
        ],
    }


def test_video_is_bounded_from_its_size_and_capped_at_the_input_window() -> None:
    # 62,500 bytes at 50 kbit/s: 10 s, 300 tokens a second.
    assert media_tokens([video_file(62_500)]) == 3_000
    assert media_tokens([video_file(62_500)], cap=1_000) == 1_000
    plain = count_input_tokens(
        "gemini/gemini-2.5-flash",
        [{"role": "user", "content": [{"type": "text", "text": "Describe this clip."}]}],
        None,
    )
    assert (
        count_input_tokens("gemini/gemini-2.5-flash", [video_file(62_500)], None) == plain + 3_000
    )


def test_the_worst_case_caps_video_at_the_model_window_but_never_text() -> None:
    cand = candidate("small", "custom/small", context_window=2_000)
    huge_video = worst_case(
        Request(messages=[video_file(625_000)]), cand, {"max_tokens": 0}, default_max_tokens=None
    )
    assert huge_video.input_tokens <= 2_000 + 20
    long_text = worst_case(
        Request(messages=[{"role": "user", "content": "word " * 5_000}]),
        cand,
        {"max_tokens": 0},
        default_max_tokens=None,
    )
    assert long_text.input_tokens > 5_000
