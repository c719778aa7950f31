"""``python -m policyroute``: the same as the ``policyroute`` command."""

from __future__ import annotations

import sys

from policyroute.cli import main

if __name__ == "__main__":
    sys.exit(main())
