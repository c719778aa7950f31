"""A ``store.backend`` that is not a name is the schema's error, not a crash in the store checks.

``backend: []`` (or a mapping) reached the store checks' backend lookup and raised
``TypeError: unhashable type`` out of ``validate``.
"""

from __future__ import annotations

import pytest

from policyroute.policy.validate import validate_text

POLICY = """
policyroute: 1
name: shapes
models:
  mini: {{model: openai/gpt-4o-mini}}
routes:
  - name: default
    to: mini
store: {{backend: {backend}, url: "redis://localhost:6379/0"}}
"""


@pytest.mark.parametrize("backend", ["[]", "{redis: 1}", "[redis]", "7"])
def test_a_backend_of_another_shape_is_a_located_schema_error(backend: str) -> None:
    result = validate_text(POLICY.format(backend=backend))
    assert not result.ok
    paths = {d.path for d in result.errors}
    assert "store.backend" in paths, paths
