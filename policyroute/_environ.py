"""Environment variables set for the length of a block.

Example:
    >>> import os
    >>> with environment({"POLICYROUTE_EXAMPLE": "1"}):
    ...     os.environ["POLICYROUTE_EXAMPLE"]
    '1'
    >>> "POLICYROUTE_EXAMPLE" in os.environ
    False
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["environment"]


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` for the duration of the block, restoring what was there before (a variable
    that was not set is removed again)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
