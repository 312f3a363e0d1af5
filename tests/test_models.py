"""The model catalog: parsing RouterAI's /models, the disk cache, the bundled fallback, price cards."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from evalkit.client import Client, Endpoint
from evalkit.client.catalog import (
    Catalog,
    ModelInfo,
    PriceCard,
    bundled_catalog,
    cache_path,
    fetch_catalog,
    format_models_table,
    get_credits,
    get_generation,
    load_catalog,
    read_cache,
    supports_images,
)
from evalkit.common.errors import ConfigError

KEY = "sk-models-SECRET-42"
SCOUT = "meta-llama/llama-4-scout"

# RouterAI's shape: numbers in ₽ per token / per image
ROUTERAI_MODELS = {
    "data": [
        {
            "id": SCOUT,
            "name": "Meta: Llama 4 Scout",
            "context_length": 327680,
            "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
            "pricing": {"prompt": 0.000018, "completion": 0.000059, "image": 0.09114},
        },
        {
            "id": "qwen/qwen3-8b",
            "name": "Qwen3 8B",
            "context_length": 40960,
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "pricing": {"prompt": 0.000004, "completion": 0.000012, "image": 0, "input_cache_read": 0.000001},
        },
    ]
}
# OpenRouter-like routers send prices as strings, and older entries carry only `architecture.modality`
STRING_PRICED = {
    "data": [
        {
            "id": "vendor/vision-model",
            "name": "Vision",
            "context_length": 128000,
            "architecture": {"modality": "text+image->text"},
            "pricing": {"prompt": "0.0000025", "completion": "0.00001", "image": "0.003613", "request": "0"},
        },
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
    ]
}


@asynccontextmanager
async def catalog_server(payload: Any) -> AsyncIterator[dict[str, Any]]:
    """A router on 127.0.0.1 serving /models, /credits and /generation; records what it was asked."""
    seen: dict[str, Any] = {"models": 0, "auth": set(), "generation_ids": []}

    async def models(request: web.Request) -> web.Response:
        seen["models"] += 1
        seen["auth"].add(request.headers.get("Authorization"))
        return web.json_response(payload)

    async def credits(request: web.Request) -> web.Response:
        return web.json_response({"data": {"total_credits": 1000.0, "total_usage": 12.5}})

    async def generation(request: web.Request) -> web.Response:
        seen["generation_ids"].append(request.query.get("id"))
        return web.json_response({"data": {"id": request.query.get("id"), "total_cost": 0.0042}})

    app = web.Application()
    app.router.add_get("/api/v1/models", models)
    app.router.add_get("/api/v1/credits", credits)
    app.router.add_get("/api/v1/generation", generation)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    seen["url"] = f"http://127.0.0.1:{port}/api/v1"
    try:
        yield seen
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# --------------------------------------------------------------------------------------------
# Price cards


def test_scout_bundled_prices_are_routerai_prices_exactly() -> None:
    info = bundled_catalog()[SCOUT]
    assert info.pricing.per_million()["input_per_1m"] == pytest.approx(18.0, rel=1e-12)
    assert info.pricing.per_million()["output_per_1m"] == pytest.approx(59.0, rel=1e-12)
    assert info.pricing.per_million()["image_per_1k"] == pytest.approx(91.14, rel=1e-12)
    assert info.context_length == 327680
    assert info.input_modalities == ("text", "image") and supports_images(info)


def test_estimate_splits_input_output_images_and_prices_cache_reads() -> None:
    card = PriceCard(prompt=0.000018, completion=0.000059, image=0.09114)
    est = card.estimate(1000, 200, images=2)
    assert est.input == pytest.approx(0.018)
    assert est.output == pytest.approx(0.0118)
    assert est.images == pytest.approx(0.18228)
    assert est.total == pytest.approx(0.018 + 0.0118 + 0.18228)
    cached = PriceCard(prompt=4e-6, completion=12e-6, input_cache_read=1e-6).estimate(
        1000, 0, cached_tokens=600
    )
    assert cached.input == pytest.approx(400 * 4e-6 + 600 * 1e-6)
    # without a cache-read price, cached tokens cost the normal prompt price
    assert PriceCard(4e-6, 12e-6).estimate(1000, 0, cached_tokens=600).input == pytest.approx(1000 * 4e-6)


def test_prices_as_strings_and_legacy_modality_are_accepted() -> None:
    catalog = Catalog.from_api(STRING_PRICED)
    vision = catalog["vendor/vision-model"]
    assert vision.pricing == PriceCard(prompt=2.5e-6, completion=1e-5, image=0.003613)
    assert vision.input_modalities == ("text", "image") and supports_images(vision)
    auto = catalog["openrouter/auto"]
    assert auto.pricing.prompt == 0.0 and auto.context_length is None
    assert not supports_images(auto)


def test_a_bad_price_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        ModelInfo.from_api({"id": "x/y", "pricing": {"prompt": "cheap", "completion": 0}})
    assert "x/y" in str(info.value) and "prompt" in str(info.value)


def test_require_suggests_close_ids() -> None:
    catalog = Catalog.from_api(ROUTERAI_MODELS)
    with pytest.raises(ConfigError, match="did you mean meta-llama/llama-4-scout"):
        catalog.require("meta-llama/llama-4-scot")
    assert catalog.require(SCOUT).id == SCOUT


# --------------------------------------------------------------------------------------------
# Fetching, caching, fallback


def test_fetch_parses_routerai_models_through_the_sdk() -> None:
    async def scenario() -> tuple[Catalog, dict[str, Any]]:
        async with catalog_server(ROUTERAI_MODELS) as seen:
            return await fetch_catalog(Endpoint(seen["url"], KEY)), seen

    catalog, seen = asyncio.run(scenario())
    assert catalog.source == "network" and catalog.authoritative
    assert set(catalog) == {SCOUT, "qwen/qwen3-8b"}
    qwen = catalog["qwen/qwen3-8b"]
    assert qwen.context_length == 40960 and qwen.input_modalities == ("text",)
    assert qwen.pricing.input_cache_read == pytest.approx(1e-6)
    assert seen["auth"] == {f"Bearer {KEY}"}


def test_load_catalog_caches_then_reads_the_cache(cache_in_tmp: Path) -> None:
    async def scenario() -> tuple[Catalog, Catalog, Catalog, int]:
        async with catalog_server(ROUTERAI_MODELS) as seen:
            endpoint = Endpoint(seen["url"], KEY)
            first = await load_catalog(endpoint)
            second = await load_catalog(endpoint)
            refreshed = await load_catalog(endpoint, refresh=True)
            return first, second, refreshed, seen["models"]

    first, second, refreshed, hits = asyncio.run(scenario())
    assert (first.source, second.source, refreshed.source) == ("network", "cache", "network")
    assert hits == 2
    assert second[SCOUT] == first[SCOUT] and second["qwen/qwen3-8b"] == first["qwen/qwen3-8b"]
    files = list(cache_in_tmp.glob("catalog-*.json"))
    assert len(files) == 1
    text = files[0].read_text()
    assert KEY not in text and "127.0.0.1" in text


def test_cache_expires_after_its_ttl() -> None:
    async def scenario() -> tuple[str, str, int]:
        async with catalog_server(ROUTERAI_MODELS) as seen:
            endpoint = Endpoint(seen["url"], KEY)
            await load_catalog(endpoint)
            assert read_cache(cache_path(endpoint), now=time.time() + 25 * 3600) is None
            stale = await load_catalog(endpoint, ttl_s=0.0)
            fresh = await load_catalog(endpoint, ttl_s=3600)
            return stale.source, fresh.source, seen["models"]

    assert asyncio.run(scenario()) == ("network", "cache", 2)


def test_falls_back_to_the_bundled_file_when_the_router_is_down() -> None:
    async def scenario() -> Catalog:
        async with catalog_server(ROUTERAI_MODELS) as seen:
            url = seen["url"]
        return await load_catalog(Endpoint(url, KEY))  # the server is gone: connection refused

    catalog = asyncio.run(scenario())
    assert catalog.source == "bundled" and not catalog.authoritative
    assert "could not be read (connection)" in (catalog.note or "")
    assert format_models_table(catalog).splitlines()[-1] == catalog.note
    assert catalog[SCOUT].pricing == PriceCard(prompt=0.000018, completion=0.000059, image=0.09114)


def test_a_corrupt_cache_is_ignored(cache_in_tmp: Path) -> None:
    async def scenario() -> str:
        async with catalog_server(ROUTERAI_MODELS) as seen:
            endpoint = Endpoint(seen["url"], KEY)
            path = cache_path(endpoint)
            path.parent.mkdir(parents=True)
            path.write_text("{not json")
            return (await load_catalog(endpoint)).source

    assert asyncio.run(scenario()) == "network"


def test_credits_and_generation_helpers() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        async with catalog_server(ROUTERAI_MODELS) as seen, Client(Endpoint(seen["url"], KEY)) as client:
            credits = await get_credits(client)
            generation = await get_generation(client, "gen-1234")
            return credits, generation, seen["generation_ids"]

    credits, generation, ids = asyncio.run(scenario())
    assert credits == {"total_credits": 1000.0, "total_usage": 12.5}
    assert generation["total_cost"] == pytest.approx(0.0042)
    assert ids == ["gen-1234"]


# --------------------------------------------------------------------------------------------
# Display


def test_models_table_shows_prices_in_display_units() -> None:
    table = format_models_table(Catalog.from_api(ROUTERAI_MODELS, source="network"))
    lines = table.splitlines()
    assert lines[0].split() == ["model", "context", "input", "₽/1M", "in", "₽/1M", "out", "₽/1K", "img"]
    scout = next(line for line in lines if line.startswith(SCOUT))
    assert scout.split() == [SCOUT, "328K", "text+image", "18.00", "59.00", "91.14"]
    qwen = next(line for line in lines if line.startswith("qwen/"))
    assert qwen.split() == ["qwen/qwen3-8b", "41K", "text", "4.00", "12.00", "-"]
    assert lines[-1].startswith("2 models · source: network")


def test_model_info_round_trips_through_the_cache_format() -> None:
    for info in Catalog.from_api(ROUTERAI_MODELS).values():
        assert ModelInfo.from_api(json.loads(json.dumps(info.to_api()))) == info


def test_a_simulated_endpoint_is_asked_directly_and_never_cached(cache_in_tmp: Path) -> None:
    async def scenario() -> tuple[str, str]:
        async with catalog_server(ROUTERAI_MODELS) as seen:
            endpoint = Endpoint(seen["url"], "sim", simulated=True)
            first = await load_catalog(endpoint)
            second = await load_catalog(endpoint)
        with pytest.raises(ConfigError, match="simulator's catalog could not be read"):
            await load_catalog(endpoint)
        return first.source, second.source

    assert asyncio.run(scenario()) == ("network", "network")
    assert not cache_in_tmp.exists() or not list(cache_in_tmp.iterdir())
