"""The README and docs/policy-language.md say only what the code does.

Every fenced block a reader can copy is checked here, straight from the markdown: whole YAML
policies validate, fragments validate inside a minimal policy, Python snippets run offline
against the fake provider (or are marked as needing a real provider, and then at least
compile and import), every CLI line shown exists with its flags, and the error tree, the
diagnostic codes and the fake provider's faults listed match the code.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, get_args

import pytest
from ruamel.yaml import YAML

import policyroute.errors
from policyroute.cli import main
from policyroute.policy.codes import CODES
from policyroute.policy.validate import ValidationResult, validate_text
from policyroute.testing import FakeProvider, Fault

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LANGUAGE = REPO / "docs" / "policy-language.md"

# A Python block whose first line starts so calls real providers; it is compiled and its
# imports run, nothing more.
NEEDS_PROVIDER = "# needs a real provider"

# Set for every snippet: the policies in the docs read these, and an unset one is a warning.
ENV = {
    "OPENAI_API_KEY": "sk-docs-test",
    "OPENAI_API_KEY_2": "sk-docs-test-2",
    "ANTHROPIC_API_KEY": "sk-ant-docs-test",
    "GEMINI_API_KEY": "docs-test",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


def _load(text: str) -> Any:
    # YAML 1.2, as policyroute reads policies: `on:` is a key, not true.
    return YAML(typ="safe", pure=True).load(text)


class Block(NamedTuple):
    doc: str
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


_FENCE = re.compile(r"^```(\S*)\s*$")


def _blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with the line its fence opens on."""
    blocks: list[Block] = []
    lang: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line)
        if lang is None:
            if match:
                lang, body, start = match.group(1), [], number
        elif line.strip() == "```":
            blocks.append(Block(path.name, start, lang, "\n".join(body) + "\n"))
            lang = None
        else:
            body.append(line)
    assert lang is None, f"{path.name}:{start}: unclosed fence"
    return blocks


ALL_BLOCKS = _blocks(README) + _blocks(LANGUAGE)


def _of(lang: str) -> list[Block]:
    return [b for b in ALL_BLOCKS if b.lang == lang]


def _yaml_kind(block: Block) -> str:
    data = _load(block.text)
    if data is None:
        return "comment"
    assert isinstance(data, dict), f"{block}: a YAML block that is not a mapping"
    if "policyroute" in data:
        return "policy"
    if "cases" in data:
        return "policy-tests"
    if "repos" in data:
        return "pre-commit"
    return "fragment"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def _problems(result: ValidationResult, allowed: frozenset[str] = frozenset()) -> list[str]:
    return [d.format() for d in result.diagnostics if d.code not in allowed]


# ---- YAML


def test_the_docs_hold_blocks_of_every_kind() -> None:
    kinds = [_yaml_kind(b) for b in _of("yaml")]
    assert kinds.count("policy") >= 1
    assert kinds.count("fragment") >= 5
    assert {"policy-tests", "pre-commit", "comment"} <= set(kinds)
    assert len(_of("python")) >= 4


@pytest.mark.parametrize("block", [b for b in _of("yaml") if _yaml_kind(b) == "policy"], ids=str)
@pytest.mark.usefixtures("env")
def test_a_whole_policy_validates_without_a_diagnostic(block: Block) -> None:
    assert _problems(validate_text(block.text, file=str(block), strict=True)) == []


# Enough of a policy around a fragment of the language doc: the names its fragments use.
_BASE: dict[str, Any] = {
    "policyroute": 1,
    "name": "fragment",
    "models": {
        alias: {"model": "openai/gpt-4o-mini", "api_key": "${OPENAI_API_KEY}"}
        for alias in ("mini", "haiku", "sonnet", "local")
    },
    "groups": {"cheap": {"models": ["mini", "haiku", "local"]}},
    "routes": [
        {"name": "code", "when": {"metadata.task": "code"}, "to": ["sonnet", "mini"]},
        {"name": "default", "to": "cheap"},
    ],
}


def _embedded(fragment: dict[str, Any]) -> dict[str, Any]:
    policy = dict(_BASE)
    for key, value in fragment.items():
        base = policy.get(key)
        # A models or groups fragment adds entries; any other section replaces the base's.
        policy[key] = {**base, **value} if isinstance(base, dict) else value
    return policy


@pytest.mark.parametrize("block", [b for b in _of("yaml") if _yaml_kind(b) == "fragment"], ids=str)
@pytest.mark.usefixtures("env")
def test_a_policy_fragment_validates_inside_a_minimal_policy(block: Block) -> None:
    fragment = _load(block.text)
    assert set(fragment) <= set(CHECKED_SECTIONS), f"{block}: unexpected sections"
    text = json.dumps(_embedded(fragment), indent=1)
    # Unused models and groups are the base's doing, not the fragment's.
    assert _problems(validate_text(text, file=str(block)), frozenset({"PR105", "PR106"})) == []


CHECKED_SECTIONS = ("models", "groups", "routes", "budgets", "defaults", "store", "receipts")


def test_the_schema_comment_points_at_the_published_schema() -> None:
    comments = [b for b in _of("yaml") if b.text.startswith("# yaml-language-server:")]
    assert comments
    line = comments[0].text.splitlines()[0]
    for block in comments:
        assert block.text.splitlines()[0] == line, block
        match = re.search(r"\$schema=(\S+)", block.text)
        assert match, block
        # The line goes at the top of a policy in policies/, as the example policies have it.
        published = (REPO / "policies" / match.group(1)).resolve()
        packaged = REPO / "policyroute" / "schema" / "policy.schema.json"
        assert published.read_text(encoding="utf-8") == packaged.read_text(encoding="utf-8")
    for policy in sorted((REPO / "policies").glob("*.yaml")):
        if not policy.name.endswith(".tests.yaml"):
            assert policy.read_text(encoding="utf-8").splitlines()[0] == line, policy.name


@pytest.mark.usefixtures("env")
def test_the_policy_tests_example_passes_against_the_readme_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tests_block,) = [b for b in _of("yaml") if _yaml_kind(b) == "policy-tests"]
    policy_name = _load(tests_block.text)["policy"]
    policies = [b for b in _of("yaml") if b.doc == README.name and _yaml_kind(b) == "policy"]
    (policy_block,) = [b for b in policies if _load(b.text)["name"] in policy_name]
    (tmp_path / policy_name).write_text(policy_block.text, encoding="utf-8")
    tests_file = tmp_path / "support.tests.yaml"
    tests_file.write_text(tests_block.text, encoding="utf-8")
    assert main(["test", str(tests_file)]) == 0, capsys.readouterr()


def test_the_pre_commit_example_names_the_published_hooks() -> None:
    (block,) = [b for b in _of("yaml") if _yaml_kind(b) == "pre-commit"]
    hooks = _load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    published = {hook["id"] for hook in hooks}
    used = {h["id"] for repo in _load(block.text)["repos"] for h in repo["hooks"]}
    assert used == published


# ---- Python


def _python_blocks(*, needs_provider: bool) -> list[Block]:
    return [b for b in _of("python") if b.text.startswith(NEEDS_PROVIDER) == needs_provider]


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch, env: None) -> None:
    # Snippets name policies by paths relative to the repository root.
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("block", _python_blocks(needs_provider=False), ids=str)
@pytest.mark.usefixtures("in_repo")
def test_an_offline_python_snippet_runs(block: Block) -> None:
    exec(compile(block.text, str(block), "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("block", _python_blocks(needs_provider=True), ids=str)
@pytest.mark.usefixtures("in_repo")
def test_a_provider_snippet_compiles_and_its_imports_and_files_exist(block: Block) -> None:
    tree = ast.parse(block.text, str(block))
    imports: list[ast.stmt] = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports, block
    exec(compile(ast.Module(imports, []), str(block), "exec"), {})
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and str(node.value).endswith(".yaml"):
            assert (REPO / str(node.value)).is_file(), f"{block}: no file {node.value!r}"


def _readme_langchain_snippet() -> Block:
    (block,) = [b for b in _of("python") if "ChatPolicyRoute(policy=" in b.text]
    return block


def test_the_langchain_snippet_metadata_carries_what_its_comment_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The README's LangChain snippet needs a real provider; run it on the examples' policy,
    # whose models live on the fake provider, to check what it prints.
    block = _readme_langchain_snippet()
    policy = re.search(r'policy="([^"]+)"', block.text)
    assert policy
    assert (REPO / policy.group(1)).is_file()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXAMPLES_API_KEY", "not-a-real-key")
    code = block.text.replace(policy.group(1), str(REPO / "examples/fake-provider.policy.yaml"))
    with FakeProvider() as fp:
        monkeypatch.setenv("FAKE_PROVIDER_URL", fp.base_url)
        exec(compile(code, str(block), "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    comment = block.text.split('["policyroute"])', 1)[1]
    keys = re.findall(r"\w+", comment.split("#", 1)[1])
    assert keys
    for key in keys:
        assert f"'{key}'" in printed, key


# ---- CLI


def _cli_lines() -> list[str]:
    (block,) = [b for b in _of("text") if b.text.startswith("policyroute validate")]
    return block.text.splitlines()


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_every_cli_line_in_the_readme_exists_with_its_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = _cli_lines()
    commands = []
    for line in lines:
        words = line.split()
        assert words[0] == "policyroute", line
        command = [w for w in words[1:3] if re.fullmatch(r"[a-z]+", w)]
        commands.append(" ".join(command))
        usage = _help(command, capsys)
        for flag, choices in re.findall(r"(--[a-z-]+)(?: ([a-z|]+))?", line):
            assert flag in usage, f"{line}: no {flag}"
            if choices and "|" in choices:
                assert "{" + choices.replace("|", ",") + "}" in usage, f"{line}: {choices}"
    top = _help([], capsys)
    listed = set(re.findall(r"^    ([a-z]+)\s", top, re.MULTILINE))
    assert {c.split()[0] for c in commands} == listed


def test_the_cli_commands_shown_run_on_the_repository_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["validate", "policies/"]) == 0, capsys.readouterr()
    assert main(["test", "policies/"]) == 0, capsys.readouterr()
    assert main(["schema"]) == 0
    capsys.readouterr()


def _bash_commands() -> Iterator[list[str]]:
    for block in _of("bash"):
        for line in block.text.splitlines():
            if line.startswith("policyroute "):
                yield line.split()[1:]


RECEIPT = (
    '{"kind": "attempt", "cost": "0.25", "provider": "openai", "model": "openai/gpt-4o-mini",'
    ' "route": "default", "ts": "2025-06-15T10:00:00Z"}\n'
)


def test_the_receipts_and_budget_commands_run_as_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = list(_bash_commands())
    assert [c[:2] for c in commands] == [["receipts", "report"], ["budget", "status"]]
    monkeypatch.chdir(tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "policies").mkdir()
    for argv in commands:
        for word in argv[2:]:
            if word.startswith("policies/"):
                shutil.copy(REPO / word, tmp_path / word)
    receipts = tmp_path / ".policyroute" / "receipts"
    receipts.mkdir(parents=True)
    (receipts / "2025-06-15.jsonl").write_text(RECEIPT, encoding="utf-8")
    for argv in commands:
        # What the shell would do with the glob.
        flat = [
            found
            for w in argv
            for found in ([str(p) for p in sorted(tmp_path.glob(w))] if "*" in w else [w])
        ]
        assert main(flat) == 0, capsys.readouterr()
        out = capsys.readouterr().out
        if flat[:2] == ["budget", "status"]:
            _assert_matches_the_readme_budget_table(out)


def _readme_table(index: int) -> list[list[str]]:
    tables = [b for b in _of("text") if b.text.startswith("budget ")]
    return [line.split() for line in tables[index].text.splitlines()]


def _assert_matches_the_readme_budget_table(out: str) -> None:
    actual = [line.split() for line in out.splitlines() if line.strip()]
    shown = _readme_table(0)
    assert actual[0] == shown[0]
    # The window's date is today's; the rest of each idle row is as the README shows it.
    strip = [[re.sub(r":.*", ":", w) for w in row] for row in actual[1:]]
    assert strip == [[re.sub(r":.*", ":", w) for w in row] for row in shown[1:]]
    assert _readme_table(1)[0] == shown[0]


# ---- the lists that mirror the code


def _tree_block() -> str:
    (block,) = [b for b in _of("text") if b.text.startswith("PolicyRouteError")]
    return block.text


def test_the_error_tree_matches_errors_py() -> None:
    parents: dict[str, str] = {}
    branch = "PolicyRouteError"
    for line in _tree_block().splitlines()[1:]:
        text = re.sub(r"\(.*?\)", "", line)
        names = re.findall(r"[A-Z]\w+", text)
        if re.match(r"^[├└]", line):
            branch = names[0]
            parents[branch] = "PolicyRouteError"
            names = names[1:]
        elif "──" in text:
            # A continuation line ``A ── B``: B derives from A, which is in the branch.
            head, _, tail = text.partition("──")
            (parent,) = re.findall(r"[A-Z]\w+", head)
            parents[parent] = branch
            for name in re.findall(r"[A-Z]\w+", tail):
                parents[name] = parent
            continue
        for name in names:
            parents[name] = branch
    classes = {
        name: cls
        for name, cls in vars(policyroute.errors).items()
        if inspect.isclass(cls) and issubclass(cls, policyroute.errors.PolicyRouteError)
    }
    assert set(parents) == set(classes) - {"PolicyRouteError"}
    for name, parent in parents.items():
        # Builtin bases (RequestError is a ValueError too) are not part of the tree.
        ours = [b for b in classes[name].__bases__ if b.__module__ == policyroute.errors.__name__]
        assert ours == [classes[parent]], name


def _code_table() -> dict[str, tuple[str, str]]:
    rows = re.findall(
        r"^\| `(PR\d{3})` \| (\w+) \| (.*) \|$",
        LANGUAGE.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    return {code: (severity, summary) for code, severity, summary in rows}


def test_the_diagnostic_codes_table_matches_codes_py() -> None:
    table = _code_table()
    assert list(table) == list(CODES)
    for code, (severity, summary) in table.items():
        assert severity == CODES[code].severity, code
        assert summary == CODES[code].summary, code


def test_every_code_mentioned_in_the_docs_exists() -> None:
    for path in (README, LANGUAGE):
        mentioned = set(re.findall(r"\bPR\d{3}\b", path.read_text(encoding="utf-8")))
        assert mentioned <= set(CODES), (path.name, mentioned - set(CODES))


def test_the_faults_listed_are_the_fault_factories() -> None:
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"`Fault\.(\w+)`", text))
    factories = {
        name
        for name, member in vars(Fault).items()
        if isinstance(member, staticmethod) and not name.startswith("_")
    }
    assert named == factories
    for method in re.findall(r"`fp\.(\w+)`", text):
        assert hasattr(FakeProvider, method), method


# ---- the language reference's tables and lists


def _schema() -> dict[str, Any]:
    return dict(json.loads((REPO / "schemas" / "policy.schema.json").read_text(encoding="utf-8")))


def _table(header: str) -> list[list[str]]:
    """The rows of the language doc's table whose header line starts with ``header``."""
    lines = LANGUAGE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    assert rows, header
    return rows


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_top_level_table_matches_the_schema() -> None:
    schema = _schema()
    rows = {_ticked(key)[0]: required for key, required, _ in _table("| key | required |")}
    assert rows.pop("x-…") == "no"
    assert list(schema["patternProperties"]) == ["^x-"]
    assert list(rows) == list(schema["properties"])
    assert [k for k, required in rows.items() if required == "yes"] == schema["required"]


def test_the_operators_table_matches_the_schema() -> None:
    operators = [op for row in _table("| operator |") for op in _ticked(row[0])]
    assert operators == list(_schema()["$defs"]["Test"]["properties"])


def test_the_facts_table_matches_the_catalogue() -> None:
    from policyroute.policy.facts_catalog import DERIVED_FACTS, FACT_PREFIXES

    words = {
        "int": "integer",
        "bool": "boolean",
        "str": "string",
        "str_or_null": "string or null",
        "list": "list of strings",
    }
    documented: dict[str, str] = {}
    for cell, kind in _table("| fact | type |"):
        for fact in _ticked(cell):
            documented[fact.split(".")[0]] = kind
    for prefix in FACT_PREFIXES:
        assert documented.pop(prefix).startswith("any"), prefix
    assert documented == {fact: words[kind] for fact, kind in DERIVED_FACTS.items()}


def test_the_error_classes_listed_match_the_schema_and_errors_py() -> None:
    text = LANGUAGE.read_text(encoding="utf-8")
    paragraph = text.split("Error classes:", 1)[1].split("\n\n", 1)[0]
    listed = _ticked(paragraph)
    assert listed == _schema()["$defs"]["ErrorClass"]["enum"]
    assert tuple(listed) == get_args(policyroute.errors.ErrorClass)


def test_the_group_strategies_in_the_comment_match_the_schema() -> None:
    (block,) = [b for b in _of("yaml") if b.doc == LANGUAGE.name and "strategy:" in b.text]
    comment = block.text.split("strategy:", 1)[1].splitlines()[0].split("#", 1)[1]
    listed = re.findall(r"[a-z_]+", comment.replace("(default)", ""))
    assert listed == _schema()["$defs"]["Group"]["properties"]["strategy"]["enum"]


def test_the_invalid_policies_folder_shows_every_code() -> None:
    shown: set[str] = set()
    for expected in (REPO / "tests" / "policies" / "invalid").glob("*.expected.json"):
        shown.update(d["code"] for d in json.loads(expected.read_text(encoding="utf-8")))
    assert shown == set(CODES)


def test_explain_runs_as_the_cli_list_shows_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (line,) = [line for line in _cli_lines() if line.startswith("policyroute explain")]
    assert line.split()[2:4] == ["POLICY", "--request"]
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    request = tmp_path / "request.yaml"
    request.write_text("metadata: {risk: high}\nmessages: hi\n", encoding="utf-8")
    assert main(["explain", str(REPO / "policies" / "tiered.yaml"), "--request", str(request)]) == 0
    assert "high-risk" in capsys.readouterr().out


def test_the_diagnostic_shown_is_what_validate_reports() -> None:
    (block,) = [b for b in _of("") if b.doc == LANGUAGE.name and "[PR" in b.text]
    match = re.fullmatch(r"(\S+):\d+:\d+ routes\[(\d+)\]\.to: (.*?'(\w+)'.*)\n", block.text)
    assert match
    file, index, said, typo = match.groups()
    routes = [
        {"name": f"r{i}", "when": {"stream": True}, "to": "sonnet"} for i in range(int(index))
    ]
    routes.append({"name": "last", "to": typo})
    policy = {"policyroute": 1, "name": "p", "models": {"sonnet": {"model": "openai/gpt-4o-mini"}}}
    text = json.dumps({**policy, "routes": routes}, indent=1)
    # The line and column depend on the layout; the rest is what a user reads.
    found = [d.format().split(" ", 1)[1] for d in validate_text(text, file=file).diagnostics]
    assert f"routes[{index}].to: {said}" in found


def test_the_set_up_steps_name_what_the_repository_has() -> None:
    tomllib = pytest.importorskip("tomllib")
    (block,) = [b for b in _of("bash") if "pip install" in b.text]
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for extra in re.findall(r"\.\[(\w+)\]", block.text):
        assert extra in project["optional-dependencies"], extra
    assert project["scripts"]["policyroute"] == "policyroute.cli:main"
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    said = README.read_text(encoding="utf-8").split("`bash .ci/run` creates", 1)[1]
    said = said.split("\n\n", 1)[0]
    for step in _ticked(said):
        assert step.replace("python -m ", "") in script.replace("python -m ", ""), step
    assert "redis-server" in script


def test_the_pinned_dependency_set_is_the_one_both_set_up_steps_install() -> None:
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")
    (block,) = [b for b in _of("bash") if "pip install" in b.text]
    (named,) = re.findall(r" -c (\S+)", block.text)
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f'CONSTRAINTS="$PWD/{named}"' in script
    assert script.count('-c "$CONSTRAINTS"') == 2  # the dev install and the runtime-only one
    pins = dict(
        line.split(";", 1)[0].strip().split("==", 1)
        for line in (REPO / named).read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        pinned = pins.get(requirement.name) or pins.get(requirement.name.replace("-", "_"))
        assert pinned is not None, f"{requirement.name} is not pinned in {named}"
        assert requirement.specifier.contains(pinned), (requirement, pinned)


def _prose(path: Path) -> str:
    """The file's text with every run of white space one space, so a figure the docs state
    is found whatever line it was wrapped onto."""
    return " ".join(path.read_text(encoding="utf-8").split())


def test_the_defaults_stated_are_the_ones_a_policy_gets() -> None:
    from policyroute.policy.model import DefaultsSpec, ReceiptsSpec, StoreSpec

    def duration(seconds: float) -> str:
        return f"{seconds:g}s"

    defaults, store, receipts = DefaultsSpec(), StoreSpec(), ReceiptsSpec()
    retry, backoff, breaker = defaults.retry, defaults.retry.backoff, defaults.circuit_breaker
    text = _prose(LANGUAGE).split("What is left out takes its default:", 1)[1]
    text = text.split("A store keys a budget's state", 1)[0]
    jitter = str(backoff.jitter).lower()
    initial, longest = duration(backoff.initial), duration(backoff.max)
    assert (
        f"`retry` is `attempts: {retry.attempts}`, `backoff: {{initial: {initial},"
        f" max: {longest}, multiplier: {backoff.multiplier:g}, jitter: {jitter}}}`"
    ) in text
    on = re.search(r"`on: \[([a-z_, ]+)\]`", text)
    assert on
    assert set(on.group(1).split(", ")) == retry.on
    fallback = re.search(r"`fallback_on:` those five plus ((?:`[a-z_]+`(?:, | and )?)+)", text)
    assert fallback
    assert retry.fallback_on == retry.on | set(_ticked(fallback.group(1)))
    assert f"`retry_after_max: {duration(retry.retry_after_max)}`" in text
    assert defaults.timeout is not None
    assert f"`timeout` is {duration(defaults.timeout)}" in text
    assert (defaults.first_token_timeout, defaults.idle_timeout, defaults.max_tokens) == (
        None,
        None,
        None,
    )
    assert "`first_token_timeout`, `idle_timeout` and `max_tokens` are unset" in text
    cooldown = duration(breaker.cooldown)
    assert f"`circuit_breaker` is `{{failures: {breaker.failures}, cooldown: {cooldown}}}`" in text
    assert f"`store` is `{store.backend}` at `path: {store.path}`" in text
    assert (
        f"`lease: {duration(store.lease)}`, `prefix: {store.prefix}` and"
        f" `lock_timeout: {duration(store.lock_timeout)}`"
    ) in text
    language = _prose(LANGUAGE)
    assert f"`receipts` is `{receipts.sink}` at `{receipts.path}`" in language
    assert receipts.include_prompt is False
    assert "unless the policy opts in (`receipts.include_prompt`)" in _prose(README)


def test_the_limits_stated_are_the_code_s_own() -> None:
    from policyroute._shared_cache import CACHE_SIZE
    from policyroute.budgets.windows import ROLLING_BUCKETS
    from policyroute.costs.receipt_files import MAX_PROBLEMS
    from policyroute.costs.unwritten import UNWRITTEN_MAX
    from policyroute.execution.breaker import DEFAULT_PROBE_LEASE
    from policyroute.policy.conditions import REGEX_TEXT_LIMIT
    from policyroute.policy.load import MAX_CHARS, MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES
    from policyroute.policy.nesting import MAX_EXPANSION, MAX_GROUP_DEPTH

    language, readme = _prose(LANGUAGE), _prose(README)
    for said in (
        f"more than {MAX_NODES:,} nodes",
        f"nesting deeper than {MAX_DEPTH} levels",
        f"integers with more than {MAX_INT_DIGITS} digits",
        f"longer than 512 KiB ({MAX_CHARS:,} characters)",
        f"Groups nest at most {MAX_GROUP_DEPTH} levels",
        f"at most {MAX_EXPANSION:,} entries",
        f"the fact's first {REGEX_TEXT_LIMIT:,} characters",
        f"kept as {ROLLING_BUCKETS} buckets",
        f"holds its slot for {DEFAULT_PROBE_LEASE:g} s, or the cooldown when that is longer",
    ):
        assert said in language, said
    assert MAX_CHARS == 512 * 1024
    retries = _schema()["$defs"]["Retry"]["properties"]["attempts"]
    assert f"attempts: 2 # {retries['minimum']}..{retries['maximum']} retries" in language
    for said in (
        f"At most {CACHE_SIZE} executors are kept",
        f"(the last {UNWRITTEN_MAX})",
        f"the first {MAX_PROBLEMS:,} are listed",
        f"A policy longer than {MAX_CHARS:,} characters is refused (PR009)",
    ):
        assert said in readme, said


def test_the_budget_timezone_default_stated_is_the_one_a_budget_gets() -> None:
    text = (
        "policyroute: 1\nname: tz\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
        "routes: [{name: r, to: m}]\nbudgets: [{name: b, limit_usd: 1, window: day}]\n"
    )
    spec = validate_text(text, environ={}).spec
    assert spec is not None
    zone = spec.budgets[0].window.timezone
    assert f"IANA zone for day/week/month, default {zone} " in _prose(LANGUAGE)
