"""A policy's text given as something else than a string is a ``TypeError`` that says what
was given and, for bytes and paths, what to do instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policyroute.policy.loader import load_policy_text
from policyroute.policy.validate import validate_text


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (b"policyroute: 1\n", "got bytes (decode it first, or pass the file's path to"),
        (bytearray(b"policyroute: 1\n"), "got bytearray (decode it first"),
        (Path("policy.yaml"), "got PosixPath (a path goes to load_policy)"),
        (None, "got NoneType"),
        (1, "got int"),
    ],
)
def test_text_that_is_not_a_str_is_a_type_error_naming_it(given: Any, said: str) -> None:
    for load in (load_policy_text, validate_text):
        with pytest.raises(TypeError, match="the policy's text must be a str") as raised:
            load(given)
        assert said in str(raised.value)
