"""Every public name of policyroute.testing documents itself with an example.

The examples themselves are run by tests/api/test_docstring_examples.py.
"""

from __future__ import annotations

import inspect

import pytest

import policyroute.testing as testing


def public_callables() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in testing.__all__:
        obj = getattr(testing, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants and type aliases carry no runtime docstring
        found.append((name, obj))
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr not in ("__aenter__",):
                    continue
                target = value.fget if isinstance(value, property) else value
                if isinstance(target, staticmethod):
                    target = target.__func__
                if inspect.isfunction(target):
                    found.append((f"{name}.{attr}", target))
    return found


@pytest.mark.parametrize(
    ("name", "obj"), [pytest.param(name, obj, id=name) for name, obj in public_callables()]
)
def test_public_name_has_a_docstring_with_an_example(name: str, obj: object) -> None:
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ">>>" in doc, f"{name}'s docstring has no example"
