"""Reader for the generated visual suite: a small JSON spec -> generated rows (see `evalkit.visual`).

The spec (e.g. `tasks/data/builtin_vision.json`) holds `seed`, `counts` (items per kind),
`text_per_language` and `languages`; the task's `source.options` override any of them:

    source: {path: data/builtin_vision.json, format: visual_suite, options: {seed: 7}}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError

SPEC_KEYS = {"seed", "counts", "text_per_language", "languages", "out_dir"}


def read(path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Generate (or reuse from the cache) the suite described by the spec at `path`."""
    from evalkit.visual import generate

    where = str(path)
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskError(f"invalid JSON: {exc.msg} (line {exc.lineno})", where=where) from None
    if not isinstance(spec, dict):
        raise TaskError("a visual suite spec must be a JSON object", where=where)
    spec = {**spec, **options}
    unknown = set(spec) - SPEC_KEYS - {"name", "description"}
    if unknown:
        raise TaskError(
            f"unknown visual suite settings {sorted(unknown)}; known: {sorted(SPEC_KEYS)}", where=where
        )
    if not isinstance(spec.get("seed", 0), int):
        raise TaskError(f"seed must be an integer, got {spec['seed']!r}", where=where)
    settings = {key: spec[key] for key in SPEC_KEYS if key in spec and key != "seed"}
    try:
        yield from generate(spec.get("seed", 0), **settings)
    except ValueError as exc:
        raise TaskError(str(exc), where=where) from None
