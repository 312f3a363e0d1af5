"""The journal's `sample` line: one scored (or failed) sample with everything the DataFrame shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.client import CallRecord
    from evalkit.prompt import Rendered
    from evalkit.runner import Unit
    from evalkit.scorers.base import Score

PROMPT_CHARS = 2000


def sample_row(
    *,
    run_id: str,
    unit: Unit,
    rendered: Rendered,
    record: CallRecord,
    score: Score | None,
    estimate: Any,
    request: str,
    from_cache: bool,
    simulated: bool,
) -> dict[str, Any]:
    sample = unit.sample
    call = record.to_dict()
    return {
        "kind": "sample",
        "key": [unit.task.name, unit.model, sample.id, unit.epoch],
        "run_id": run_id,
        "task": unit.task.name,
        "family": unit.task.family,
        "model": unit.model,
        "sample_id": sample.id,
        "epoch": unit.epoch,
        "language": sample.language,
        "target": sample.target,
        "prompt": rendered.text[:PROMPT_CHARS],
        "output": record.output,
        "reasoning": record.reasoning,
        "truncated": record.truncated,
        "extracted": score.extracted if score else None,
        "score": score.value if score else None,
        "explanation": score.explanation if score else None,
        "metrics": dict(score.metrics) if score else {},
        "error": record.error,
        "error_message": record.error_message,
        **{name: call.get(name) for name in _CALL_COLUMNS},
        "images": len(rendered.images),
        "image_refs": [image.record() for image in rendered.images],
        "cost_rub_estimated": estimate.total if estimate else None,
        "cost_rub_input": estimate.input if estimate else None,
        "cost_rub_output": estimate.output if estimate else None,
        "cost_rub_images": estimate.images if estimate else None,
        "cost_rub_reasoning": estimate.reasoning if estimate else None,
        "cost_rub_cache_saved": estimate.cache_saved if estimate else None,
        "from_cache": from_cache,
        "simulated": simulated,
        "cluster": str(sample.metadata.get("cluster", sample.id)),
        "metadata": sample.metadata,
        "request": request,
    }


_CALL_COLUMNS = (
    "latency_s",
    "ttft_s",
    "ttft_reasoning_s",
    "output_tokens_per_s",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_rub",
    "attempts",
    "finish_reason",
    "generation_id",
    "http_status",
)
