"""Loaders: a task's `source` -> rows (dicts) -> Samples.

Plain tables (jsonl, json, csv, tsv, parquet, a `save_to_disk` folder) are read by `tables`; hub ids go
through the `datasets` library. Real benchmark layouts that are not plain tables have one reader each (`format:` in the task's source),
registered below; a reader is `read(path: Path, **options) -> Iterable[dict]`. A format not listed is
looked up as the module `evalkit.sources.<format>`, whose `@evalkit.reader("<format>")` registers it:
adding a reader is one file. Users register their own the same way, from any module they import.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import TaskError
from evalkit.common.lazy import load
from evalkit.sources import tables
from evalkit.task.targets import (
    TargetProblem,
    alternatives,
    cell_text,
    choice_letter,
    decode_list,
    is_missing,
)

if TYPE_CHECKING:
    from evalkit.sources.spec import DataSpec, Source
    from evalkit.task.sample import Sample

Reader = Callable[..., Iterable[dict[str, Any]]]

_READERS: dict[str, str] = {
    "mgsm_tsv": "evalkit.sources.mgsm:read",
    "squad": "evalkit.sources.squad:read",
    "mkqa": "evalkit.sources.mkqa:read",
    "humaneval": "evalkit.sources.humaneval:read",
    "mbpp": "evalkit.sources.mbpp:read",
    "math_vision": "evalkit.sources.math_vision:read",
    "visual_suite": "evalkit.sources.visual_suite:read",
}
_REGISTERED: dict[str, Reader] = {}


def reader(name: str) -> Callable[[Reader], Reader]:
    """Register `read(path, **options) -> rows` as the reader of `format: <name>` in a task's source."""

    def register(read: Reader) -> Reader:
        if name in tables.FORMATS or name in _READERS:
            raise TaskError(f"data format {name!r} is built in; pick another name")
        _REGISTERED[name] = read
        return read

    return register


def _find_reader(fmt: str | None) -> Reader | None:
    """The reader of `fmt`, importing its module when it is one of ours; None for plain tables."""
    if fmt is None or fmt in tables.FORMATS:
        return None
    if fmt in _READERS:
        return load(_READERS[fmt])
    if fmt not in _REGISTERED and fmt.isidentifier() and importlib.util.find_spec(f"{__name__}.{fmt}"):
        importlib.import_module(f"{__name__}.{fmt}")  # its decorator registers it
    return _REGISTERED.get(fmt)


_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_samples(task: DataSpec) -> list[Sample]:
    """All samples of a task's source, in source order (languages in the order listed)."""
    assert task.source is not None
    source = task.source
    languages = source.languages or [None]
    samples: list[Sample] = []
    for language in languages:
        rows = _rows(source, language, base=_base_dir(task), where=task.where)
        samples.extend(_to_samples(task, rows, language, _data_dir(task, language)))
    check_unique_ids(samples, f"{task.where}: {source.path}" if source.path else task.where)
    return samples


def source_signature(task: DataSpec) -> tuple[Any, ...]:
    """What identifies the current content of a task's local data files (path, size, mtime), so that
    samples read once can be reused until a file changes."""
    if task.source is None:
        return ()
    signature = []
    for language in task.source.languages or [None]:
        path = _expand_env(_expand(task.source.path, language), where=f"{task.where}: source.path")
        local = (_base_dir(task) / path) if path else None
        if local is not None and local.exists():
            files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
            signature += [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return tuple(signature)


def check_unique_ids(samples: list[Sample], where: str) -> None:
    """Two samples with one id would overwrite each other's results: refuse, naming them."""
    seen: dict[str, int] = {}
    problems = RowProblems(
        where, "repeated id(s); ids must be unique (name a unique column in fields.id, or leave it unset)"
    )
    for index, sample in enumerate(samples):
        if sample.id in seen:
            problems.add(f"sample {index}", f"id {sample.id!r} repeats sample {seen[sample.id]}")
        else:
            seen[sample.id] = index
    problems.raise_if_any()


def _data_dir(task: DataSpec, language: str | None) -> Path | None:
    """The folder of the local data file, against which relative image paths in its rows resolve."""
    local = _local_file(task, language)
    return local.parent if local is not None else None


def _local_file(task: DataSpec, language: str | None) -> Path | None:
    """The local data file (or folder) this language reads, when it exists."""
    assert task.source is not None
    path = _expand_env(_expand(task.source.path, language), where=f"{task.where}: source.path")
    local = (_base_dir(task) / path).resolve() if path else None
    return local if local is not None and local.exists() else None


def _base_dir(task: DataSpec) -> Path:
    return Path(task.file).resolve().parent if task.file else Path.cwd()


def _expand(text: str | None, language: str | None) -> str | None:
    if text is None or language is None:
        return text
    return text.replace("{language}", language)


def _expand_env(text: str | None, *, where: str) -> str | None:
    """`${NAME}` and `${NAME:-default}` in a path take the environment variable, e.g.
    `${EVALKIT_DATA_DIR:-../../shared/data}/mgsm/mgsm_{language}.tsv`."""
    if text is None:
        return None

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if os.environ.get(name):
            return os.environ[name]
        if default is None:
            raise TaskError(
                f"environment variable {name} is not set (write ${{{name}:-default}})", where=where
            )
        return default

    return _ENV_VAR.sub(value, text)


def _rows(source: Source, language: str | None, *, base: Path, where: str) -> Iterator[dict[str, Any]]:
    path = _expand_env(_expand(source.path, language), where=f"{where}: source.path")
    local = (base / path).resolve() if path else None
    if local is not None and local.exists():
        yield from _read_local(local, source, where=f"{where}: source {local}")
    elif source.hub:
        yield from _read_hub(source, language, where=f"{where}: source {source.hub}")
    else:
        raise TaskError(
            f"data file not found: {local} (and no `hub` fallback)", where=f"{where}: source.path"
        )


def _read_local(path: Path, source: Source, *, where: str) -> Iterator[dict[str, Any]]:
    fmt = source.format
    try:
        read = _find_reader(fmt)
        if read is not None:
            _check_reader_options(read, fmt, source.options, where=where)
            yield from read(path, **source.options)
            return
        if fmt is not None and fmt not in tables.FORMATS:
            known = ", ".join(sorted({*tables.FORMATS, *_READERS, *_REGISTERED}))
            raise TaskError(
                f"unknown data format {fmt!r}; use one of {known}", where=f"{where}: source.format"
            )
        yield from tables.read_table(path, tables.table_format(path, fmt), source.options, where=where)
    except TaskError:
        raise
    except UnicodeDecodeError as exc:
        raise TaskError(f"not valid UTF-8 (byte offset {exc.start})", where=where) from None
    except (OSError, ValueError, KeyError) as exc:
        raise TaskError(f"cannot read data: {type(exc).__name__}: {exc}", where=where) from None


def _check_reader_options(reader: Reader, fmt: str, options: dict[str, Any], *, where: str) -> None:
    """A benchmark reader takes only its own keyword options; name an unknown one before calling it."""
    parameters = inspect.signature(reader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = [
        name for name, p in list(parameters.items())[1:] if p.kind is not inspect.Parameter.VAR_POSITIONAL
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TaskError(
            f"unknown option(s) {', '.join(unknown)} for format {fmt!r} (allowed: {', '.join(allowed) or 'none'})",
            where=f"{where}: source.options",
        )


def _read_hub(source: Source, language: str | None, *, where: str) -> Iterator[dict[str, Any]]:
    if source.options and _find_reader(source.format) is None:
        raise TaskError(
            f"option(s) {', '.join(sorted(source.options))} apply to a local file, but the data comes from "
            "the hub (which takes config, split and revision)",
            where=f"{where}: source.options",
        )
    import datasets

    try:
        dataset = datasets.load_dataset(
            source.hub, _expand(source.config, language), split=source.split, revision=source.revision
        )
    except Exception as exc:  # the hub raises many kinds; the user needs the id and the reason
        raise TaskError(
            f"cannot load from the Hugging Face hub: {type(exc).__name__}: {exc}", where=where
        ) from None
    yield from _adapt_hub(source, dataset, language)


def _adapt_hub(
    source: Source, rows: Iterable[dict[str, Any]], language: str | None
) -> Iterable[dict[str, Any]]:
    """A reader module may define `from_hub(rows, language=..., **options)` so that hub rows get the same
    columns as its local files (one field map serves both)."""
    read = _find_reader(source.format)
    if read is None:
        return rows
    module = sys.modules[read.__module__]
    adapt = getattr(module, "from_hub", None)
    return adapt(rows, language=language, **source.options) if adapt else rows


def _to_samples(
    task: DataSpec, rows: Iterable[dict[str, Any]], language: str | None, data_dir: Path | None = None
) -> Iterator[Sample]:
    """Rows -> Samples. Every row that cannot become a sample is collected, and all are reported at once
    (a missing id, an unreadable or null target, a choice label that names no option)."""
    from evalkit.task.sample import Sample

    fields = task.fields
    local = _local_file(task, language)
    problems = RowProblems(f"{task.where}: {local}" if local is not None else task.where)
    samples = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"row {index}"
        row = dict(row)
        if language is not None:
            row.setdefault("language", language)
        try:
            sample_id = _sample_id(row, fields.id, index, where)
            if language is not None and not sample_id.startswith(f"{language}/"):
                sample_id = f"{language}/{sample_id}"  # parallel sets share ids across languages
            choices = _choices(row, fields.choices, where)
            samples.append(
                Sample(
                    id=sample_id,
                    fields=row,
                    target=_target(row, fields, choices, where),
                    choices=choices,
                    language=row.get(fields.language) if fields.language else language,
                    images=_images(row, fields.images, where, data_dir),
                    metadata={name: row.get(name) for name in fields.metadata},
                )
            )
        except TargetProblem as exc:
            problems.add(where, str(exc))
        seen |= row.keys()
    problems.raise_if_any()
    _check_optional_columns(fields, seen, task.where)
    return iter(samples)


def _check_optional_columns(fields: Any, seen: set[str], where: str) -> None:
    """Choices, images and metadata may be absent from some rows, but a column no row has is a typo."""
    named = [*fields.metadata, *([fields.images] if fields.images else [])]
    named += [fields.choices] if isinstance(fields.choices, str) else []
    missing = [column for column in named if column not in seen]
    if seen and missing:
        raise TaskError(
            f"column(s) {', '.join(map(repr, missing))} are in no row of the data "
            f"(columns: {', '.join(sorted(seen))})",
            where=f"{where}: fields",
        )


class RowProblems:
    """Problems of many rows, reported as one TaskError that names them (the first few in full)."""

    SHOWN = 8

    def __init__(self, where: str, headline: str = "row(s) cannot be used") -> None:
        self.where = where
        self.headline = headline
        self.items: list[str] = []

    def add(self, row: str, problem: str) -> None:
        self.items.append(f"{row}: {problem}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = "; ".join(self.items[: self.SHOWN])
        more = f"; and {len(self.items) - self.SHOWN} more" if len(self.items) > self.SHOWN else ""
        raise TaskError(f"{len(self.items)} {self.headline}: {shown}{more}", where=self.where)


def _get(row: dict[str, Any], column: str, where: str) -> Any:
    if column not in row:
        raise TargetProblem(f"column {column!r} is not in the data (columns: {', '.join(row)})")
    return row[column]


def _sample_id(row: dict[str, Any], column: str | None, index: int, where: str) -> str:
    """The id column's value, or the row number (0-based) when the task names no id column."""
    if column is None:
        return str(index)
    value = _get(row, column, where)
    if is_missing(value):
        raise TargetProblem(f"the id column {column!r} is empty")
    return cell_text(value)


def _choices(row: dict[str, Any], columns: str | list[str] | None, where: str) -> list[str] | None:
    """The options: a list column, a text cell holding a JSON list, or one column per option."""
    if columns is None:
        return None
    if isinstance(columns, list):
        return [cell_text(_get(row, c, where)) for c in columns if not is_missing(_get(row, c, where))]
    value = row.get(columns)
    if is_missing(value):
        return None
    if isinstance(value, str):
        decoded = decode_list(value)
        if decoded is None:
            raise TargetProblem(f"choices {value!r} is one text, not a list (write a JSON list in the cell)")
        value = decoded
    if not isinstance(value, (list, tuple)):
        raise TargetProblem(f"choices must be a list, got {type(value).__name__}")
    return [cell_text(v) for v in value]


def _target(row: dict[str, Any], fields: Any, choices: list[str] | None, where: str) -> list[str]:
    columns = fields.target
    if columns is None:
        return []
    values: list[Any] = []
    for column in [columns] if isinstance(columns, str) else columns:
        value = _get(row, column, where)
        if isinstance(columns, list) and is_missing(value):
            continue  # several columns: an empty one is just an absent alias
        values.extend(
            alternatives(value, separator=fields.target_separator, json_lists=fields.target_json_lists)
        )
    if not values and isinstance(columns, list):
        raise TargetProblem(f"every target column ({', '.join(columns)}) is empty")
    if choices:
        return list(
            dict.fromkeys(
                choice_letter(v, choices, base=fields.index_base, reading=fields.choice_target)
                for v in values
            )
        )
    return [cell_text(v) for v in values]


def _images(row: dict[str, Any], column: str | None, where: str, data_dir: Path | None) -> list[Any]:
    if column is None:
        return []
    value = row.get(column)
    if value is None:
        return []
    refs = list(value) if isinstance(value, (list, tuple)) else [value]
    return [_relative_to(ref, data_dir) for ref in refs]


def _relative_to(ref: Any, data_dir: Path | None) -> Any:
    """A relative image path in a local data file means relative to that file (as docs/tasks.md says)."""
    if data_dir is None or not isinstance(ref, str) or ref.startswith(("http://", "https://", "data:")):
        return ref
    path = Path(ref).expanduser()
    return ref if path.is_absolute() else str(data_dir / path)
