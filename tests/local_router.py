"""The common part of the test routers: an aiohttp app on 127.0.0.1, served from a thread of its own,
with the bundled catalog at `GET /models`; a router says how it answers `POST /chat/completions`."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from importlib import resources

from aiohttp import web

MODEL = "meta-llama/llama-4-scout"


class LocalRouter:
    """`with Router() as router:` serves at `router.base_url`; `requests[prompt]` counts what was asked."""

    max_request_bytes = 1024**2

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LocalRouter:
        app = web.Application(client_max_size=self.max_request_bytes)
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
        raise NotImplementedError
