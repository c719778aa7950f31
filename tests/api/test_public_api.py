"""The flat public namespace stays honest: sorted, complete, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest

import policyroute
from policyroute import errors


def test_all_is_sorted_and_unique() -> None:
    assert list(policyroute.__all__) == sorted(set(policyroute.__all__))


def test_every_public_name_resolves() -> None:
    for name in policyroute.__all__:
        assert getattr(policyroute, name) is not None, name


def test_every_error_is_exported_and_in_the_tree() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert name in policyroute.__all__, name
            assert issubclass(obj, errors.PolicyRouteError), name


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="does_not_exist"):
        _ = policyroute.does_not_exist  # type: ignore[attr-defined]


def test_import_is_light() -> None:
    code = (
        "import sys, policyroute; print('litellm' in sys.modules, 'langchain_core' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]
