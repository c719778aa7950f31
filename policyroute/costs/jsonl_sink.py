"""The JSON-lines receipt sink: one ``O_APPEND`` write per record, safe across processes.

See :mod:`policyroute.costs.sinks` for why appending needs no lock between processes.

Example:
    >>> sink = JsonlSink("receipts/{date}.jsonl")
    >>> sink.close()
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from policyroute._files import file_id
from policyroute._fork import reset_after_fork
from policyroute.costs.receipt_json import UNENCODABLE, encode_record, record_date
from policyroute.errors import ReceiptError

__all__ = ["JsonlSink"]


class JsonlSink:
    """Appends each record as one line to a JSON-lines file.

    ``path_template`` may contain ``{date}``, replaced by the record's UTC date
    (``YYYY-MM-DD`` of its ``ts``), so files roll over daily. Missing directories are created.
    The descriptor of the current file is cached per process and reopened when the date
    changes or the path no longer names the open file (rotated away or deleted, checked with a
    ``stat`` per write); one lock guards it, so a sink can be shared by threads. A child made by
    ``fork()`` opens its own descriptor, with a lock of its own (see
    :mod:`policyroute._fork`).

    Example:
        >>> JsonlSink("/var/log/receipts/{date}.jsonl").path_for({"ts": "2026-03-01T00:00Z"})
        PosixPath('/var/log/receipts/2026-03-01.jsonl')

    A leading ``~`` or ``~user`` is the home directory, as in a shell (a policy file's
    ``receipts.path`` goes through no shell). A relative path is relative to the working
    directory when the sink is made, and made absolute then, so a process that later changes
    directory keeps writing to the same files.

    A file the sink creates is readable by its owner only (mode ``0600``) when it may hold
    prompt text: with ``private`` set (a policy's ``receipts.include_prompt``), or when a
    record written to it carries a ``prompt``. Otherwise it is created ``0644``, less the
    process's umask, so that other accounts (a log shipper, a report run by someone else) can
    read cost receipts. A file that exists keeps its mode: the sink never changes it.
    """

    blocking = False  # one append of a few hundred bytes: cheap enough inline in async code

    def __init__(self, path_template: str | os.PathLike[str], *, private: bool = False) -> None:
        self.path_template = os.path.abspath(os.path.expanduser(os.fspath(path_template)))
        self.private = private
        self._dated = "{date}" in self.path_template
        self._lock = threading.Lock()
        self._path: str | None = None
        self._fd: int | None = None
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._torn = False  # the open file ends without a newline: start with one
        self._pid = os.getpid()
        reset_after_fork(self)

    def path_for(self, record: Mapping[str, Any]) -> Path:
        """The file a record goes to."""
        return Path(self._path_str(record))

    def _path_str(self, record: Mapping[str, Any]) -> str:
        if not self._dated:
            return self.path_template
        return self.path_template.replace("{date}", record_date(record))

    def _fd_for(self, path: str, private: bool) -> int:
        # The cached descriptor is reused only by the process that opened it (a forked child
        # must not share the parent's bookkeeping) and only while ``path`` still names the
        # file it refers to: after a rotation (rename) or deletion the next record goes to a
        # new file at ``path``, not to the old inode. The stat costs about as much as the
        # write itself; reopening every time would cost the same, plus the close.
        if (
            self._fd is not None
            and self._path == path
            and self._pid == os.getpid()
            and file_id(path) == self._file_id
        ):
            return self._fd
        self._close_fd()
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create directory {parent}: {exc.strerror}") from exc
        flags = os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        # The mode applies only if the file is created here (O_CREAT leaves an existing
        # file's alone): prompts are kept from other accounts, as the owner's own files are.
        mode = _PRIVATE_MODE if private else _SHARED_MODE
        try:
            # Read access only to look at the last byte below; appends are as with O_WRONLY.
            fd = os.open(path, flags | os.O_RDWR, mode)
            readable = True
        except PermissionError:
            fd, readable = os.open(path, flags | os.O_WRONLY, mode), False
        try:
            st = os.fstat(fd)
            # A writer that died or hit a full disk mid-line leaves the file without its
            # final newline: the next line starts on a line of its own instead of being
            # glued to the fragment.
            self._torn = (
                readable
                and stat.S_ISREG(st.st_mode)  # not a pipe or /dev/stdout, which cannot seek
                and _ends_torn(fd, st.st_size)
            )
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path, self._pid = fd, path, os.getpid()
        self._file_id = (st.st_dev, st.st_ino)
        return fd

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at fork(): it is never released here.
        self._lock = threading.Lock()
        self._close_fd()  # this process's copy of the descriptor; the parent keeps its own

    def _close_fd(self) -> None:
        fd, self._fd, self._path, self._file_id = self._fd, None, None, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _append(self, path: str, data: bytes, private: bool) -> None:
        """Append ``data`` (whole lines) to ``path`` with one ``os.write``, creating the file
        readable by its owner only when ``private``; hold the lock."""
        try:
            fd = self._fd_for(path, private)
            if self._torn:
                data = b"\n" + data
            written = os.write(fd, data)
            # A short write only happens on a full disk or a signal; finish the line so
            # the file stays line-structured, and report it.
            while written < len(data):
                written += os.write(fd, data[written:])
            self._torn = False
        except OSError as exc:
            # Closed so that the next write reopens the file and finds any torn line.
            self._close_fd()
            where = os.path.abspath(path)
            raise ReceiptError(f"cannot append receipt to {where}: {exc}") from exc
        except BaseException:
            # Ctrl-C (or SystemExit) after a short write, maybe before its count was kept:
            # closed too, so that the next write ends the torn line before its own.
            self._close_fd()
            raise

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line with one ``os.write``."""
        try:
            line = encode_record(record)
        except UNENCODABLE as exc:
            raise ReceiptError(f"receipt is not JSON-serialisable: {exc}") from exc
        path = self._path_str(record)
        private = self.private or "prompt" in record
        with self._lock:
            self._append(path, line, private)

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append several records, one line each, with one ``os.write`` per file.

        Cheaper than a ``write`` per record (one lock, one check of the file, one system
        call). The lines of one call reach a file together, in order, and lines of other
        processes never land inside them (the guarantee of :meth:`write`, for the whole
        batch). Records of different dates go to their own files, in order of first use.

        Raises :class:`ReceiptError` like :meth:`write`: when a record cannot be encoded,
        nothing is written; when a file cannot be appended to, the error names it and the
        records of files before it in the batch are written.

        Example:
            >>> sink = JsonlSink("receipts/{date}.jsonl")  # doctest: +SKIP
            >>> sink.write_many([attempt_receipt, call_receipt])  # doctest: +SKIP
        """
        batches: dict[str, list[bytes]] = {}
        private: set[str] = set()  # the files a record holding a prompt goes to
        try:
            for record in records:
                line = encode_record(record)
                path = self._path_str(record)
                batches.setdefault(path, []).append(line)
                if "prompt" in record:
                    private.add(path)
        except UNENCODABLE as exc:
            raise ReceiptError(f"receipt is not JSON-serialisable: {exc}") from exc
        with self._lock:
            for path, lines in batches.items():
                self._append(path, b"".join(lines), self.private or path in private)

    def close(self) -> None:
        """Close the cached descriptor."""
        with self._lock:
            self._close_fd()


# The modes of a file the sink creates (less the umask): its owner's only when it may hold
# prompts, else readable by all, as most logs are.
_PRIVATE_MODE = 0o600
_SHARED_MODE = 0o644

# How long a file's size must stay put before a tail without a newline counts as torn.
_SETTLE_SECONDS = 0.002


def _ends_torn(fd: int, size: int) -> bool:
    """Whether the file ends in the middle of a line that nobody is still writing.

    Another process's append may be under way: the file's size grows page by page during
    one ``write``, so its last byte can be read mid-record. Such a tail is only taken as torn
    once the size stays put: an empty ``write`` on an ``O_APPEND`` descriptor waits for a
    write in progress on local file systems, and a short pause covers the others. A live
    append is read as torn only if it stalls past the pause; the cost is one blank line.
    """
    while size > 0 and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"")
        time.sleep(_SETTLE_SECONDS)
        grown = os.fstat(fd).st_size
        if grown == size:
            return True
        size = grown
    return False
