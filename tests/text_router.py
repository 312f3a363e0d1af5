"""An OpenAI-compatible router on 127.0.0.1 that answers each prompt with a scripted text.

Streams are cut at UTF-16 code unit positions and sent as JSON `\\uXXXX` escapes, exactly as a router
that splits one emoji's surrogate pair across two chunks does; a lone surrogate, NUL or a 10 MB text
goes out the same way. It serves the bundled catalog, so the run is priced, and counts every request.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from importlib import resources
from typing import Any

from aiohttp import web

MODEL = "meta-llama/llama-4-scout"
COST_RUB = 0.001


def pieces(text: str, every: int) -> list[str]:
    """`text` cut every `every` UTF-16 code units (a cut may fall inside a surrogate pair)."""
    units = text.encode("utf-16-le", "surrogatepass")
    step = 2 * every
    return [units[i : i + step].decode("utf-16-le", "surrogatepass") for i in range(0, len(units), step)]


class TextRouter:
    """`replies[prompt] = text`; `requests[prompt]` counts what was asked (and paid)."""

    def __init__(self) -> None:
        self.replies: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TextRouter:
        app = web.Application(client_max_size=64 * 2**20)
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
