"""What a tests file at the size limit costs: parsing, against converting and running it.

A tests file's written nodes count only against its 524,288 characters (aliases still count
against the 50,000-node limit). This measures, for a file of N cases and for the densest
file the character limit allows (a flow list of one-character items), the time to load it
counting every node (refused past 50,000: parsing and counting only) and counting only what
aliases add (accepted: converted too), and the time to run the cases.

    python bench/bench_tests_file_size.py [--cases 3000]

Reading: the refused and accepted loads differ by the conversion; parsing dominates both.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from policyroute.policy.load import MAX_CHARS, load_yaml
from policyroute.policytest import run_tests_file

POLICY = """\
policyroute: 1
name: bench
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
"""


def _load(text: str, *, count_written: bool) -> tuple[float, str]:
    start = time.perf_counter()
    doc = load_yaml(text, what="tests file", count_written=count_written)
    took = time.perf_counter() - start
    return took, "refused" if doc.diagnostics else "accepted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    args = parser.parse_args()

    case = (
        "  - name: case {n}\n"
        "    request: {{metadata: {{user_id: u{n}}}, messages: hello {n}}}\n"
        "    expect: {{route: default, model: mini}}\n"
    )
    cases = "policy: policy.yaml\ncases:\n" + "".join(case.format(n=n) for n in range(args.cases))
    items = (MAX_CHARS - 20) // 2
    dense = "x-items: [" + ",".join(["1"] * items) + "]\n"

    print(f"{'file':<28} {'chars':>8} {'count all s':>12} {'aliases only s':>15}")
    for name, text in ((f"{args.cases} cases", cases), ("densest at the limit", dense)):
        every, what = _load(text, count_written=True)
        aliased, got = _load(text, count_written=False)
        print(f"{name:<28} {len(text):>8,} {every:>8.2f} {what[:3]} {aliased:>11.2f} {got[:3]}")

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "policy.yaml").write_text(POLICY, encoding="utf-8")
        tests = Path(folder, "many.tests.yaml")
        tests.write_text(cases, encoding="utf-8")
        start = time.perf_counter()
        result = run_tests_file(tests)
        took = time.perf_counter() - start
    print(f"policyroute test, {args.cases} cases: {took:.2f} s ({result.passed} passed)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
