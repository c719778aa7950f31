"""SQLite files this process cannot use: those a thread of its parent was writing to when
``fork()`` made it.

SQLite keeps, per process, a record of the locks the process holds on each database file,
shared by every connection to that file. A child made by ``fork()`` starts with a copy of the
parent's record; taken while a thread of the parent was inside a transaction or a write, the
copy says the child holds locks it does not, and no connection of the child, old or new,
can be trusted with the file. The budget store and the SQLite receipt sink mark such a file
here (:func:`mark`) and refuse it (:func:`refusal`), whichever of them was writing.

Example:
    >>> mark((1, 2))
    >>> refusal((1, 2), "receipt database r.sqlite3") is not None
    True
    >>> refusal(None, "receipt database r.sqlite3") is None
    True
"""

from __future__ import annotations

__all__ = ["mark", "message", "refusal"]

_FORKED_MID_WRITE: set[tuple[int, int]] = set()


def mark(ident: tuple[int, int] | None) -> None:
    """Mark the file of (device, inode) ``ident`` as unusable in this process; ``None`` (a
    connection whose file was gone when it opened) marks nothing: no file could match it."""
    if ident is not None:
        _FORKED_MID_WRITE.add(ident)


def refusal(ident: tuple[int, int] | None, what: str) -> str | None:
    """Why ``what`` (a store or sink, named for the message) on the file ``ident`` cannot be
    used here, or ``None`` when it can."""
    if ident is None or ident not in _FORKED_MID_WRITE:
        return None
    return message(what)


def message(what: str) -> str:
    """The refusal of ``what`` on a file marked by :func:`mark`."""
    return (
        f"{what} cannot be used from this process: it was forked while another thread was"
        " writing to the file, which leaves SQLite's record of this process's locks on it"
        " wrong, for any connection here; fork while no thread uses it, or start processes"
        " with the 'spawn' or 'forkserver' method"
    )
