"""One way to read a field from what litellm returns: dicts and pydantic objects alike.

litellm answers with pydantic objects (responses, choices, deltas, usage) that drop unset
optional fields, and plain dicts travel the same paths (raw provider bodies, tests, user
callables). :func:`read` gives ``None`` for an absent field either way, without the cost of
pydantic's failed attribute lookup; :func:`flat` turns a model read many times into one dict,
and :func:`reader` gives the fastest way to read several keys of one object.

Example:
    >>> read({"usage": {"prompt_tokens": 3}}, "usage")
    {'prompt_tokens': 3}
    >>> read(None, "usage") is None
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["attribute", "flat", "read", "reader"]

_PYDANTIC_GETATTR = getattr(BaseModel, "__getattr__", None)
_OBJECT_GETATTRIBUTE = object.__getattribute__


def read(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for objects; ``None`` when absent."""
    if obj is None:
        return None
    if type(obj) is dict:  # the common case, before the slower ABC checks
        return obj.get(key)
    if isinstance(obj, BaseModel):
        return _model_get(obj, key)
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def attribute(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, without pydantic's slow lookup of a private attribute or
    a miss (litellm's ``_hidden_params`` is read on every answer); unlike :func:`read`, a
    mapping's keys are not read.

    Example:
        >>> attribute({"a": 1}, "a") is None
        True
    """
    if isinstance(obj, BaseModel):
        return _model_get(obj, name)
    return getattr(obj, name, None)


def flat(obj: Any, keys: tuple[str, ...]) -> Any:
    """``obj`` as one dict that :func:`read` answers the same for each of ``keys``, when the
    model's class allows it exactly; anything else is returned as it is.

    A usage object is read a dozen times per attempt: one merge of a pydantic model's stores
    (fields first, then private values, then extras, the order :func:`read` looks them up in)
    makes each read a dict lookup.

    Example:
        >>> flat({"a": 1}, ("a",))
        {'a': 1}
    """
    if obj is None or type(obj) is dict or not _all_instance_only(obj.__class__, keys):
        return obj
    values: dict[str, Any] = obj.__dict__
    private, extra = obj.__pydantic_private__, obj.__pydantic_extra__
    if private or extra:
        values = {**(extra or {}), **(private or {}), **values}
    return values


def reader(obj: Any, keys: tuple[str, ...]) -> Callable[[str], Any]:
    """A function answering as ``read(obj, key)`` for each of ``keys``: the ``get`` of the dict
    :func:`flat` makes of ``obj`` when it can (one call per key instead of two or three, for
    objects read on every answer), else :func:`read` bound to ``obj``.

    Example:
        >>> get = reader({"a": 1}, ("a", "b"))
        >>> get("a"), get("b")
        (1, None)
    """
    values = flat(obj, keys)
    if type(values) is dict:
        return values.get
    return functools.partial(read, obj)


def _model_get(obj: BaseModel, key: str) -> Any:
    """``getattr(obj, key, None)`` for a pydantic model, without pydantic's slow miss.

    litellm's objects lack most optional keys, and a miss goes through pydantic's
    ``__getattr__`` and its metaclass's, each raising and catching an AttributeError. An
    attribute that is not on the class can only live in the instance's ``__dict__`` (fields),
    its private values or its extras, which are read directly; anything else (class
    attributes, properties, models that override attribute access) takes the ordinary lookup.
    """
    if not _instance_only(type(obj), key):
        return getattr(obj, key, None)
    values = obj.__dict__
    if key in values:
        return values[key]
    for store in (obj.__pydantic_private__, obj.__pydantic_extra__):
        if store and key in store:
            return store[key]
    return None


@functools.lru_cache(maxsize=512)
def _instance_only(cls: type, key: str) -> bool:
    """Whether ``key`` on instances of ``cls`` can only come from the instance's own stores.

    Cached per class and key: the answer depends on the classes only, and litellm's response
    classes are not changed after import.
    """
    if getattr(cls, "__getattr__", None) is not _PYDANTIC_GETATTR:
        return False
    if getattr(cls, "__getattribute__", None) is not _OBJECT_GETATTRIBUTE:
        return False
    return not any(key in klass.__dict__ for klass in cls.__mro__)


@functools.lru_cache(maxsize=64)
def _all_instance_only(cls: type, keys: tuple[str, ...]) -> bool:
    return issubclass(cls, BaseModel) and all(_instance_only(cls, key) for key in keys)
