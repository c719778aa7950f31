"""Fixtures for the LangChain adapter tests: a fake provider on loopback and policies for it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vcr
from lc_support import policy_text

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply


@pytest.fixture
def make_policy(fp: FakeProvider) -> Callable[..., str]:
    """:func:`policy_text` bound to the fake provider's address."""
    return functools.partial(policy_text, fp.openai_base)


@pytest.fixture
def fast_is_down(fp: FakeProvider) -> FakeProvider:
    """The fake provider with ``fake-fast`` failing (503) and ``fake-backup`` answering."""
    fp.set_default("fake-fast", Fault.status(503))
    fp.set_default("fake-backup", Reply(text="ok"))
    return fp


@pytest.fixture
def llm(fp: FakeProvider) -> ChatPolicyRoute:
    return ChatPolicyRoute(policy=policy_text(fp.openai_base), accounting=NullAccounting())


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """How the standard suite's cassette tests (``@pytest.mark.vcr``) record and replay.

    The cassettes were recorded against the fake provider, whose port changes from run to
    run: requests are matched on method, path and body, never the host. Credentials are
    filtered out of what is stored, and the cassettes are JSON (no YAML loader involved).
    A missing cassette is recorded against the live fake provider; an existing one is only
    replayed, and a request it does not hold fails the test. When what policyroute sends
    changes on purpose, delete the cassette and run the test twice (record, then replay).
    """
    return {
        "record_mode": "once",
        "match_on": ["method", "path", "body"],
        "filter_headers": [
            ("authorization", "REDACTED"),
            ("x-api-key", "REDACTED"),
            ("api-key", "REDACTED"),
        ],
        "decode_compressed_response": True,
        "allow_playback_repeats": True,
        "serializer": "json",
        "cassette_library_dir": str(Path(__file__).parent / "cassettes"),
        "path_transformer": vcr.VCR.ensure_suffix(".json"),
    }
