"""An OpenAI-compatible router on 127.0.0.1 whose every reply is scripted: the stream's deltas, the
`usage` object (any shape, including ones a router should not send) and the finish reason.

It serves the bundled catalog (Llama 4 Scout, with no cache price), so a run is priced by our card
while the scripted `usage.cost` is what the router "billed".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.local_router import MODEL, LocalRouter

__all__ = ["MODEL", "Reply", "ScriptedRouter"]


@dataclass
class Reply:
    """Deltas streamed in order (or joined into one message); `usage` rides on the last chunk."""

    deltas: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    finish_reason: str = "stop"
    extra: dict[str, Any] = field(default_factory=dict)  # message fields a whole-body reply adds


class ScriptedRouter(LocalRouter):
    """`replies[prompt] = Reply(...)`; `requests[prompt]` counts what was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: dict[str, Reply] = {}
        self.bodies: list[dict[str, Any]] = []

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
