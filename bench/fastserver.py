"""A minimal OpenAI-compatible server for harness benchmarks: fixed latency, no quality logic.

Raw asyncio protocol (no aiohttp), so the server spends as little of the shared 2 cores as possible
and harness overhead dominates what is measured. Serves:

* `GET  {prefix}/models`: one model with a ₽ price card (RouterAI's shape);
* `POST {prefix}/chat/completions`: "The answer is 42." with RouterAI `usage` (tokens and `cost` in ₽),
  answered `--total-ms` after arrival; streamed requests get `: PROCESSING` at once, the first content
  delta at `--ttft-ms` and the final chunk (finish_reason, usage) and `[DONE]` at `--total-ms`;
* `GET /bench/stats`: request counts and arrival times (wall clock) of the first catalog and chat
  requests, for start-up measurements; `POST /bench/reset` clears them.

    python bench/fastserver.py --port 0 --ttft-ms 100 --total-ms 200   # prints "PORT <n>" when ready
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

MODEL = "bench/fixed"
PREFIX = "/api/v1"
PRICE_IN, PRICE_OUT = 18e-6, 59e-6  # ₽ per token (Llama 4 Scout's card)
ANSWER_PIECES = ("The answer ", "is ", "42.")


class Stats:
    """What the server saw, for start-up timing (reset by POST /bench/reset)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.chat = 0
        self.models = 0
        self.first_chat_at: float | None = None
        self.first_models_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _usage(prompt_tokens: int) -> dict[str, Any]:
    completion = 5
    cost = prompt_tokens * PRICE_IN + completion * PRICE_OUT
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "cost": cost,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _completion(prompt_tokens: int) -> bytes:
    message = {"role": "assistant", "content": "".join(ANSWER_PIECES)}
    body = {
        "id": "gen-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage(prompt_tokens),
    }
    return json.dumps(body).encode()


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "gen-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _catalog() -> bytes:
    entry = {
        "id": MODEL,
        "name": "Bench: fixed latency",
        "context_length": 131072,
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "pricing": {"prompt": PRICE_IN, "completion": PRICE_OUT, "image": 0},
    }
    return json.dumps({"data": [entry]}).encode()


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n"
    return head.encode() + b"Content-Type: " + content_type + b"\r\n\r\n" + body


def _frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Http(asyncio.Protocol):
    """One connection: parses requests (Content-Length bodies, no pipelining) and schedules answers."""

    def __init__(self, server: FastServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = head.split(" ", 2)[:2]
            self.server.handle(self, method, path.split("?")[0], body)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class FastServer:
    """Routes requests; latencies are scheduled with `call_at` (no task per request)."""

    def __init__(self, ttft_s: float, total_s: float) -> None:
        self.ttft_s = ttft_s
        self.total_s = max(total_s, ttft_s)
        self.stats = Stats()
        self.loop = asyncio.get_running_loop()

    def handle(self, conn: Http, method: str, path: str, body: bytes) -> None:
        if path == PREFIX + "/models":
            self.stats.models += 1
            self.stats.first_models_at = self.stats.first_models_at or time.time()
            conn.write(_response("200 OK", _catalog()))
        elif path == PREFIX + "/chat/completions" and method == "POST":
            self.stats.chat += 1
            self.stats.first_chat_at = self.stats.first_chat_at or time.time()
            self._chat(conn, body)
        elif path == "/bench/stats":
            conn.write(_response("200 OK", json.dumps(self.stats.to_json()).encode()))
        elif path == "/bench/reset":
            self.stats.reset()
            conn.write(_response("200 OK", b"{}"))
        else:
            conn.write(_response("404 Not Found", b'{"error":{"code":404,"message":"not found"}}'))

    def _chat(self, conn: Http, body: bytes) -> None:
        arrived = self.loop.time()
        prompt_tokens = max(1, len(body) // 16)
        if b'"stream": true' not in body and b'"stream":true' not in body:
            answer = _response("200 OK", _completion(prompt_tokens))
            self._at(arrived + self.total_s, conn.write, answer)
            return
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        conn.write(head + b"Connection: keep-alive\r\n\r\n" + _frame(b": PROCESSING\n\n"))
        first = _chunk({"role": "assistant", "content": ANSWER_PIECES[0]})
        self._at(arrived + self.ttft_s, conn.write, _frame(first))
        rest = b"".join(_chunk({"content": piece}) for piece in ANSWER_PIECES[1:])
        tail = _chunk({}, "stop") + _chunk({}, None, _usage(prompt_tokens)) + b"data: [DONE]\n\n"
        self._at(arrived + self.total_s, conn.write, _frame(rest + tail) + b"0\r\n\r\n")

    def _at(self, when: float, callback: Any, data: bytes) -> None:
        if when <= self.loop.time():
            callback(data)
        else:
            self.loop.call_at(when, callback, data)


async def serve(port: int, ttft_ms: float, total_ms: float) -> None:
    server = FastServer(ttft_ms / 1000, total_ms / 1000)
    listener = await asyncio.get_running_loop().create_server(
        lambda: Http(server), "127.0.0.1", port, backlog=4096
    )
    print(f"PORT {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--total-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.ttft_ms, args.total_ms))


if __name__ == "__main__":
    main()
