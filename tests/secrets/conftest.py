"""Fixtures for the secret-leak tests: a fake provider, the sentinel key in the environment,
policyroute's logs captured at DEBUG."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from secret_support import KEY, policy_text

from policyroute.testing import FakeProvider


@pytest.fixture
def sentinel_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POLICYROUTE_SENTINEL_KEY", KEY)
    return KEY


@pytest.fixture
def make_policy(fp: FakeProvider, tmp_path: Path, sentinel_key: str) -> Callable[..., str]:
    """:func:`policy_text` bound to the fake provider and the test's temp dir."""
    return functools.partial(policy_text, fp.openai_base, tmp_path)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {self.format(record)}")


@pytest.fixture
def policyroute_logs() -> Iterator[list[str]]:
    """Every record of the ``policyroute`` loggers at DEBUG, formatted with its traceback."""
    handler = _Collect()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("policyroute")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
