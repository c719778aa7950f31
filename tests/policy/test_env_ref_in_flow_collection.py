"""An unquoted ``${VAR}`` inside ``{ }`` or ``[ ]`` is a YAML syntax error (the ``{`` opens a
mapping there); the diagnostic says to quote the reference instead of only
"expected ',' or '}', but got '{'".
"""

from __future__ import annotations

from policyroute.policy.validate import validate_text

FLOW = """policyroute: 1
name: flow
models:
  mini: {model: openai/gpt-4o-mini, api_key: ${OPENAI_API_KEY}}
routes:
  - name: default
    to: mini
"""


def test_an_unquoted_reference_in_a_flow_mapping_gets_a_quote_hint() -> None:
    (d,) = validate_text(FLOW, environ={}).diagnostics
    assert (d.code, d.line, d.column) == ("PR002", 4, 47)
    assert d.hint is not None
    assert "put the value holding ${OPENAI_API_KEY} in quotes" in d.hint


def test_quoted_it_reads() -> None:
    quoted = FLOW.replace("${OPENAI_API_KEY}", '"${OPENAI_API_KEY}"')
    assert validate_text(quoted, environ={"OPENAI_API_KEY": "k"}).ok


def test_other_flow_errors_get_no_such_hint() -> None:
    (d,) = validate_text(FLOW.replace("${OPENAI_API_KEY}}", "{x}"), environ={}).diagnostics
    assert d.code == "PR002"
    assert d.hint is None or "${" not in d.hint
