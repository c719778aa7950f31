"""Telling whether a path still names the file a process has open.

Long-lived handles (receipt sinks, the SQLite budget store) outlive the directory entries they
were opened from: a file rotated away, deleted or replaced must be noticed, or writes go on
into a file no other process sees.

A cached policy is reloaded when its file changes: :func:`file_version` says when.

Example:
    >>> file_id("/nonexistent/file") is None
    True
    >>> file_version("/nonexistent/file") is None
    True
"""

from __future__ import annotations

import os

__all__ = ["file_id", "file_version"]


def file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The (device, inode) ``path`` names now, or ``None`` when it names nothing readable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def file_version(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """What tells one version of the file at ``path`` from the next: modification time,
    change time, size and inode (``None`` when it names nothing readable). An edit within the
    clock tick of the last read keeps the modification time (and a rename over the file may
    too): size, inode and change time tell those apart."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino
