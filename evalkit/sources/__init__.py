"""Loaders: a task's `source` -> rows (dicts) -> Samples.

Generic files (jsonl, json, csv, tsv, parquet) and hub ids go through the `datasets` library. Real
benchmark layouts that are not plain tables have one reader each (`format:` in the task's source),
registered below; a reader is `read(path: Path, **options) -> Iterable[dict]`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import TaskError

if TYPE_CHECKING:
    from evalkit.task import Sample, Source, Task

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
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_GENERIC = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def load_samples(task: Task) -> list[Sample]:
    """All samples of a task's source, in source order (languages in the order listed)."""
    assert task.source is not None
    source = task.source
    languages = source.languages or [None]
    samples: list[Sample] = []
    for language in languages:
        rows = _rows(source, language, base=_base_dir(task), where=task.where)
        samples.extend(_to_samples(task, rows, language, _data_dir(task, language)))
    return samples


def _data_dir(task: Task, language: str | None) -> Path | None:
    """The folder of the local data file, against which relative image paths in its rows resolve."""
    assert task.source is not None
    path = _expand_env(_expand(task.source.path, language), where=f"{task.where}: source.path")
    local = (_base_dir(task) / path).resolve() if path else None
    return local.parent if local is not None and local.exists() else None


def _base_dir(task: Task) -> Path:
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
        if fmt in _READERS:
            module_name, func = _READERS[fmt].split(":")
            reader: Reader = getattr(importlib.import_module(module_name), func)
            yield from reader(path, **source.options)
            return
        yield from _read_generic(path, fmt)
    except TaskError:
        raise
    except UnicodeDecodeError as exc:
        raise TaskError(f"not valid UTF-8 (byte offset {exc.start})", where=where) from None
    except (OSError, ValueError, KeyError) as exc:
        raise TaskError(f"cannot read data: {type(exc).__name__}: {exc}", where=where) from None


def _read_generic(path: Path, fmt: str | None) -> Iterator[dict[str, Any]]:
    suffixes = "".join(path.suffixes[-2:]).replace(".gz", "") or path.suffix
    builder = _GENERIC.get(fmt and f".{fmt}" or Path(f"x{suffixes}").suffix)  # Path(".jsonl").suffix is ""
    if builder is None:
        raise TaskError(
            f"unknown data format {fmt or path.suffix!r}; use one of "
            f"{', '.join(sorted({*(_GENERIC), *_READERS}))}",
            where=str(path),
        )
    _check_utf8(path)
    if path.suffix != ".parquet" and not path.read_bytes().strip():
        return  # `datasets` fails on an empty file with a bare StopIteration; "empty" is reported by Task
    import datasets

    kwargs: dict[str, Any] = {"delimiter": "\t"} if path.suffix == ".tsv" else {}
    with _quiet_datasets(datasets):
        dataset = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    yield from dataset


@contextlib.contextmanager
def _quiet_datasets(datasets: Any) -> Iterator[None]:
    """A local file loads in milliseconds; its "Generating train split" bars only clutter the output."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _check_utf8(path: Path) -> None:
    """datasets reports bad bytes from deep inside pyarrow; check first to name the file and offset."""
    if path.suffix in (".gz", ".parquet"):
        return
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TaskError(
            f"not valid UTF-8 at line {line} (byte offset {exc.start})", where=str(path)
        ) from None


def _read_hub(source: Source, language: str | None, *, where: str) -> Iterator[dict[str, Any]]:
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
    if source.format not in _READERS:
        return rows
    module = importlib.import_module(_READERS[source.format].split(":")[0])
    adapt = getattr(module, "from_hub", None)
    return adapt(rows, language=language, **source.options) if adapt else rows


def _to_samples(
    task: Task, rows: Iterable[dict[str, Any]], language: str | None, data_dir: Path | None = None
) -> Iterator[Sample]:
    from evalkit.task import Sample

    fields = task.fields
    for index, row in enumerate(rows):
        where = f"{task.where}: row {index}"
        row = dict(row)
        if language is not None:
            row.setdefault("language", language)
        sample_id = _get(row, fields.id, where) if fields.id else index
        if language is not None and not str(sample_id).startswith(f"{language}/"):
            sample_id = f"{language}/{sample_id}"  # parallel sets share ids across languages
        yield Sample(
            id=str(sample_id),
            fields=row,
            target=_target(row, fields.target, where),
            choices=_get(row, fields.choices, where) if fields.choices else None,
            language=row.get(fields.language) if fields.language else language,
            images=_images(row, fields.images, where, data_dir),
            metadata={name: _get(row, name, where) for name in fields.metadata},
        )


def _get(row: dict[str, Any], column: str, where: str) -> Any:
    if column not in row:
        raise TaskError(f"column {column!r} is not in the data (columns: {', '.join(row)})", where=where)
    return row[column]


def _target(row: dict[str, Any], columns: str | list[str] | None, where: str) -> list[str]:
    if columns is None:
        return []
    if isinstance(columns, str):
        columns = [columns]
    values: list[str] = []
    for column in columns:
        value = _get(row, column, where)
        values.extend(str(v) for v in value) if isinstance(value, (list, tuple)) else values.append(
            str(value)
        )
    return values


def _images(row: dict[str, Any], column: str | None, where: str, data_dir: Path | None) -> list[Any]:
    if column is None:
        return []
    value = _get(row, column, where)
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
