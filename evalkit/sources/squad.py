"""SQuAD v1.1 JSON (XQuAD, and any SQuAD-format file) flattened to one row per question.

Rows carry `id` (the question id), `title`, `context`, `question`, `answers` (the answer texts),
`answer_starts` (character offsets into `context`), `paragraph` (0-based paragraph index over the
whole file) and `cluster`. XQuAD is parallel, so question ids and clusters are shared across
languages: a local file gives `xquad/<title>/<paragraph within the article>`; hub rows (which have
no title) give `xquad/<paragraph>` instead.

Option `cluster_prefix` (default `xquad`) names the set in the cluster id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError


def read(path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Rows of one SQuAD-format file; a structural problem names the file and the JSON location."""
    cluster_prefix = _options(options, path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskError(
            f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", where=str(path)
        ) from None
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise TaskError(
            "not SQuAD format: expected an object with a `data` list of articles", where=str(path)
        )
    paragraph = 0
    for a, article in enumerate(articles):
        for p, para in enumerate(_list(article, "paragraphs", f"{path}: data[{a}]")):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = _text(para, "context", where)
            cluster = f"{cluster_prefix}/{article.get('title', a)}/{p}"
            for q, qa in enumerate(_list(para, "qas", where)):
                row = _question(qa, context, f"{where}.qas[{q}]")
                yield {**row, "title": article.get("title", ""), "paragraph": paragraph, "cluster": cluster}
            paragraph += 1


def from_hub(
    rows: Iterable[dict[str, Any]], language: str | None = None, *, cluster_prefix: str = "xquad"
) -> Iterator[dict[str, Any]]:
    """`google/xquad` rows (id, context, question, answers{text, answer_start}) with the local columns;
    a paragraph is a run of consecutive rows with the same context."""
    paragraph, previous = -1, None
    for row in rows:
        if row["context"] != previous:
            paragraph, previous = paragraph + 1, row["context"]
        answers = row.get("answers") or {}
        yield {
            "id": row["id"],
            "title": row.get("title", ""),
            "context": row["context"],
            "question": row["question"],
            "answers": list(answers.get("text", [])),
            "answer_starts": list(answers.get("answer_start", [])),
            "paragraph": paragraph,
            "cluster": f"{cluster_prefix}/{paragraph}",
        }


def _options(options: dict[str, Any], path: Path) -> str:
    unknown = set(options) - {"cluster_prefix"}
    if unknown:
        raise TaskError(
            f"unknown option(s) for the squad reader: {', '.join(sorted(unknown))}", where=str(path)
        )
    return str(options.get("cluster_prefix", "xquad"))


def _question(qa: Any, context: str, where: str) -> dict[str, Any]:
    question = _text(qa, "question", where)
    qid = qa.get("id")
    if not qid:
        raise TaskError("question has no `id`", where=where)
    answers = _list(qa, "answers", where)
    texts = [_text(answer, "text", f"{where}.answers[{i}]") for i, answer in enumerate(answers)]
    if not texts:
        raise TaskError("question has no answers", where=where)
    starts = [answer.get("answer_start", -1) for answer in answers]
    return {
        "id": str(qid),
        "context": context,
        "question": question,
        "answers": texts,
        "answer_starts": starts,
    }


def _list(node: Any, key: str, where: str) -> list[Any]:
    value = node.get(key) if isinstance(node, dict) else None
    if not isinstance(value, list):
        raise TaskError(f"not SQuAD format: `{key}` must be a list", where=where)
    return value


def _text(node: Any, key: str, where: str) -> str:
    value = node.get(key) if isinstance(node, dict) else None
    if not isinstance(value, str):
        raise TaskError(f"not SQuAD format: `{key}` must be a string", where=where)
    return value
