"""policyroute fetches nothing from the network but the providers: litellm's price map and
its rules for Anthropic beta headers come from the installed package unless the user asks for
the live copies (checked in a fresh interpreter, since litellm is imported once)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import os
from policyroute._lazy import import_litellm
import_litellm()
print(os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
      os.environ.get("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"))
"""


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [({}, "True True"), ({"LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "False"}, "True False")],
)
def test_litellm_is_imported_with_local_copies_unless_the_user_chose(
    chosen: dict[str, str], expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM_LOCAL_")}
    env.update(chosen)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == expected


def test_an_application_importing_litellm_after_policyroute_gets_the_defaults() -> None:
    # An application that imports policyroute, then litellm itself (or langchain-litellm),
    # imports litellm before policyroute's lazy import runs: the defaults must already hold.
    script = (
        "import os, policyroute, litellm\n"
        "print(os.environ.get('LITELLM_LOCAL_MODEL_COST_MAP'),"
        " os.environ.get('LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM_LOCAL_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "True True"
    assert "fetch" not in done.stderr.lower(), done.stderr
