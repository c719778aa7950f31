"""Fixtures for the LangChain adapter tests: a fake provider on loopback and policies for it."""

from __future__ import annotations

import pytest

# litellm builds pydantic schemas for TypedDicts with ReadOnly items on first use, which pydantic
# warns about; the warning is litellm's to fix and says nothing about our code.
_LITELLM_READONLY = "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/langchain/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings(_LITELLM_READONLY))
