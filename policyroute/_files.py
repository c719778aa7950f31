"""Telling whether a path still names the file a process has open.

Long-lived handles (receipt sinks, the SQLite budget store) outlive the directory entries they
were opened from: a file rotated away, deleted or replaced must be noticed, or writes go on
into a file no other process sees.

A cached policy is reloaded when its file changes: :func:`file_version` says when.

Input files are read with :func:`read_at_most`, so a pipe that never ends (``<(yes)``), a device
or a multi-gigabyte file costs a bounded amount of memory before it is refused.

Example:
    >>> file_id("/nonexistent/file") is None
    True
    >>> file_version("/nonexistent/file") is None
    True
    >>> len(read_at_most("/dev/zero", 4))
    5
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Literal

__all__ = [
    "dangling_link",
    "dangling_link_text",
    "file_id",
    "file_version",
    "path_kind",
    "read_at_most",
]


def file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The (device, inode) ``path`` names now, or ``None`` when it names nothing readable."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a name no file can have (a NUL character)
        return None
    return st.st_dev, st.st_ino


def file_version(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """What tells one version of the file at ``path`` from the next: modification time,
    change time, size and inode (``None`` when it names nothing readable). An edit within the
    clock tick of the last read keeps the modification time (and a rename over the file may
    too): size, inode and change time tell those apart.

    A pipe or a device has no versions (``None``): what it gives can be read only once, so
    it is never cached by this key, and whoever reads it reads it first.

    Example:
        >>> file_version("/dev/null") is None
        True
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a name no file can have (a NUL character)
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def read_at_most(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the file at ``path``, but never more than ``limit + 1`` of them.

    A result longer than ``limit`` means the file is too long; only ``limit + 1`` bytes were
    read, so an endless pipe or ``/dev/zero`` ends too. ``OSError`` as ``open`` raises it.

    Example:
        >>> read_at_most("/dev/null", 10)
        b''
    """
    with open(path, "rb") as file:
        # BufferedReader.read(n) keeps reading a pipe until n bytes or its end.
        return file.read(limit + 1)


def path_kind(
    path: str | os.PathLike[str],
) -> Literal["file", "directory", "pipe", "other", "missing"]:
    """What ``path`` names, links followed: ``"other"`` is a device or socket, and
    ``"missing"`` is also a path that cannot be looked up at all (a name too long for the
    file system, a NUL byte, a broken link), where ``Path.is_file`` raises for some of them.

    Example:
        >>> path_kind("/dev/null"), path_kind("/"), path_kind("x" * 5000)
        ('other', 'directory', 'missing')
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "pipe" if stat.S_ISFIFO(mode) else "other"


def dangling_link(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """What is wrong with ``path`` when it is a symbolic link that reaches no file (a broken
    link, or a link loop), as a message and a hint; ``None`` for any other path.

    A path that names nothing "does not exist"; a link that reaches nothing is listed by
    ``ls`` all the same, and is named as what it is.

    Example:
        >>> dangling_link("/nonexistent/file") is None
        True
    """
    try:
        target = os.readlink(path)
    except (OSError, ValueError):
        return None
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a symbolic link loop (to {target})", "the link never reaches a file"
        return f"a broken symbolic link: {target} does not exist", "fix or remove the link"
    return None


def dangling_link_text(path: str | os.PathLike[str]) -> str | None:
    """:func:`dangling_link`'s message and hint as one phrase, for a line of text.

    Example:
        >>> dangling_link_text("/nonexistent/file") is None
        True
    """
    dangling = dangling_link(path)
    return None if dangling is None else f"{dangling[0]} ({dangling[1]})"
