"""A policy path no file can have (a NUL character, a lone surrogate that the file system's
encoding cannot hold) is a PR001 policy error naming the path, from ``load_policy`` and from
``ChatPolicyRoute(policy=...)``, as a missing file is: it raised a bare ``ValueError`` (or
``UnicodeEncodeError``), which ``ChatPolicyRoute`` wrapped in pydantic's ``ValidationError``."""

from __future__ import annotations

import pytest

from policyroute import ChatPolicyRoute
from policyroute.errors import PolicyValidationError
from policyroute.policy.loader import load_policy
from policyroute.policy.validate import validate_file

PATHS = [
    ("policies/tiered.yaml\x00", "its name holds a NUL character"),
    ("policies/\ud800.yaml", "its name cannot be written as a file name"),
]


@pytest.mark.parametrize(("path", "why"), PATHS, ids=["nul", "surrogate"])
def test_load_policy_names_the_path(path: str, why: str) -> None:
    with pytest.raises(PolicyValidationError) as caught:
        load_policy(path)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "PR001"
    assert diagnostic.message == f"cannot read the policy file: {why}"
    assert diagnostic.file == path
    assert validate_file(path).diagnostics == (diagnostic,)


@pytest.mark.parametrize(("path", "why"), PATHS, ids=["nul", "surrogate"])
def test_chat_policy_route_raises_the_policy_error(path: str, why: str) -> None:
    with pytest.raises(PolicyValidationError, match=why):
        ChatPolicyRoute(policy=path)
