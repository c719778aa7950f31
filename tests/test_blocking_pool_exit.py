"""Work still running in a pool's thread as the interpreter exits is let finish, within a bound.

A call cancelled by an application's shutdown handler (one that cancels every task) while its
receipt is being written leaves the write running in the sink's thread, which a thread cannot
be stopped from. The process then exits at once: the write must still reach the file whole,
and a write that never ends must not keep the process from exiting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(90)

POLICY = """
policyroute: 1
name: exit
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_EXIT_FAKE_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
receipts: {{sink: none}}
"""

# The call's receipts go to a blocking sink whose write of the last one (the call's) takes its
# time: it starts the line, says so, and finishes it half a second later (in mode "stuck", that
# write never ends). The call is cancelled meanwhile (as a shutdown handler would cancel every
# task), and the script returns from asyncio.run and exits.
SCRIPT = """
import asyncio, json, sys, threading, time
from policyroute import _blocking, load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.langchain import ChatPolicyRoute

policy_path, out, mode = sys.argv[1:4]
started = threading.Event()

class SlowSink:
    blocking = True

    def write(self, record):
        line = json.dumps({"request_id": record["request_id"], "kind": record["kind"]})
        last = record["kind"] == "call"
        if mode == "stuck" and last:
            started.set()
            threading.Event().wait()
        with open(out, "a") as f:
            f.write(line[:10])
            f.flush()
            if last:
                started.set()
                time.sleep(0.5)
            f.write(line[10:] + "\\n")

    def close(self):
        pass

if mode == "stuck":
    _blocking.EXIT_WAIT_SECONDS = 0.5
policy = load_policy(policy_path)
acct = PolicyAccounting(policy, guard=None, sinks=[SlowSink()])
llm = ChatPolicyRoute(policy=policy_path, accounting=acct)

async def main():
    call = asyncio.ensure_future(llm.ainvoke("hello"))
    assert await asyncio.to_thread(started.wait, 30)
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()
    await asyncio.gather(call, return_exceptions=True)

asyncio.run(main())
print("exiting", flush=True)
"""


def _run(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "receipts.jsonl"
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi"))
        policy = tmp_path / "p.yaml"
        policy.write_text(POLICY.format(base=provider.openai_base))
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(SCRIPT))
        done = subprocess.run(
            [sys.executable, str(script), str(policy), str(out), mode],
            capture_output=True,
            text=True,
            env={**os.environ, "PR_EXIT_FAKE_KEY": "sk-fake-0123456789"},
            timeout=60,  # a backstop against a hang, not a time limit
            check=False,
        )
    return done, out


def test_a_receipt_being_written_as_the_process_exits_is_written_whole(tmp_path: Path) -> None:
    done, out = _run(tmp_path, "slow")
    assert (done.returncode, done.stdout) == (0, "exiting\n"), done.stderr
    lines = out.read_text().splitlines(keepends=True)
    # Before: the daemon thread was stopped mid-line as the interpreter exited.
    assert all(line.endswith("\n") for line in lines), lines
    assert [json.loads(line)["kind"] for line in lines] == ["attempt", "call"]


def test_a_write_that_never_ends_does_not_keep_the_process_from_exiting(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "stuck")
    assert (done.returncode, done.stdout) == (0, "exiting\n"), done.stderr
    assert "exiting with work still running in policyroute-sink-SlowSink" in done.stderr
