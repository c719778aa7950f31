"""Telling whether a path still names the file a process has open.

Long-lived handles (receipt sinks, the SQLite budget store) outlive the directory entries they
were opened from: a file rotated away, deleted or replaced must be noticed, or writes go on
into a file no other process sees.

Example:
    >>> file_id("/nonexistent/file") is None
    True
"""

from __future__ import annotations

import os

__all__ = ["file_id"]


def file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The (device, inode) ``path`` names now, or ``None`` when it names nothing readable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
