"""The published JSON Schema and policyroute's validator agree on every value's shape.

An editor checks a policy with the schema alone; ``policyroute validate`` adds semantic checks
(references, cycles, regexes) on top. On what the schema can express they must agree: a policy
the validator accepts is valid for the schema, and one the schema accepts draws no PR0xx
(reading or schema) diagnostic from the validator.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from policyroute.policy.build import parse_duration
from policyroute.policy.load import load_yaml
from policyroute.policy.schema import load_schema
from policyroute.policy.validate import validate_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(json.dumps(load_schema()))
RAW = Draft202012Validator(SCHEMA)
ENV = {"POLICYROUTE_TEST_HOST": "db.internal", "OPENAI_API_KEY": "sk-test"}
MAX_SECONDS = 315_360_000

BASE: dict[str, Any] = load_yaml(
    (ROOT / "tests" / "policies" / "valid" / "everything.yaml").read_text()
).data  # type: ignore[assignment]

# Values at the edges: zero, negative, huge, not finite as text, money and durations as text.
EDGES: list[Any] = [0, -1, 1e300, 2**70, "", "10 USD", "NaN", "0s", "3651d"]


def _mutated(path: tuple[Any, ...], value: Any) -> str:
    tree = json.loads(json.dumps(BASE, default=str))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)
    return json.dumps(tree)  # JSON is YAML 1.2


# One leaf of each kind of value: names, weights, call parameters, durations, money, token
# counts, condition operands, fractions, counts. (Every leaf would take a minute.)
PATHS = """name models.fast.weight models.fast.params.temperature models.fast.params.max_tokens
models.fast.timeout models.private.price.input_per_mtok models.private.context_window
groups.smart.require.min_context_window routes.1.when.input_tokens.gte
routes.1.when.all.1.any.1.last_user_message.regex budgets.0.limit_usd budgets.0.window
budgets.0.timezone budgets.0.warn_at.0 budgets.1.on_exceed.clamp_max_tokens.min_tokens
defaults.retry.attempts defaults.retry.backoff.multiplier defaults.retry.backoff.initial
defaults.first_token_timeout defaults.circuit_breaker.failures store.lease receipts.path"""
LEAVES = [tuple(int(k) if k.isdigit() else k for k in p.split(".")) for p in PATHS.split()]


def _agree(text: str) -> None:
    result = validate_text(text, environ=ENV)
    schema_errors = list(RAW.iter_errors(load_yaml(text).data))
    if result.ok:
        assert schema_errors == [], [e.message for e in schema_errors]
    if not schema_errors:
        shape = [d.format() for d in result.errors if d.code.startswith("PR0")]
        assert shape == []


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: ".".join(map(str, p)))
def test_schema_and_validator_agree_on_edge_values(path: tuple[Any, ...]) -> None:
    for value in EDGES:
        _agree(_mutated(path, value))


def _seconds(text: str) -> float | None:
    try:
        return parse_duration(text)
    except ValueError:
        return None


DURATION_TEXT = st.builds(
    lambda zeros, whole, frac, unit: f"{'0' * zeros}{whole}{frac}{unit}",
    st.integers(0, 2),
    st.one_of(st.integers(0, 10**13), st.sampled_from([3650, 87600, 5256000, 315360000])),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,3}", fullmatch=True)),
    st.sampled_from(["ms", "s", "m", "h", "d"]),
)


@settings(max_examples=400, deadline=None)
@given(DURATION_TEXT)
def test_the_duration_patterns_hold_exactly_the_durations_up_to_3650_days(text: str) -> None:
    seconds = _seconds(text)
    assert seconds is not None
    defs = SCHEMA["$defs"]
    duration = Draft202012Validator(defs["Duration"]).is_valid(text)
    timeout = Draft202012Validator(defs["Timeout"]).is_valid(text)
    window = Draft202012Validator({"$defs": defs, **defs["Window"]}).is_valid(text)
    # the schema compares digits, the builder floats: allow float rounding at the limit only
    if abs(seconds - MAX_SECONDS) > 1e-3:
        assert duration == (seconds <= MAX_SECONDS)
        assert timeout == window == (0 < seconds <= MAX_SECONDS)
