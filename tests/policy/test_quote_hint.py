"""A name YAML reads as a number or a boolean (``name: 007``, ``to: 1e3``, a model alias
``true``) is reported with a hint to quote it: "expected name, got integer" alone leaves the
user staring at what looks like a name. Model aliases are mapping keys, which always read as
text, so ``to:`` naming the same alias unquoted is the common way to meet this.
"""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

BASE = """policyroute: 1
name: quotes
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
"""


@pytest.mark.parametrize(
    ("old", "new", "path", "kind"),
    [
        ("- name: default", "- name: 007", "routes[0].name", "integer"),
        ("- name: default", "- name: 1e3", "routes[0].name", "number"),
        ("  mini:", "  true:", "routes[0].to", "boolean"),
        ("  mini:", "  0x1F:", "routes[0].to", "integer"),
    ],
)
def test_a_scalar_read_as_a_number_or_boolean_where_text_belongs_gets_a_quote_hint(
    old: str, new: str, path: str, kind: str
) -> None:
    alias = new.strip().rstrip(":")
    text = BASE.replace(old, new)
    if old == "  mini:":
        text = text.replace("to: mini", f"to: {alias}")
    (d,) = [d for d in validate_text(text, environ={}).diagnostics if d.code == "PR012"]
    assert d.path == path
    assert d.message.endswith(f"got {kind}")
    assert d.hint is not None
    assert "quote" in d.hint


def test_no_quote_hint_where_text_is_not_wanted() -> None:
    text = BASE.replace("to: mini", "to: mini\n    params: {temperature: true}")
    (d,) = [d for d in validate_text(text, environ={}).diagnostics if d.code == "PR012"]
    assert d.path == "routes[0].params.temperature"
    assert d.hint is None
