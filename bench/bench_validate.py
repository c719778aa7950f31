"""Cold start of ``policyroute validate`` on one policy file.

Runs ``python -m policyroute validate FILE`` in fresh interpreters and compares the median wall
time with a bare ``python -c pass`` measured in the same run (the interpreter's own start-up),
and checks that litellm is never imported on this path.

    python bench/bench_validate.py [--runs 15] [--policy policies/tiered.yaml]

Target: ≤ 0.3 s wall, litellm not imported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _time(cmd: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True, cwd=ROOT)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--policy", default="policies/tiered.yaml")
    args = parser.parse_args()

    py = sys.executable
    validate = [py, "-m", "policyroute", "validate", args.policy]
    probe = [
        py,
        "-c",
        "import sys; from policyroute.cli import main; rc = main(['validate', sys.argv[1]]);"
        " print('litellm' in sys.modules, 'langchain_core' in sys.modules, file=sys.stderr)",
        args.policy,
    ]
    imported = subprocess.run(probe, capture_output=True, text=True, cwd=ROOT).stderr.split()[-2:]

    # Interleave so that load on a shared machine hits both alike.
    bare: list[float] = []
    cold: list[float] = []
    for _ in range(args.runs):
        bare += _time([py, "-c", "pass"], 1)
        cold += _time(validate, 1)

    b, c = statistics.median(bare), statistics.median(cold)

    def p90(xs: list[float]) -> float:
        return sorted(xs)[int(0.9 * len(xs))]

    print(f"{'command':<40} {'median s':>9} {'p90 s':>7}")
    print(f"{'python -c pass':<40} {b:9.3f} {p90(bare):7.3f}")
    print(f"{'policyroute validate ' + args.policy:<40} {c:9.3f} {p90(cold):7.3f}")
    print(f"validate / bare interpreter: {c / b:.2f}x; validate minus interpreter: {c - b:.3f} s")
    print(f"litellm imported: {imported[0]}, langchain_core imported: {imported[1]}")
    print(f"target: <= 0.300 s -> {'met' if c <= 0.3 else 'MISSED'}")


if __name__ == "__main__":
    main()
