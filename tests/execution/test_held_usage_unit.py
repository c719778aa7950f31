"""held_usage: the input side of the usage litellm's stream wrapper kept without yielding it."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from billing_support import cached_input_usage

from policyroute.execution.hooks import Usage
from policyroute.execution.stream_io import held_usage


def _wrapper(*usages: Any) -> SimpleNamespace:
    """A stand-in for litellm's CustomStreamWrapper: what it kept, as it keeps it."""
    chunks = [litellm.ModelResponseStream(choices=[{"delta": {}}], usage=usage) for usage in usages]
    return SimpleNamespace(received_finish_reason=None, chunks=chunks)


START = cached_input_usage(1)  # message_start's placeholder output of 1


def test_the_input_side_of_message_start_usage() -> None:
    assert held_usage(_wrapper(START, None)) == Usage(
        input_tokens=1500, cache_read_tokens=200, cache_write_tokens=300
    )


def test_the_latest_usage_wins() -> None:
    later = litellm.Usage(prompt_tokens=1600, completion_tokens=40, total_tokens=1640)
    assert held_usage(_wrapper(START, later, None)) == Usage(input_tokens=1600)


def test_no_input_or_impossible_input_is_nothing() -> None:
    empty = litellm.Usage(prompt_tokens=0, completion_tokens=3, total_tokens=3)
    negative = litellm.Usage(prompt_tokens=-5, completion_tokens=0, total_tokens=-5)
    assert held_usage(_wrapper(None, empty, negative)) is None
    assert held_usage(_wrapper(START, negative)) == Usage(
        input_tokens=1500, cache_read_tokens=200, cache_write_tokens=300
    )


def test_only_litellm_wrappers_are_read() -> None:
    assert held_usage(None) is None
    assert held_usage(iter([])) is None
    # An injected iterable with a ``chunks`` attribute of its own is not litellm's wrapper.
    assert held_usage(SimpleNamespace(chunks=_wrapper(START).chunks)) is None
    assert held_usage(SimpleNamespace(received_finish_reason=None, chunks=None)) is None
