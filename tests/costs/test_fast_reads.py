"""The shortcuts on the settle path read exactly what the plain reads would."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import litellm
import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from policyroute.accounting import _Tally
from policyroute.costs.actual import _get
from policyroute.execution.hooks import Usage


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: int = 1
    _private: int = PrivateAttr(default=7)

    @property
    def computed(self) -> int:
        return self.field + 1


class _Dynamic(BaseModel):
    field: int = 1

    def __getattr__(self, name: str) -> Any:
        if name.startswith("dyn_"):
            return name
        return super().__getattr__(name)  # type: ignore[misc]


def _objects() -> list[Any]:
    usage = litellm.Usage(
        prompt_tokens=10,
        completion_tokens=4,
        total_tokens=14,
        prompt_tokens_details={"cached_tokens": 6},
        cache_read_input_tokens=6,
    )
    response = litellm.ModelResponse(
        choices=[{"message": {"role": "assistant", "content": "ok"}}],
        usage=usage,
        model="gpt-4o-mini",
    )
    return [usage, response, usage.prompt_tokens_details, _Extra(other=3), _Dynamic()]


KEYS = [
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "_cache_read_input_tokens",
    "_cache_creation_input_tokens",
    "promptTokenCount",
    "cached_tokens",
    "usage",
    "model",
    "choices",
    "model_dump",
    "model_fields_set",
    "__class__",
    "field",
    "other",
    "_private",
    "computed",
    "dyn_value",
    "absent",
]


@pytest.mark.parametrize("index", range(len(_objects())))
def test_model_reads_agree_with_getattr(index: int) -> None:
    obj = _objects()[index]
    for key in KEYS:
        expected = getattr(obj, key, None)
        got = _get(obj, key)
        assert got == expected, key
        assert type(got) is type(expected), key


def test_mappings_and_none_read_as_before() -> None:
    assert _get({"a": 1}, "a") == 1
    assert _get({"a": 1}, "b") is None
    assert _get(None, "a") is None


def test_call_tally_sums_every_usage_field() -> None:
    names = [f.name for f in dataclasses.fields(Usage)]
    first = Usage(**{name: 1 + i for i, name in enumerate(names)})
    second = Usage(**{name: 10 * (1 + i) for i, name in enumerate(names)})
    tally = _Tally()
    tally.add(first, Decimal("0.1"), "a", "m", "p")
    tally.add(second, Decimal("0.2"), "b", "n", "q")
    assert tally.usage == Usage(**{name: 11 * (1 + i) for i, name in enumerate(names)})
    assert tally.cost == Decimal("0.3")
    assert tally.deployments == {"a": ("m", "p"), "b": ("n", "q")}
