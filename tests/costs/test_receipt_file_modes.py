"""Receipt files that may hold prompt text (``receipts.include_prompt``) are created readable
by their owner only (``0600``): JSON-lines files, and the SQLite database with its ``-wal`` and
``-shm`` files. They were created with the process's umask (``0644`` by default), so any account
on the host could read every prompt. Files without prompts keep ``0644`` less the umask, so
other accounts can still read cost receipts; a file that exists keeps its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyroute import ChatPolicyRoute, load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.api import clear_cache
from policyroute.costs.sinks import JsonlSink
from policyroute.testing import FakeProvider

from .helpers import FAKE_A_POLICY

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX's"),
]


@pytest.fixture(autouse=True)
def _umask_022() -> Iterator[None]:
    """The usual umask, which lets every account read a file created ``0644``."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _policy(fake_a: FakeProvider, receipts: str) -> str:
    text = FAKE_A_POLICY.format(base=fake_a.openai_base)
    return text.replace("receipts: {sink: none}", f"receipts: {receipts}")


@pytest.mark.parametrize(("include_prompt", "mode"), [(True, 0o600), (False, 0o644)])
def test_a_jsonl_file_with_prompts_is_the_owners_only(
    fake_a: FakeProvider, tmp_path: Path, include_prompt: bool, mode: int
) -> None:
    receipts = (
        f"{{sink: jsonl, path: '{tmp_path}/r/{{date}}.jsonl', include_prompt: {include_prompt}}}"
    )
    llm = ChatPolicyRoute(policy=_policy(fake_a, receipts))
    llm.invoke("a question about my medical records")
    (written,) = (tmp_path / "r").glob("*.jsonl")
    assert ("medical records" in written.read_text(encoding="utf-8")) is include_prompt
    assert _mode(written) == mode


@pytest.mark.parametrize(("include_prompt", "mode"), [(True, 0o600), (False, 0o644)])
def test_a_sqlite_database_with_prompts_is_the_owners_only(
    fake_a: FakeProvider, tmp_path: Path, include_prompt: bool, mode: int
) -> None:
    database = tmp_path / "receipts.sqlite3"
    receipts = f"{{sink: sqlite, path: '{database}', include_prompt: {include_prompt}}}"
    llm = ChatPolicyRoute(policy=_policy(fake_a, receipts))
    llm.invoke("a question about my medical records")
    # The WAL and shared-memory files exist while the sink's connection is open.
    files = [database, database.with_name("receipts.sqlite3-wal")]
    files.append(database.with_name("receipts.sqlite3-shm"))
    assert {path.name: _mode(path) for path in files} == {path.name: mode for path in files}
    clear_cache()


@pytest.mark.parametrize("sink", ["jsonl", "sqlite"])
def test_an_existing_file_keeps_its_mode(fake_a: FakeProvider, tmp_path: Path, sink: str) -> None:
    path = tmp_path / ("receipts.jsonl" if sink == "jsonl" else "receipts.sqlite3")
    path.touch()
    path.chmod(0o640)  # the owner's choice: a group of readers
    receipts = f"{{sink: {sink}, path: '{path}', include_prompt: true}}"
    llm = ChatPolicyRoute(policy=_policy(fake_a, receipts))
    llm.invoke("hello")
    clear_cache()
    assert path.stat().st_size > 0
    assert _mode(path) == 0o640


def test_a_sink_made_by_hand_keeps_a_new_file_of_prompts_private(
    fake_a: FakeProvider, tmp_path: Path
) -> None:
    """A sink the application makes itself knows nothing of the policy: a file it creates
    for a receipt holding a prompt is the owner's only all the same."""
    receipts = "{sink: none, include_prompt: true}"
    policy = load_policy(_policy(fake_a, receipts))
    path = tmp_path / "by-hand.jsonl"
    sink = JsonlSink(path)
    llm = ChatPolicyRoute(
        policy=policy, accounting=PolicyAccounting(policy, guard=None, sinks=[sink])
    )
    llm.invoke("a question about my medical records")
    sink.close()
    assert "medical records" in path.read_text(encoding="utf-8")
    assert _mode(path) == 0o600
