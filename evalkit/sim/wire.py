"""RouterAI's JSON shapes (OpenRouter's, with RouterAI's quirks), built as compact UTF-8 bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from evalkit.sim.profiles import SimModel

PROVIDER = "Simulator"
SIMULATED_HEADER = {"X-Evalkit-Simulated": "1"}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(value: Any) -> bytes:
    return _dumps(value).encode()


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and ₽ of one completed generation."""

    prompt_tokens: int
    completion_tokens: int
    images: int
    input_cost: float
    output_cost: float
    image_cost: float
    cost: float = 0.0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    @classmethod
    def priced(
        cls,
        prompt_tokens: int,
        completion_tokens: int,
        images: int,
        costs: tuple[float, float, float],
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Usage:
        """Usage whose `cost` is the sum of the (input, output, image) costs."""
        return cls(
            prompt_tokens, completion_tokens, images, *costs, sum(costs), cached_tokens, reasoning_tokens,
            cache_write_tokens,
        )  # fmt: skip


def completion(
    gen_id: str, model: str, created: int, text: str, finish_reason: str, usage: Usage, reasoning: str = ""
) -> bytes:
    """A non-streaming chat completion (a prebuilt template: this is the simulator's hot path)."""
    thought = _dumps(reasoning) if reasoning else "null"
    details = (
        f',"reasoning_details":[{{"type":"reasoning.text","text":{thought},"format":"unknown","index":0}}]'
        if reasoning
        else ""
    )
    return (
        f'{{"id":"{gen_id}","provider":"{PROVIDER}","model":{_dumps(model)},"object":"chat.completion",'
        f'"created":{created},"choices":[{{"logprobs":null,"finish_reason":"{finish_reason}",'
        f'"native_finish_reason":"{finish_reason}","index":0,"message":{{"role":"assistant",'
        f'"content":{_dumps(text)},"refusal":null,"reasoning":{thought}{details}}}}}],"system_fingerprint":null,'
        f'"usage":{usage_json(usage)}}}'
    ).encode()


def usage_json(usage: Usage) -> str:
    """`usage` as RouterAI sends it: token counts, `cost` in ₽ and the cost split."""
    written = f',"cache_write_tokens":{usage.cache_write_tokens}' if usage.cache_write_tokens else ""
    return (
        f'{{"prompt_tokens":{usage.prompt_tokens},"completion_tokens":{usage.completion_tokens},'
        f'"total_tokens":{usage.prompt_tokens + usage.completion_tokens},"cost":{float(usage.cost)!r},'
        f'"is_byok":false,"prompt_tokens_details":{{"cached_tokens":{usage.cached_tokens},"audio_tokens":0{written}}},'
        f'"cost_details":{{"upstream_inference_cost":null,'
        f'"upstream_inference_prompt_cost":{float(usage.input_cost + usage.image_cost)!r},'
        f'"upstream_inference_completions_cost":{float(usage.output_cost)!r}}},'
        f'"completion_tokens_details":{{"reasoning_tokens":{usage.reasoning_tokens},"image_tokens":0}}}}'
    )


def chunk(
    gen_id: str,
    model: str,
    created: int,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> bytes:
    """One SSE `data:` event of a streamed completion."""
    reason = f'"{finish_reason}"' if finish_reason else "null"
    tail = f',"usage":{usage_json(usage)}' if usage is not None else ""
    return (
        f'data: {{"id":"{gen_id}","provider":"{PROVIDER}","model":{_dumps(model)},'
        f'"object":"chat.completion.chunk","created":{created},"choices":[{{"index":0,'
        f'"delta":{_dumps(delta)},"finish_reason":{reason},"native_finish_reason":{reason},"logprobs":null}}],'
        f'"system_fingerprint":null{tail}}}\n\n'
    ).encode()


def stream_error(gen_id: str, model: str, created: int, code: int, message: str) -> bytes:
    """An error event inside a stream, after some content (OpenRouter's mid-stream error)."""
    body = {
        "id": gen_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "provider": PROVIDER,
        "error": {"code": code, "message": message},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    return b"data: " + dumps(body) + b"\n\n"


def error(code: int, message: str, **metadata: Any) -> bytes:
    body: dict[str, Any] = {"message": message, "code": code}
    if metadata:
        body["metadata"] = metadata
    return dumps({"error": body})


def model_entry(model: SimModel, created: int) -> dict[str, Any]:
    """One `GET /models` entry: prices are ₽ per token (₽ per image for `image`), as JSON numbers."""
    inputs = list(model.input_modalities)
    return {
        "id": model.id,
        "canonical_slug": model.id,
        "name": model.name,
        "created": created,
        "description": f"{model.name} (served by the evalkit simulator)",
        "context_length": model.context_length,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->text",
            "input_modalities": inputs,
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": model.prompt_price,
            "completion": model.completion_price,
            "image": model.image_price,
            "request": 0,
            "web_search": 0,
            "internal_reasoning": 0,
            **({"input_cache_read": model.cache_read_price} if model.lists_cache_price else {}),
            **({} if model.cache_write_price is None else {"input_cache_write": model.cache_write_price}),
        },
        "top_provider": {
            "context_length": model.context_length,
            "max_completion_tokens": model.max_completion_tokens,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "seed", "stream"],
        "simulated": True,
    }
