"""Every docstring example in the package runs, so the documentation cannot drift."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import policyroute

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(policyroute.__path__, prefix="policyroute.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
