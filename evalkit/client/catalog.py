"""The model catalog: ids, context, modalities and price cards (₽ per token / per image).

`load_catalog(endpoint)` returns a fresh disk cache, else the router's `GET /models`, else the
bundled fallback `evalkit/data/prices.json`; `Catalog.source` says which. Prices in the router's
catalog are ₽ per token as numbers (OpenRouter-like routers send strings: both are accepted).
A price of 0 can mean "billed in another unit", so an estimate is a guide and `usage.cost` the truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.client.dialect.pricing import CostEstimate, ModelInfo, PriceCard, read_models
from evalkit.client.dialect.recognise import unwrap_data
from evalkit.common.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.client.call import Client
    from evalkit.client.endpoint import Endpoint

__all__ = [
    "CACHE_TTL_S",
    "Catalog",
    "CostEstimate",
    "ModelInfo",
    "PriceCard",
    "bundled_catalog",
    "cache_dir",
    "cache_path",
    "check_modalities",
    "fetch_catalog",
    "format_models_table",
    "get_credits",
    "get_generation",
    "load_catalog",
    "read_cache",
    "supports_images",
    "write_cache",
]

CACHE_TTL_S = 24 * 3600.0
CACHE_FORMAT = 1


def supports_images(info: ModelInfo) -> bool:
    """True when the model takes image input (the runner refuses image tasks otherwise)."""
    return "image" in info.input_modalities


def check_modalities(info: ModelInfo, model: str, task_name: str, samples: Iterable[Any]) -> None:
    """Refuse a model that cannot take what a task's samples send (images to a text-only model),
    naming the model and the first sample that needs it. The one check of `run` before anything is
    sent and of `estimate` / `plan` before anything is priced; it reads the samples, not the task's
    family, since a "qa" task may send images and a "vision" task may have none."""
    if supports_images(info):
        return
    for sample in samples:
        if sample.images:
            raise ConfigError(
                f"model {model!r} does not take image input (its catalog entry lists "
                f"{', '.join(info.input_modalities)}), but task {task_name!r} sends images "
                f"(sample {sample.id!r} has {len(sample.images)} image(s))"
            )


@dataclass
class Catalog(Mapping[str, ModelInfo]):
    """Models by id; `source` is "cache", "network" or "bundled"; `fetched_at` is a Unix time."""

    models: dict[str, ModelInfo] = field(default_factory=dict)
    source: str = "network"
    fetched_at: float | None = None
    base_url: str | None = None
    note: str | None = None

    @property
    def authoritative(self) -> bool:
        """True when this is the router's own list (network or its cache): a missing id is then an error."""
        return self.source in ("network", "cache")

    def __getitem__(self, model_id: str) -> ModelInfo:
        try:
            return self.models[model_id]
        except KeyError:
            raise KeyError(model_id) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def require(self, model_id: str) -> ModelInfo:
        """The model, or a ConfigError naming close ids (for a typo in `--models`)."""
        if model_id in self.models:
            return self.models[model_id]
        import difflib

        close = difflib.get_close_matches(model_id, list(self.models), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"model {model_id!r} is not in the {self.source} catalog{hint}", where="models")

    @classmethod
    def from_api(cls, payload: Any, **kwargs: Any) -> Catalog:
        """From the JSON of `GET /models` (`{"data": [...]}` or a bare list)."""
        return cls(models=read_models(payload), **kwargs)


# --------------------------------------------------------------------------------------------
# Fetching, caching, fallback


async def fetch_catalog(client_or_endpoint: Client | Endpoint) -> Catalog:
    """`GET /models` through the SDK; raises the SDK's exception when the router cannot be reached."""
    async with _client_for(client_or_endpoint) as client:
        payload = await client.sdk.get("/models", cast_to=object)
        return Catalog.from_api(
            payload, source="network", fetched_at=time.time(), base_url=client.endpoint.safe_url()
        )


async def get_credits(client: Client) -> dict[str, Any]:
    """`GET /credits`: the account balance as the router reports it (shape is the router's)."""
    payload = await client.sdk.get("/credits", cast_to=object)
    return unwrap_data(payload)


async def get_generation(client: Client, generation_id: str) -> dict[str, Any]:
    """`GET /generation?id=…`: the router's record of one generation (cost, provider, timings)."""
    payload = await client.sdk.get("/generation", cast_to=object, options={"params": {"id": generation_id}})
    return unwrap_data(payload)


class _client_for:  # noqa: N801 - used as a context manager
    """Use the given Client, or open (and close) a short-lived one for an Endpoint."""

    def __init__(self, client_or_endpoint: Client | Endpoint) -> None:
        self._given = client_or_endpoint
        self._owned: Client | None = None

    async def __aenter__(self) -> Client:
        from evalkit.client.call import Client

        if isinstance(self._given, Client):
            return self._given
        self._owned = Client(self._given, deadline_s=30.0, connect_timeout_s=10.0)
        return self._owned

    async def __aexit__(self, *exc: object) -> None:
        if self._owned is not None:
            await self._owned.aclose()


def _reason(exc: Exception) -> str:
    """A short, key-free reason: the client's error class, and the HTTP status when there is one."""
    from evalkit.client.failures import classify_exception

    failure = classify_exception(exc, streaming_started=False)
    return f"{failure.error}, HTTP {failure.status}" if failure.status else str(failure.error)


def cache_dir() -> Path:
    """`EVALKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/evalkit`, else `~/.cache/evalkit`."""
    if os.environ.get("EVALKIT_CACHE_DIR"):
        return Path(os.environ["EVALKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "evalkit"


def cache_path(endpoint: Endpoint) -> Path:
    """The catalog cache file of an endpoint (named by a hash of its key-free URL)."""
    digest = hashlib.sha256(endpoint.safe_url().encode()).hexdigest()[:16]
    return cache_dir() / f"catalog-{digest}.json"


def write_cache(catalog: Catalog, path: Path) -> None:
    """Write atomically (a concurrent reader sees the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CACHE_FORMAT,
        "fetched_at": catalog.fetched_at or time.time(),
        "base_url": catalog.base_url,
        "data": [m.to_api() for m in catalog.values()],
    }
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_cache(path: Path, *, ttl_s: float = CACHE_TTL_S, now: float | None = None) -> Catalog | None:
    """The cached catalog if present, readable and younger than `ttl_s`; else None."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        fetched_at = float(payload["fetched_at"])
        if payload.get("format") != CACHE_FORMAT:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (time.time() if now is None else now) - fetched_at > ttl_s:
        return None
    try:
        return Catalog.from_api(
            payload, source="cache", fetched_at=fetched_at, base_url=payload.get("base_url")
        )
    except ConfigError:
        return None


def bundled_catalog() -> Catalog:
    """The fallback shipped in `evalkit/data/prices.json` (prices from RouterAI's public pages)."""
    text = resources.files("evalkit").joinpath("data/prices.json").read_text(encoding="utf-8")
    payload = json.loads(text)
    return Catalog.from_api(payload, source="bundled", fetched_at=payload.get("fetched_at"))


async def load_catalog(
    endpoint: Endpoint, refresh: bool = False, *, ttl_s: float = CACHE_TTL_S, client: Client | None = None
) -> Catalog:
    """A fresh cache, else the network (then cached), else the bundled fallback. Never raises for I/O.

    A simulator is always asked directly and never cached (also when reached by its base URL): its
    port and models change from one start to the next, and asking it costs nothing.

    `Catalog.source` tells which one answered; after a failed fetch `Catalog.note` says why.
    """
    if endpoint.simulated:
        try:
            return await fetch_catalog(client or endpoint)
        except Exception as exc:
            raise ConfigError(
                f"the simulator's catalog could not be read ({_reason(exc)})", where="sim"
            ) from None
    path = cache_path(endpoint)
    if not refresh:
        cached = read_cache(path, ttl_s=ttl_s)
        if cached is not None:
            return cached
    try:
        catalog = await fetch_catalog(client or endpoint)
    except Exception as exc:  # any failure to reach or parse the router means: use what we ship
        fallback = bundled_catalog()
        fallback.note = f"the router's catalog could not be read ({_reason(exc)}); showing bundled prices"
        return fallback
    if any(info.simulated for info in catalog.values()):
        return catalog
    with contextlib.suppress(OSError):  # a read-only home must not stop a run
        write_cache(catalog, path)
    return catalog


# --------------------------------------------------------------------------------------------
# Display


def format_models_table(catalog: Catalog) -> str:
    """A plain-text table for `evalkit models`: id, context, modalities, ₽ per 1M tokens / 1K images."""
    header = ("model", "context", "input", "₽/1M in", "₽/1M out", "₽/1K img")
    rows = [header]
    for info in sorted(catalog.values(), key=lambda m: m.id):
        prices = info.pricing.per_million()
        rows.append(
            (
                info.id + (" (sim)" if info.simulated else ""),
                _context(info.context_length),
                "+".join(info.input_modalities),
                _money(prices["input_per_1m"]),
                _money(prices["output_per_1m"]),
                _money(prices["image_per_1k"]) if supports_images(info) else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    source = "simulator" if any(info.simulated for info in catalog.values()) else catalog.source
    lines.append(f"{len(catalog)} models · source: {source}" + _age(catalog.fetched_at))
    if catalog.note:
        lines.append(catalog.note)
    return "\n".join(line.rstrip() for line in lines)


def _context(tokens: int | None) -> str:
    if not tokens:
        return "?"
    return f"{tokens / 1000:.0f}K" if tokens < 1_000_000 else f"{tokens / 1e6:.2g}M"


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}"


def _age(fetched_at: float | None) -> str:
    if not fetched_at:
        return ""
    hours = (time.time() - fetched_at) / 3600
    return f" · fetched {hours:.1f} h ago" if hours >= 0.1 else " · fetched just now"
