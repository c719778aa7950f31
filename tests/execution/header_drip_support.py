"""A server whose answers' headers drip: it answers OpenAI chat requests on keep-alive
connections at once, or, for the models it is told to, with a response head that never ends
within a test, sent 8 bytes every 0.2 s."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

from policyroute.testing import LocalTLS

# How long dripping headers keep coming if nobody stops reading them: longer than any test.
DRIP_SECONDS = 25.0


class HeaderDripper:
    """Answers OpenAI chat requests on keep-alive connections: at once, or (for a model in
    :attr:`drip`) with a response head sent 8 bytes every 0.2 s for ``DRIP_SECONDS``."""

    def __init__(self, tls: LocalTLS | None) -> None:
        self._context = None if tls is None else tls.server_context()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() looks at ``_closing`` that often
        self._closing = threading.Event()
        self.port = self._listener.getsockname()[1]
        self.scheme = "http" if tls is None else "https"
        self.drip: set[str] = set()
        self.requests: list[str] = []
        self.connections: list[int] = []  # the connection of each request, by number
        self.gave_up = threading.Event()  # a drip ended because the client went away
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._closing.set()
        self._accepting.join(5)
        self._listener.close()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            number = len(self._threads)
            thread = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        self._conns.append(raw)
        conn = raw
        try:
            if self._context is not None:
                conn = self._context.wrap_socket(raw, server_side=True)
                self._conns.append(conn)
            reader = conn.makefile("rb")
            with reader:
                while self._answer(conn, reader, number):
                    pass
        except (OSError, ValueError):
            pass
        finally:
            conn.close()
            raw.close()

    def _answer(self, conn: socket.socket, reader: Any, number: int) -> bool:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return False
            head += line
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        model = str(json.loads(reader.read(length))["model"])
        self.requests.append(model)
        self.connections.append(number)
        body = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"{model} answer"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
            }
        ).encode()
        response = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n" % len(body)
        )
        if model not in self.drip:
            conn.sendall(response + b"\r\n" + body)
            return True
        # A header that never ends within any test: the head is never complete.
        response += b"x-padding: " + b"p" * 100_000
        ends = time.monotonic() + DRIP_SECONDS
        try:
            for start in range(0, len(response), 8):
                if time.monotonic() > ends:
                    break
                conn.sendall(response[start : start + 8])
                time.sleep(0.2)
        except OSError:
            self.gave_up.set()
        return False
