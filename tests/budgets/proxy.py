"""A TCP proxy in front of the test redis-server that can break the connection on demand.

It stands for the network between a process and Redis: commands pass through unchanged, and
``cut_replies`` makes it drop the connection after the server has run a script (EVALSHA or
EVAL) but before its reply reaches the client: the reply is lost, the script's effect is not.
Replies to other commands (connection handshakes, plain reads) pass.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class FaultyProxy:
    """Forwards loopback connections to ``127.0.0.1:<upstream_port>``.

    Example:
        >>> with FaultyProxy(6379) as proxy:  # doctest: +SKIP
        ...     proxy.cut_replies = 1  # the next script's reply is lost, its connection reset
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cut_replies = 0
        self.refuse = False
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        # Closing a socket does not wake a thread blocked in accept(): poll instead.
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def __enter__(self) -> FaultyProxy:
        self._spawn(self._accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.reset_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def reset_all(self) -> None:
        """Drop every open connection (as a restarting server or a network blip would)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self.refuse:
                _shut(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            # Whether the last command sent on this connection ran a script.
            script = [False]
            self._spawn(self._pump, client, upstream, script, False)
            self._spawn(self._pump, upstream, client, script, True)

    def _pump(
        self, src: socket.socket, dst: socket.socket, script: list[bool], replies: bool
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not replies:
                    # The clients here send one command and wait for its reply.
                    script[0] = b"\r\nEVALSHA\r\n" in data or b"\r\nEVAL\r\n" in data
                elif script[0]:
                    with self._lock:
                        cut = self.cut_replies > 0
                        if cut:
                            self.cut_replies -= 1
                    if cut:
                        break
                dst.sendall(data)
        except OSError:
            pass
        _shut(src)
        _shut(dst)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
