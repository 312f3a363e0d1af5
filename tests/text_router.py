"""An OpenAI-compatible router on 127.0.0.1 that answers each prompt with a scripted text.

Streams are cut at UTF-16 code unit positions and sent as JSON `\\uXXXX` escapes, exactly as a router
that splits one emoji's surrogate pair across two chunks does; a lone surrogate, NUL or a 10 MB text
goes out the same way. It serves the bundled catalog, so the run is priced, and counts every request.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.local_router import MODEL, LocalRouter

__all__ = ["COST_RUB", "MODEL", "TextRouter", "pieces"]

COST_RUB = 0.001


def pieces(text: str, every: int) -> list[str]:
    """`text` cut every `every` UTF-16 code units (a cut may fall inside a surrogate pair)."""
    units = text.encode("utf-16-le", "surrogatepass")
    step = 2 * every
    return [units[i : i + step].decode("utf-16-le", "surrogatepass") for i in range(0, len(units), step)]


class TextRouter(LocalRouter):
    """`replies[prompt] = text`; `requests[prompt]` counts what was asked (and paid)."""

    max_request_bytes = 64 * 2**20

    def __init__(self) -> None:
        super().__init__()
        self.replies: dict[str, str] = {}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        self.requests[prompt] += 1
        text = self.replies[prompt]
        usage = {"prompt_tokens": 7, "completion_tokens": max(1, len(text) // 4), "cost": COST_RUB}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            payload = {"id": f"gen-{self.requests.total()}", "choices": [choice], "usage": usage}
            return web.Response(text=json.dumps(payload), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        every = 3 if len(text) < 4096 else 65_537  # odd: pairs are split across chunks
        for piece in pieces(text, every):
            await response.write(
                _event({"id": "gen", "choices": [{"index": 0, "delta": {"content": piece}}]})
            )
        final = {"id": "gen", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        await response.write(_event(final))
        await response.write(b"data: [DONE]\n\n")
        return response


def _event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode("ascii") + b"\n\n"
