"""A request/reply channel over a socket, used in both directions between the judge and the
untrusted process: while one side waits for its reply it serves the other side's requests (a
callback passed as an argument calls back across). Frames are a 4-byte length and JSON."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

from . import plain

MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class Lost(BaseException):
    """The other side closed the channel or sent something that is not a frame.

    A BaseException, so that test code's `except Exception` cannot swallow it."""


class Channel:
    """One end of the channel; `serve(request) -> reply` answers the other side's requests."""

    def __init__(self, fd: int, serve: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.fd = fd
        self.serve = serve

    def send(self, message: dict[str, Any]) -> None:
        with plain.deep_enough():
            data = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
        if len(data) > MAX_FRAME:
            raise ValueError(f"a message of {len(data)} bytes is larger than {MAX_FRAME}")
        try:
            _write_all(self.fd, _HEADER.pack(len(data)) + data)
        except OSError as exc:
            raise Lost(f"cannot send: {exc}") from None

    def receive(self) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read(_HEADER.size))
        if size > MAX_FRAME:
            raise Lost(f"a frame of {size} bytes is larger than {MAX_FRAME}")
        try:
            with plain.deep_enough():
                message = json.loads(self._read(size).decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            raise Lost("a frame that is not JSON") from None
        if type(message) is not dict or type(message.get("op")) is not str:
            raise Lost("a frame that is not a message")
        return message

    def request(self, message: dict[str, Any] | None) -> dict[str, Any]:
        """Send a request (None: one already sent) and serve the other side's requests until its
        reply arrives."""
        if message is not None:
            self.send(message)
        while True:
            incoming = self.receive()
            if incoming["op"] == "reply":
                return incoming
            self.send({"op": "reply", **self.serve(incoming)})

    def _read(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            try:
                chunk = os.read(self.fd, min(left, 1 << 20))
            except OSError as exc:
                raise Lost(f"cannot receive: {exc}") from None
            if not chunk:
                raise Lost("the other side closed the channel")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
