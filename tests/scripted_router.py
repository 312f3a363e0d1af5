"""An OpenAI-compatible router on 127.0.0.1 whose every reply is scripted: the stream's deltas, the
`usage` object (any shape, including ones a router should not send) and the finish reason.

It serves the bundled catalog (Llama 4 Scout, with no cache price), so a run is priced by our card
while the scripted `usage.cost` is what the router "billed".
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

MODEL = "meta-llama/llama-4-scout"


@dataclass
class Reply:
    """Deltas streamed in order (or joined into one message); `usage` rides on the last chunk."""

    deltas: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    finish_reason: str = "stop"
    extra: dict[str, Any] = field(default_factory=dict)  # message fields a whole-body reply adds


class ScriptedRouter:
    """`replies[prompt] = Reply(...)`; `requests[prompt]` counts what was asked."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.requests: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ScriptedRouter:
        app = web.Application()
        app.router.add_get("/api/v1/models", self._models)
        app.router.add_post("/api/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/api/v1"
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None and self._runner is not None
        self._thread.join()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _models(self, request: web.Request) -> web.Response:
        text = resources.files("evalkit").joinpath("data/prices.json").read_text(encoding="utf-8")
        return web.Response(text=text, content_type="application/json")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        self.requests[prompt] += 1
        reply = self.replies[prompt]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": ""}
            for delta in reply.deltas:
                for key, value in delta.items():  # text and lists join up as a router assembles them
                    empty = "" if isinstance(value, str) else []
                    message[key] = (message.get(key) or empty) + value
            message |= reply.extra
            choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
            payload = {"id": "gen-1", "choices": [choice], "usage": reply.usage}
            return web.Response(text=json.dumps(payload), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta in reply.deltas:
            await response.write(_event({"id": "gen-1", "choices": [{"index": 0, "delta": delta}]}))
        final = {"id": "gen-1", "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
        await response.write(_event(final | {"usage": reply.usage}))
        await response.write(b"data: [DONE]\n\n")
        return response


def _event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode("ascii") + b"\n\n"
