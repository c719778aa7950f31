"""`policyroute explain` and the explain library function."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.explain import explain, render_text
from policyroute.policy.loader import load_policy
from policyroute.request import Request

CODE_REQUEST = {"metadata": {"task": "code", "user_id": "u7"}, "messages": "write a parser"}


def _hundred(request: Request) -> int:
    return 100


def test_explain_gathers_route_candidates_prices_costs_and_budgets(policy_path: Path) -> None:
    ex = explain(load_policy(policy_path), CODE_REQUEST, token_counter=_hundred)
    assert (ex.policy, ex.route, ex.route_description) == (
        "cli-fixture",
        "code",
        "code goes to the strong model",
    )
    assert [(c.alias, c.model) for c in ex.candidates] == [
        ("sonnet", "anthropic/claude-sonnet-4-5-20250929"),
        ("mini", "openai/gpt-4o-mini"),
    ]
    mini = ex.candidates[1]
    assert (mini.input_per_mtok, mini.output_per_mtok) == (Decimal("0.15"), Decimal("0.6"))
    # 100 counted input tokens + the policy's max_tokens default of 1000 output tokens
    assert (mini.input_tokens, mini.output_tokens) == (100, 1000)
    assert mini.worst_case_cost == Decimal("0.000615")
    assert ex.params == {"temperature": 0}
    assert [(b.name, b.per, b.scope, b.window) for b in ex.budgets] == [
        ("per-user-daily", "metadata.user_id", "u7", "day")
    ]
    assert any("route 'code' matched" in line for line in ex.trace)


def test_skipped_candidates_carry_their_reason(policy_path: Path) -> None:
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]
    ex = explain(load_policy(policy_path), {"messages": image}, token_counter=_hundred)
    assert [c.alias for c in ex.candidates] == ["mini"]
    assert [alias for alias, _ in ex.skipped] == ["local"]
    assert "vision" in ex.skipped[0][1]
    assert ex.budgets[0].scope is None  # no user_id in the request
    assert "metadata.user_id=(absent)" in render_text(ex)


def test_render_text_shows_every_section(policy_path: Path) -> None:
    text = render_text(explain(load_policy(policy_path), CODE_REQUEST, token_counter=_hundred))
    for expected in (
        "policy  cli-fixture",
        "route   code  (code goes to the strong model)",
        "openai/gpt-4o-mini",
        "$0.000615",
        "100+1000",
        "params  temperature=0",
        "per-user-daily  metadata.user_id=u7  $2 per day  warn at 75%, 90%  on exceed: block",
        "trace",
    ):
        assert expected in text, expected
    assert "\x1b[" not in text


def test_cli_explain_text(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.yaml"
    request.write_text("metadata: {task: code}\nmessages: write a parser\nmax_tokens: 10\n")
    assert main(["explain", str(policy_path), "--request", str(request)]) == 0
    out = capsys.readouterr().out
    assert "route   code" in out
    assert "anthropic/claude-sonnet-4-5-20250929" in out
    # the request's max_tokens bounds the output of both candidates
    assert len(re.findall(r"\b\d+\+10$", out, flags=re.MULTILINE)) == 2


def test_cli_explain_json_from_stdin(
    policy_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(CODE_REQUEST)))
    assert main(["explain", str(policy_path), "--request", "-", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format_version"] == 1
    assert doc["route"] == "code"
    assert [c["alias"] for c in doc["candidates"]] == ["sonnet", "mini"]
    assert [c["refused_at_call_time"] for c in doc["candidates"]] == [None, None]
    mini = doc["candidates"][1]
    assert (mini["input_per_mtok"], mini["output_per_mtok"]) == ("0.15", "0.6")
    assert mini["worst_case"]["output_tokens"] == 1000
    assert Decimal(mini["worst_case"]["cost_usd"]) > 0
    assert doc["params"] == {"temperature": 0}
    assert doc["budgets"][0]["scope"] == "u7"
    assert doc["trace"]


def test_cli_explain_colours_only_on_a_terminal(
    policy_path: Path,
    tmp_path: Path,
    tty_stdout: Callable[[], io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = tmp_path / "r.json"
    request.write_text(json.dumps(CODE_REQUEST))
    out = tty_stdout()
    assert main(["explain", str(policy_path), "--request", str(request)]) == 0
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    out = tty_stdout()
    assert main(["explain", str(policy_path), "--request", str(request)]) == 0
    assert "\x1b[" not in out.getvalue()


@pytest.mark.parametrize(
    ("policy_fixture", "request_text", "expected_on_stderr"),
    [
        pytest.param(
            "policy_path",
            "metadata: {offline: true}\n"
            "messages: [{role: user, content: [{type: image_url, image_url: {url: u}}]}]\n",
            "local",
            id="no-candidate-can-serve-the-request",
        ),
        pytest.param(
            "policy_path", "messages: hi\nmessgaes: typo\n", "messgaes", id="malformed-request"
        ),
        pytest.param(
            "broken_path", "messages: hi\n", "[PR101]", id="invalid-policy-prints-its-diagnostics"
        ),
    ],
)
def test_what_cannot_be_explained_exits_1(
    policy_fixture: str,
    request_text: str,
    expected_on_stderr: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    policy: Path = request.getfixturevalue(policy_fixture)
    request_file = tmp_path / "r.yaml"
    request_file.write_text(request_text)
    assert main(["explain", str(policy), "--request", str(request_file)]) == 1
    assert expected_on_stderr in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "POLICY"],  # --request is required
        ["explain", "missing.yaml", "--request", "-"],
        ["explain", "POLICY", "--request", "missing.yaml"],
    ],
)
def test_explain_usage_errors_exit_2(
    argv: list[str], policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(policy_path) if a == "POLICY" else a for a in argv]
    assert main(argv) == 2
    assert capsys.readouterr().err
