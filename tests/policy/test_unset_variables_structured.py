"""A deployment's unset variables are data: which field reads which variable.

``ModelSpec.unset_env`` said so as text (``"api_key: ${KEY}"``) that ``policyroute explain``
and the refused call's message each parsed back; it now holds ``UnsetVariable(field,
variable)`` pairs that both read as they are.
"""

from __future__ import annotations

from policyroute.policy.model import UnsetVariable
from policyroute.policy.validate import validate_text

POLICY = """\
policyroute: 1
name: unset
models:
  gateway:
    model: openai/gpt-4o-mini
    api_base: "https://${PR_HOST}:${PR_PORT}/v1"
    api_key: "${PR_KEY}"
  mini: {model: openai/gpt-4o-mini, api_key: "${PR_MINI_KEY}"}
routes: [{name: d, to: [gateway, mini]}]
"""


def test_each_unset_variable_names_its_field_and_variable() -> None:
    spec = validate_text(POLICY, environ={"PR_PORT": "443", "PR_MINI_KEY": "k"}).spec
    assert spec is not None
    (base, key) = spec.models["gateway"].unset_env
    assert (base.field, base.variable) == ("api_base", "PR_HOST")
    assert (key.field, key.variable) == ("api_key", "PR_KEY")
    assert spec.models["gateway"].unset_env == (
        UnsetVariable("api_base", "PR_HOST"),
        UnsetVariable("api_key", "PR_KEY"),
    )
    assert spec.models["mini"].unset_env == ()


def test_every_variable_of_an_endpoint_is_named_once_in_the_order_written() -> None:
    spec = validate_text(POLICY, environ={}).spec
    assert spec is not None
    assert [(u.field, u.variable) for u in spec.models["gateway"].unset_env] == [
        ("api_base", "PR_HOST"),
        ("api_base", "PR_PORT"),
        ("api_key", "PR_KEY"),
    ]
    assert [u.variable for u in spec.models["mini"].unset_env] == ["PR_MINI_KEY"]
