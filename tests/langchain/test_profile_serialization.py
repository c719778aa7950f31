"""A model's profile through LangChain's dumps/loads: one the user gave is kept as given, one
resolved from the policy is resolved again, from the policy as it is when loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.load import dumps, loads

from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.profile import is_resolved

# loads() is a beta API of langchain-core; its warning says nothing about this code.
pytestmark = pytest.mark.filterwarnings(r"ignore:The function `loads?` is in beta")


def _reload(model: ChatPolicyRoute) -> ChatPolicyRoute:
    loaded = loads(
        dumps(model), valid_namespaces=["policyroute"], allowed_objects=[ChatPolicyRoute]
    )
    assert isinstance(loaded, ChatPolicyRoute)
    return loaded


def _plain_text_only(policy: str) -> str:
    return policy.replace("json_schema: true", "json_schema: false").replace(
        "max_output_tokens: 4096", "max_output_tokens: 1000"
    )


def test_a_profile_the_user_gave_survives_dumps_and_loads(
    tmp_path: Path, make_policy: Callable[..., str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(make_policy(), encoding="utf-8")
    given = {"structured_output": False, "max_input_tokens": 8000}
    loaded = _reload(ChatPolicyRoute(policy=str(path), profile=given))
    assert loaded.profile == given
    assert not is_resolved(loaded.profile)
    # still the user's: a copy on another policy keeps it
    copied = loaded.model_copy(update={"policy": make_policy(name="other")})
    assert copied.profile == given


def test_a_resolved_profile_is_resolved_again_from_the_policy_when_loaded(
    tmp_path: Path, make_policy: Callable[..., str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(make_policy(), encoding="utf-8")
    model = ChatPolicyRoute(policy=str(path))
    assert model.profile is not None
    assert model.profile["structured_output"] is True
    saved = dumps(model)
    path.write_text(_plain_text_only(make_policy()), encoding="utf-8")
    loaded = loads(saved, valid_namespaces=["policyroute"], allowed_objects=[ChatPolicyRoute])
    assert loaded.profile == ChatPolicyRoute(policy=str(path)).profile
    assert loaded.profile["structured_output"] is False
    assert is_resolved(loaded.profile)
    copied = loaded.model_copy(update={"policy": make_policy(name="other")})
    assert copied.profile is not None
    assert copied.profile["structured_output"] is True
