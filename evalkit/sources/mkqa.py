"""MKQA (open-domain QA, 26 languages): gzip JSONL as in apple/ml-mkqa, or `apple/mkqa` hub rows.

One input line is one question in every language:
`{example_id, query, queries: {lang: str}, answers: {lang: [{type, text, aliases, ...}]}}`.
It becomes one row per (example, language) with `id` (`<lang>/<example_id>`), `example_id`,
`language`, `question`, `query_en`, `target` (every answer text and alias, deduplicated),
`answer_type` (of the first answer), `answer_types`, `unanswerable` and `cluster` (`mkqa/<example_id>`).

`unanswerable` is true for the types `unanswerable` and `long_answer`: MKQA's own evaluation treats
both as "no short answer", and their target is empty.

Options: `languages` (keep these, in this order; default all), `answerable_only` (drop unanswerable rows).
Select languages with `options.languages`, not `source.languages` (every language is in one file).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.sources.jsonl import iter_jsonl

# The order of the `type` ClassLabel in the hub dataset.
ANSWER_TYPES = (
    "entity",
    "long_answer",
    "unanswerable",
    "date",
    "number",
    "number_with_unit",
    "short_phrase",
    "binary",
)
NO_ANSWER_TYPES = frozenset({"unanswerable", "long_answer"})
_OPTIONS = {"languages", "answerable_only"}


def read(path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Rows of an MKQA file (`.jsonl.gz` or plain `.jsonl`); bad lines name the file and line number."""
    languages, answerable_only = _options(options, str(path))
    for record, where in iter_jsonl(path):
        yield from _explode(record, languages, answerable_only, where)


def from_hub(
    rows: Iterable[dict[str, Any]], language: str | None = None, **options: Any
) -> Iterator[dict[str, Any]]:
    """`apple/mkqa` rows (answers stored column-wise, `type` as a class index) with the local columns.
    `language` (from `source.languages`) keeps that one language."""
    languages, answerable_only = _options(options, "apple/mkqa")
    if language is not None:
        languages = [language]
    for index, record in enumerate(rows):
        yield from _explode(record, languages, answerable_only, f"apple/mkqa: row {index}")


def _explode(
    record: Any, languages: Sequence[str] | None, answerable_only: bool, where: str
) -> Iterator[dict[str, Any]]:
    if not isinstance(record, dict) or not {"example_id", "queries", "answers"} <= record.keys():
        raise TaskError("an MKQA record needs `example_id`, `queries` and `answers`", where=where)
    example_id = str(record["example_id"])
    queries, answers = record["queries"], record["answers"]
    for language in languages or list(queries):
        if language not in queries or language not in answers:
            continue
        items = _answers(answers[language], where)
        types = [item["type"] for item in items]
        unanswerable = not items or types[0] in NO_ANSWER_TYPES
        if unanswerable and answerable_only:
            continue
        yield {
            "id": f"{language}/{example_id}",
            "example_id": example_id,
            "language": language,
            "question": queries[language],
            "query_en": record.get("query", queries.get("en", "")),
            "target": [] if unanswerable else _targets(items),
            "answer_type": types[0] if types else "unanswerable",
            "answer_types": types,
            "unanswerable": unanswerable,
            "cluster": f"mkqa/{example_id}",
        }


def _answers(value: Any, where: str) -> list[dict[str, Any]]:
    """Answers as a list of {type, text, aliases}, from the file (list of dicts) or the hub (dict of lists)."""
    if isinstance(value, dict):
        count = len(value.get("type") or [])
        value = [
            {key: column[i] for key, column in value.items() if column is not None} for i in range(count)
        ]
    if not isinstance(value, list):
        raise TaskError("`answers` of a language must be a list", where=where)
    items = []
    for item in value:
        kind = item.get("type")
        kind = ANSWER_TYPES[kind] if isinstance(kind, int) and 0 <= kind < len(ANSWER_TYPES) else str(kind)
        items.append({"type": kind, "text": item.get("text"), "aliases": list(item.get("aliases") or [])})
    return items


def _targets(items: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        for text in (item["text"], *item["aliases"]):
            if text:
                seen.setdefault(str(text), None)
    return list(seen)


def _options(options: dict[str, Any], where: str) -> tuple[list[str] | None, bool]:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TaskError(f"unknown option(s) for the mkqa reader: {', '.join(sorted(unknown))}", where=where)
    languages = options.get("languages")
    if languages is not None and not (
        isinstance(languages, list) and all(isinstance(x, str) for x in languages)
    ):
        raise TaskError("option `languages` must be a list of language codes", where=where)
    return languages, bool(options.get("answerable_only", False))
