"""Reading fields from litellm's objects and plain dicts: ``policyroute._fields``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from policyroute._fields import flat, read
from policyroute.costs.actual import usage_from_response

KEYS = ("a", "b", "c", "missing")


class Plain(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int | None = None
    _b: int = PrivateAttr(default=0)


class WithProperty(BaseModel):
    a: int = 1

    @property
    def b(self) -> int:
        return self.a * 10


class Holder:
    def __init__(self) -> None:
        self.a = 5


def plain(**extra: Any) -> Plain:
    model = Plain(a=1, **extra)
    model._b = 2
    return model


def test_read_answers_for_dicts_models_and_objects() -> None:
    model = plain(c=3)
    assert read({"a": 1}, "a") == 1
    assert read({"a": 1}, "b") is None
    assert read(None, "a") is None
    assert read(model, "a") == 1
    assert read(model, "_b") == 2  # a private value
    assert read(model, "c") == 3  # an extra
    assert read(model, "missing") is None
    assert read(WithProperty(), "b") == 10  # a property takes the ordinary lookup
    assert read(Holder(), "a") == 5
    assert read(Holder(), "b") is None


def test_read_drops_a_deleted_field_as_absent() -> None:
    # litellm deletes unset optional fields from its objects.
    model = plain()
    del model.__dict__["a"]
    assert read(model, "a") is None


def test_flat_answers_what_read_answers_for_every_key() -> None:
    model = plain(c=3)
    keys = (*KEYS, "_b")
    values = flat(model, keys)
    assert isinstance(values, dict)
    assert {key: read(values, key) for key in keys} == {key: read(model, key) for key in keys}


def test_flat_prefers_fields_then_private_values_then_extras() -> None:
    model = plain(c=3)
    model.__pydantic_extra__["a"] = 99  # type: ignore[index]
    model.__pydantic_extra__["_b"] = 98  # type: ignore[index]
    values = flat(model, ("a", "_b", "c"))
    assert (values["a"], values["_b"], values["c"]) == (1, 2, 3)


def test_flat_leaves_a_model_whose_keys_need_the_ordinary_lookup() -> None:
    model = WithProperty()
    assert flat(model, ("a", "b")) is model
    assert flat(model, ("a",)) == {"a": 1}


@pytest.mark.parametrize("value", [None, {"a": 1}, Holder()])
def test_flat_returns_anything_else_as_it_is(value: Any) -> None:
    assert flat(value, KEYS) is value


def test_usage_of_a_litellm_response_reads_private_cache_counts() -> None:
    import litellm

    response = litellm.ModelResponse(
        model="m",
        choices=[{"message": {"role": "assistant", "content": "ok"}, "index": 0}],
        usage=litellm.Usage(
            prompt_tokens=100,
            completion_tokens=5,
            total_tokens=105,
            cache_read_input_tokens=40,
            cache_creation_input_tokens=10,
        ),
    )
    usage = usage_from_response(response)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (100, 40, 10)
