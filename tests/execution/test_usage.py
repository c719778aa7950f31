"""Reading usage out of litellm responses, dicts and plain objects."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from policyroute._lazy import import_litellm
from policyroute.execution.hooks import Usage
from policyroute.execution.usage import has_content, usage_of


def test_litellm_usage_with_details_and_missing_keys() -> None:
    litellm = import_litellm()
    response = litellm.ModelResponse(
        choices=[{"message": {"role": "assistant", "content": "hi"}}],
        usage={
            "prompt_tokens": 12,
            "completion_tokens": 5,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    )
    assert usage_of(response) == Usage(
        input_tokens=12,
        output_tokens=5,
        cache_read_tokens=4,
        cache_write_tokens=0,
        reasoning_tokens=2,
    )


def test_litellm_usage_extras_are_read() -> None:
    litellm = import_litellm()
    usage = litellm.Usage(prompt_tokens=3, completion_tokens=1, cache_creation_input_tokens=7)
    response = SimpleNamespace(usage=usage)
    result = usage_of(response)
    assert result is not None
    assert (result.input_tokens, result.cache_write_tokens) == (3, 7)


@pytest.mark.parametrize(
    "response",
    [
        {"usage": {"prompt_tokens": 9, "completion_tokens": 3}},
        SimpleNamespace(usage=SimpleNamespace(prompt_tokens=9, completion_tokens=3)),
    ],
)
def test_dicts_and_plain_objects(response: object) -> None:
    assert usage_of(response) == Usage(input_tokens=9, output_tokens=3)


def test_no_usage_and_bad_values() -> None:
    assert usage_of({"choices": []}) is None
    assert usage_of({"usage": {"prompt_tokens": True, "completion_tokens": "3 tokens"}}) == Usage()


def test_chunks() -> None:
    litellm = import_litellm()
    chunk = litellm.ModelResponseStream(choices=[{"delta": {"content": "he"}}])
    assert has_content(chunk)
    empty = litellm.ModelResponseStream(choices=[{"delta": {}}])
    assert not has_content(empty)
