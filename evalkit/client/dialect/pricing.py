"""What the router's `GET /models` says about a model, in its units: `ModelInfo` and its `PriceCard`.

Prices are ₽ per token as numbers (OpenRouter-like routers send strings: both are read by
`parse_price`). The catalog (`evalkit/client/catalog.py`) holds these; the doctor's quirk checks
read them from a live answer; a `PriceCard` estimates what a call costs (`usage.cost` is the truth).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.client.dialect.recognise import parse_price
from evalkit.common.errors import ConfigError


@dataclass(frozen=True)
class CostEstimate:
    """A price-card estimate of one call, split by what was billed (₽).

    `reasoning` is the thinking's share of `output` (not added to the total); `cache_saved` is what
    the cached prompt tokens would have cost more at the full prompt price, net of what cache writes
    cost extra (NaN when the price card has no price for a cache read or write the call made).
    """

    total: float
    input: float
    output: float
    images: float
    reasoning: float = 0.0
    cache_saved: float = 0.0


@dataclass(frozen=True)
class PriceCard:
    """Prices in ₽ per token (prompt, completion, cache read, cache write) and ₽ per input image."""

    prompt: float
    completion: float
    image: float = 0.0
    input_cache_read: float | None = None
    input_cache_write: float | None = None

    def estimate(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        images: int = 0,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> CostEstimate:
        """Cost of a call; prompt tokens read from the cache are billed at `input_cache_read` and those
        written to it at `input_cache_write` when the card has them, and thinking tokens (counted in
        `completion_tokens`, or on top of them when a provider reports more thinking than completion
        tokens) as output. `cache_saved` is net of what writing the cache cost extra."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        written = min(max(cache_write_tokens, 0), prompt_tokens - cached)
        cache_price = self.prompt if self.input_cache_read is None else self.input_cache_read
        write_price = self.prompt if self.input_cache_write is None else self.input_cache_write
        input_cost = (
            (prompt_tokens - cached - written) * self.prompt + cached * cache_price + written * write_price
        )
        thinking = max(reasoning_tokens, 0)
        # more thinking than completion tokens: this provider counts the thought apart, and bills both
        output_cost = (
            completion_tokens + (thinking if thinking > completion_tokens else 0)
        ) * self.completion
        image_cost = images * self.image
        return CostEstimate(
            total=input_cost + output_cost + image_cost,
            input=input_cost,
            output=output_cost,
            images=image_cost,
            reasoning=thinking * self.completion,
            cache_saved=self._cache_saved(cached, written),
        )

    def worst_case(self, prompt_tokens: int, output_tokens: int, images: int = 0) -> float:
        """The most a call can be billed: every prompt token at the dearer of the prompt and the
        cache-write price (a router may write the whole prompt to its cache), and all the output."""
        dearer_write = self.input_cache_write is not None and self.input_cache_write > self.prompt
        written = prompt_tokens if dearer_write else 0
        return self.estimate(prompt_tokens, output_tokens, images=images, cache_write_tokens=written).total

    def _cache_saved(self, cached: int, written: int) -> float:
        """NaN when the card lacks the price of a cache read or write the call made: without it the
        saving is unknown, and 0 would claim the cache was worth nothing."""
        if (cached and self.input_cache_read is None) or (written and self.input_cache_write is None):
            return math.nan
        read = 0.0 if not cached else cached * (self.prompt - self.input_cache_read)  # type: ignore[operator]
        wrote = 0.0 if not written else written * (self.input_cache_write - self.prompt)  # type: ignore[operator]
        return read - wrote

    def per_million(self) -> dict[str, float | None]:
        """Display units: ₽ per 1M input / output / cache-read tokens and ₽ per 1K images."""
        return {
            "input_per_1m": self.prompt * 1e6,
            "output_per_1m": self.completion * 1e6,
            "cache_read_per_1m": None if self.input_cache_read is None else self.input_cache_read * 1e6,
            "image_per_1k": self.image * 1e3,
        }

    @classmethod
    def from_api(cls, pricing: Mapping[str, Any] | None, *, where: str = "pricing") -> PriceCard:
        """From a `/models` entry's `pricing` (numbers or numeric strings, ₽ per unit)."""
        pricing = pricing or {}
        cache = pricing.get("input_cache_read")
        write = pricing.get("input_cache_write")
        return cls(
            prompt=parse_price(pricing.get("prompt"), f"{where}.prompt"),
            completion=parse_price(pricing.get("completion"), f"{where}.completion"),
            image=parse_price(pricing.get("image"), f"{where}.image"),
            input_cache_read=None if cache in (None, "") else parse_price(cache, f"{where}.input_cache_read"),
            input_cache_write=None
            if write in (None, "")
            else parse_price(write, f"{where}.input_cache_write"),
        )

    def to_dict(self) -> dict[str, float]:
        """₽ per token / per image, in the router's field names (for manifests)."""
        return self.to_api()

    def to_api(self) -> dict[str, float]:
        out = {"prompt": self.prompt, "completion": self.completion, "image": self.image}
        if self.input_cache_read is not None:
            out["input_cache_read"] = self.input_cache_read
        if self.input_cache_write is not None:
            out["input_cache_write"] = self.input_cache_write
        return out


@dataclass(frozen=True)
class ModelInfo:
    """What the router says about one model."""

    id: str
    name: str
    context_length: int | None
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    pricing: PriceCard
    simulated: bool = False

    @classmethod
    def from_api(cls, entry: Mapping[str, Any], *, simulated: bool = False) -> ModelInfo:
        """From one element of `GET /models` → `data`."""
        model_id = entry.get("id")
        if not isinstance(model_id, str) or not model_id:
            raise ConfigError(f"model entry without an id: {str(entry)[:200]}", where="/models")
        arch = entry.get("architecture") or {}
        inputs = arch.get("input_modalities") or entry.get("input_modalities") or _from_modality(arch, 0)
        outputs = arch.get("output_modalities") or entry.get("output_modalities") or _from_modality(arch, 1)
        context = entry.get("context_length") or (entry.get("top_provider") or {}).get("context_length")
        return cls(
            id=model_id,
            name=str(entry.get("name") or model_id),
            context_length=int(context) if context else None,
            input_modalities=tuple(inputs or ("text",)),
            output_modalities=tuple(outputs or ("text",)),
            pricing=PriceCard.from_api(entry.get("pricing"), where=f"/models[{model_id}].pricing"),
            simulated=bool(entry.get("simulated", simulated)),
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "context_length": self.context_length,
            "architecture": {
                "input_modalities": list(self.input_modalities),
                "output_modalities": list(self.output_modalities),
            },
            "pricing": self.pricing.to_api(),
            "simulated": self.simulated,
        }


def _from_modality(arch: Mapping[str, Any], side: int) -> list[str] | None:
    """OpenRouter's older `architecture.modality`, e.g. "text+image->text"."""
    modality = arch.get("modality")
    if not isinstance(modality, str) or "->" not in modality:
        return None
    return [m for m in modality.split("->")[side].split("+") if m]


def read_models(payload: Any) -> dict[str, ModelInfo]:
    """Models by id from the JSON of `GET /models` (`{"data": [...]}` or a bare list)."""
    entries = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(entries, list):
        raise ConfigError("expected {'data': [...]} from /models", where="/models")
    infos = [ModelInfo.from_api(e) for e in entries if isinstance(e, dict)]
    return {m.id: m for m in infos}
