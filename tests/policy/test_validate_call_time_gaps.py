"""Policies that used to pass `policyroute validate` and then misbehave at call time are refused
(or warned about) at the value, through the CLI: credentials in an api_base that hide the key,
an api_base that is no http(s) URL, a limit that rounds to zero, a %YAML 1.1 directive,
non-finite call parameters and time zones that depend on the host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main

HEAD = "policyroute: 1\nname: gaps\n"
TAIL = "routes: [{name: r, to: g}]\ndefaults: {max_tokens: 10}\n"


def _validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *flags: str
) -> tuple[int, list[dict[str, Any]]]:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["validate", "--format", "json", *flags, str(path)])
    report = json.loads(capsys.readouterr().out)
    return code, report["files"][0]["diagnostics"]


def _models(*lines: str) -> str:
    names = [line.split(":", 1)[0].strip() for line in lines]
    return (
        HEAD
        + "models:\n"
        + "".join(f"  {line}\n" for line in lines)
        + f"groups: {{g: {{models: [{', '.join(names)}]}}}}\n"
        + TAIL
    )


def _at(text: str, line: int, key: str) -> int:
    """The 1-based column of the value after ``key: `` on ``line`` of ``text``."""
    row = text.splitlines()[line - 1]
    return row.index(f"{key}: ") + len(key) + 3


def _only(diagnostics: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [d for d in diagnostics if d["code"] == code]


# ---- 1. credentials in api_base take the place of an OpenAI-format key


def test_credentials_in_api_base_hide_an_openai_format_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_KEY", "sk-test")
    text = _models(
        "m: {model: openai/gpt-4o-mini, api_base: 'http://user:pw@gw/v1', api_key: '${GW_KEY}'}"
    )

    code, found = _validate(tmp_path, capsys, text)

    (warning,) = _only(found, "PR135")
    assert code == 0
    assert warning["severity"] == "warning"
    where = (warning["line"], warning["column"], warning["path"])
    assert where == (4, _at(text, 4, "api_base"), "models.m.api_base")
    assert "Authorization: Basic" in warning["message"]
    assert "never reaches the provider" in warning["message"]
    assert "remove api_key" in warning["hint"]
    assert "pw" not in warning["message"].replace("provider", "")
    assert main(["validate", "--strict", str(tmp_path / "policy.yaml")]) == 1


def test_credentials_from_an_env_var_are_found_and_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_KEY", "sk-test")
    monkeypatch.setenv("GW_URL", "https://svc:hunter2@gateway.example/v1")
    text = _models("m: {model: gpt-4o-mini, api_base: '${GW_URL}', api_key: '${GW_KEY}'}")

    _, found = _validate(tmp_path, capsys, text)

    (warning,) = _only(found, "PR135")
    assert "${GW_URL}" in warning["message"]
    assert "hunter2" not in json.dumps(found)
    assert "svc" not in json.dumps(found)


@pytest.mark.parametrize(
    "model", ["anthropic/claude-haiku-4-5", "claude-3-5-haiku-20241022", "azure/my-gpt"]
)
def test_a_key_sent_in_its_own_header_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    monkeypatch.setenv("GW_KEY", "sk-test")
    price = "price: {input_per_mtok: 1, output_per_mtok: 1}"
    text = _models(
        f"m: {{model: {model}, api_base: 'http://u:pw@gw', api_key: '${{GW_KEY}}', {price}}}"
    )

    assert _only(_validate(tmp_path, capsys, text)[1], "PR135") == []


def test_credentials_without_a_key_are_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _models("m: {model: openai/gpt-4o-mini, api_base: 'http://u:pw@gw/v1'}")

    assert _validate(tmp_path, capsys, text) == (0, [])


# ---- 3. api_base must be an http(s) URL, also once expanded


@pytest.mark.parametrize(
    ("base", "problem"),
    [
        ("ftp://files.example.com/v1", "uses the scheme 'ftp'"),
        ("localhost:11434", "has no scheme"),
        ("api.openai.com/v1", "has no scheme"),
        ("unix:///var/run/llm.sock", "uses the scheme 'unix'"),
        ("'http://gw /v1'", "holds a space"),
        ('"http://gw/v1\\n"', "holds a line break"),
        ("'http://'", "has no host"),
        ("'http://gw:port/v1'", "has a malformed host or port"),
    ],
)
def test_an_api_base_that_is_no_http_url_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base: str, problem: str
) -> None:
    text = _models(f"m: {{model: openai/gpt-4o-mini, api_base: {base}}}")

    code, found = _validate(tmp_path, capsys, text)

    (error,) = _only(found, "PR136")
    assert code == 1
    where = (error["line"], error["column"], error["path"])
    assert where == (4, _at(text, 4, "api_base"), "models.m.api_base")
    assert error["message"].endswith(problem)
    assert "https://" in error["hint"]


@pytest.mark.parametrize("value", ["http://gw/v1\n", "gateway.internal:8080", "ftp://gw"])
def test_an_api_base_is_checked_after_expansion_without_showing_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LLM_BASE", value)
    text = _models("m: {model: openai/gpt-4o-mini, api_base: '${LLM_BASE}/v1'}")

    _, found = _validate(tmp_path, capsys, text)

    (error,) = _only(found, "PR136")
    assert "(with ${LLM_BASE} expanded)" in error["message"]
    assert "gw" not in error["message"]
    assert "gateway" not in error["message"]


@pytest.mark.parametrize(
    "base", ["http://localhost:11434", "HTTPS://API.EXAMPLE.COM/v1", "http://[::1]:8000/v1"]
)
def test_http_and_https_urls_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base: str
) -> None:
    text = _models(f"m: {{model: openai/gpt-4o-mini, api_base: '{base}'}}")

    assert _validate(tmp_path, capsys, text) == (0, [])


def test_an_unset_variable_is_left_to_pr119(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLM_BASE", raising=False)
    text = _models("m: {model: openai/gpt-4o-mini, api_base: '${LLM_BASE}'}")

    assert [d["code"] for d in _validate(tmp_path, capsys, text)[1]] == ["PR119"]


# ---- 2. a limit below one nano-dollar


BUDGET = (
    HEAD
    + "models: {{m: {{model: openai/gpt-4o-mini}}}}\n"
    + "budgets:\n  - {{name: b, limit_usd: {limit}, window: day}}\n"
    + "routes: [{{name: r, to: m}}]\ndefaults: {{max_tokens: 10}}\n"
)


@pytest.mark.parametrize("limit", ["0.0000000001", '"0.0000000009"', "1e-12"])
def test_a_limit_below_one_nano_dollar_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    text = BUDGET.format(limit=limit)
    code, found = _validate(tmp_path, capsys, text)

    (error,) = found
    assert code == 1
    assert error["code"] == "PR137"
    where = (error["line"], error["column"], error["path"])
    assert where == (5, _at(text, 5, "limit_usd"), "budgets[0].limit_usd")
    assert "counts as 0" in error["message"]


@pytest.mark.parametrize("limit", ["0.000000001", '"0.0000000015"', "0.01"])
def test_a_limit_of_one_nano_dollar_or_more_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    assert _validate(tmp_path, capsys, BUDGET.format(limit=limit)) == (0, [])


# ---- 4. %YAML directives


def test_a_yaml_1_1_directive_is_refused_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "# policy\n%YAML 1.1\n---\n" + _models(
        "m: {model: openai/gpt-4o-mini, params: {parallel_tool_calls: yes}}"
    )

    code, found = _validate(tmp_path, capsys, text)

    assert code == 1
    assert [(d["code"], d["line"], d["column"]) for d in found] == [("PR017", 2, 1)]
    assert "YAML 1.1" in found[0]["message"]
    assert "yes, no, on and off are text" in found[0]["hint"]


@pytest.mark.parametrize("version", ["1.0", "1.3", "2.0"])
def test_other_versions_are_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    text = f"%YAML {version}\n---\n" + _models("m: {model: openai/gpt-4o-mini}")

    code, found = _validate(tmp_path, capsys, text)

    assert code == 1
    assert [d["code"] for d in found] == ["PR017"]
    assert f"%YAML {version}" in found[0]["message"]


def test_a_yaml_1_2_directive_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "%YAML 1.2\n---\n" + _models("m: {model: openai/gpt-4o-mini}")

    assert _validate(tmp_path, capsys, text) == (0, [])


# ---- 5. non-finite call parameters in the policy


def test_nan_as_a_call_parameter_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _models("m: {model: openai/gpt-4o-mini, params: {temperature: NaN, top_p: .nan}}")

    code, found = _validate(tmp_path, capsys, text)

    by_path = {d["path"]: d for d in found}
    assert code == 1
    temperature = by_path["models.m.params.temperature"]
    assert temperature["code"] == "PR012"
    assert "finite numbers only" in temperature["hint"]
    top_p = by_path["models.m.params.top_p"]
    assert top_p["code"] == "PR004"
    assert "give a finite number" in top_p["hint"]


# ---- 6. time zones that depend on the host


@pytest.mark.parametrize(
    ("zone", "hint"),
    [
        ("localtime", "on other hosts"),
        ("posixrules", "on other hosts"),
        ("posix/Europe/Paris", "on other hosts"),
        ("right/UTC", "on other hosts"),
        ("Factory", "such as UTC"),
        ("europe/paris", "did you mean 'Europe/Paris'?"),
        ("Europe/Pariss", "did you mean 'Europe/Paris'?"),
    ],
)
def test_a_host_dependent_time_zone_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], zone: str, hint: str
) -> None:
    text = BUDGET.format(limit=1).replace("window: day}", f"window: day, timezone: {zone}}}")

    code, found = _validate(tmp_path, capsys, text)

    (error,) = found
    assert code == 1
    assert error["code"] == "PR122"
    where = (error["line"], error["column"], error["path"])
    assert where == (5, _at(text, 5, "timezone"), "budgets[0].timezone")
    assert hint in error["hint"]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_iana_time_zones_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], zone: str
) -> None:
    text = BUDGET.format(limit=1).replace("window: day}", f"window: day, timezone: {zone}}}")

    assert _validate(tmp_path, capsys, text) == (0, [])


@pytest.mark.parametrize(
    "url",
    [
        "http://u:pw@gw/v1",
        "http://:@gw",
        "http://@gw",
        "http://u@gw",
        "http://:pw@gw",
        "http://gw/a@b",
        "http://a@b@gw/x",
        "https://gw?x=a@b",
        "http://u:p@[::1]:80/",
    ],
)
def test_validation_finds_credentials_where_calls_send_them(url: str) -> None:
    from policyroute.execution.url_credentials import basic_authorization
    from policyroute.policy.endpoints import _has_credentials

    assert _has_credentials(url) == (basic_authorization(url) is not None)
