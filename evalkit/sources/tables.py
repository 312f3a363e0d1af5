"""Plain tables as users write them: JSON Lines, a JSON array, CSV/TSV, Parquet, a `save_to_disk` folder.

Each reader takes only the options it documents (docs/tasks.md, "Plain tables"); an unknown option is
an error naming it. Errors name the file and the line (or row).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.common.errors import TaskError
from evalkit.sources.jsonl import MAX_LINE_BYTES, iter_jsonl, iter_lines

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "disk")
OPTIONS: dict[str, frozenset[str]] = {
    "jsonl": frozenset({"encoding", "max_line_bytes"}),
    "json": frozenset({"encoding", "max_line_bytes", "field"}),
    "csv": frozenset({"delimiter", "sep", "encoding", "quotechar", "max_line_bytes"}),
    "tsv": frozenset({"delimiter", "sep", "encoding", "quotechar", "max_line_bytes"}),
    "parquet": frozenset(),
    "disk": frozenset({"split"}),
}
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
_SUFFIXES |= {".parquet": "parquet", ".pq": "parquet"}


def table_format(path: Path, declared: str | None) -> str:
    """The plain-table format of a file: the declared one, else from the suffix (a folder is `disk`)."""
    if declared is not None:
        return declared
    if path.is_dir():
        return "disk"
    name = path.name.lower().removesuffix(".gz")
    found = _SUFFIXES.get(Path(name).suffix)
    if found is None:
        raise TaskError(
            f"cannot tell the data format from the name {path.name!r}; set source.format "
            f"to one of {', '.join(FORMATS)}",
            where=str(path),
        )
    return found


def check_options(fmt: str, options: dict[str, Any], *, where: str) -> None:
    unknown = sorted(set(options) - OPTIONS[fmt])
    if unknown:
        allowed = ", ".join(sorted(OPTIONS[fmt])) or "none"
        raise TaskError(
            f"unknown option(s) {', '.join(unknown)} for format {fmt!r} (allowed: {allowed})",
            where=f"{where}: source.options",
        )


def read_table(path: Path, fmt: str, options: dict[str, Any], *, where: str) -> Iterator[dict[str, Any]]:
    check_options(fmt, options, where=where)
    max_line = int(options.get("max_line_bytes", MAX_LINE_BYTES))
    encoding = _encoding(options.get("encoding", "utf-8"), where=where)
    if fmt == "jsonl":
        for row, _ in iter_jsonl(path, max_line_bytes=max_line, encoding=encoding):
            yield row
    elif fmt == "json":
        yield from _read_json(path, encoding, max_line, options.get("field"))
    elif fmt in ("csv", "tsv"):
        delimiter = options.get("delimiter", options.get("sep", "\t" if fmt == "tsv" else ","))
        yield from _read_csv(path, encoding, str(delimiter), str(options.get("quotechar", '"')), max_line)
    elif fmt == "parquet":
        yield from _read_parquet(path)
    else:
        yield from _read_disk(path, options.get("split"))


def _encoding(name: Any, *, where: str) -> str:
    try:
        return codecs.lookup(str(name)).name
    except LookupError:
        raise TaskError(f"unknown encoding {name!r}", where=f"{where}: source.options.encoding") from None


def _read_json(path: Path, encoding: str, max_line: int, field: str | None) -> Iterator[dict[str, Any]]:
    """A JSON array (or an object holding one under `field`), else JSON Lines."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(4096).decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    if not head.startswith("[") and field is None:
        for row, _ in iter_jsonl(path, max_line_bytes=max_line, encoding=encoding):
            yield row
        return
    with opener(path, "rb") as handle:
        raw = handle.read(max_line + 1)
    if len(raw) > max_line:
        raise TaskError(
            f"a JSON document larger than {max_line} bytes; write it as JSON Lines", where=str(path)
        )
    text = _decode(raw, encoding, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskError(f"not valid JSON: {exc.msg}", where=f"{path}: line {exc.lineno}") from None
    if field is not None:
        data = data.get(field) if isinstance(data, dict) else None
    if not isinstance(data, list):
        raise TaskError(
            f"expected a JSON array of objects{f' under {field!r}' if field else ''}", where=str(path)
        )
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise TaskError("expected a JSON object", where=f"{path}: item {index}")
        yield row


def _decode(data: bytes, encoding: str, path: Path) -> str:
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = " (set source.options.encoding, e.g. cp1251)" if encoding == "utf-8" else ""
        raise TaskError(
            f"not valid {encoding.upper()} at line {line} (byte offset {exc.start}){hint}", where=str(path)
        ) from None


def _read_csv(
    path: Path, encoding: str, delimiter: str, quotechar: str, max_line: int
) -> Iterator[dict[str, Any]]:
    if len(delimiter) != 1:
        raise TaskError(f"the delimiter must be one character, got {delimiter!r}", where=str(path))
    chunks = []
    for number, raw in iter_lines(path, max_line_bytes=max_line):
        try:
            chunks.append(raw.decode(encoding))
        except UnicodeDecodeError as exc:
            hint = " (set source.options.encoding, e.g. cp1251)" if encoding == "utf-8" else ""
            raise TaskError(
                f"not valid {encoding.upper()} (byte {exc.start} of the line){hint}",
                where=f"{path}: line {number}",
            ) from None
    text = "".join(chunks).removeprefix("\ufeff")
    csv.field_size_limit(max(max_line, 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        _check_header(header, path, delimiter)
        unnamed = [i for i, name in enumerate(header) if not name]
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}: line {reader.line_num}"
            if len(row) != len(header):
                raise TaskError(
                    f"{len(row)} columns, but the header has {len(header)} "
                    f"(delimiter {delimiter!r}; set source.options.delimiter if the file uses another)",
                    where=where,
                )
            _check_unnamed(row, unnamed, where)
            yield {name: cell for name, cell in zip(header, row, strict=True) if name}
    except csv.Error as exc:
        raise TaskError(f"malformed CSV: {exc}", where=f"{path}: line {reader.line_num}") from None


def _check_unnamed(row: list[str], unnamed: list[int], where: str) -> None:
    """A column without a name must be empty: Excel writes a trailing `;` on every line, but a value
    under no name is data we could not address."""
    for index in unnamed:
        if row[index].strip():
            raise TaskError(
                f"a value {row[index].strip()[:40]!r} in column {index + 1}, which has no name in the header",
                where=where,
            )


def _check_header(header: list[str], path: Path, delimiter: str) -> None:
    if not any(header):
        raise TaskError("the header names no column", where=f"{path}: line 1")
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise TaskError(f"repeated column name(s) {', '.join(repeated)}", where=f"{path}: line 1")
    if len(header) == 1:
        for other in (";", "\t", ",", "|"):
            if other != delimiter and other in header[0]:
                raise TaskError(
                    f"one column {header[0]!r} with {other!r} in it: the file looks {other!r}-separated; "
                    f"set source.options.delimiter: {other!r}",
                    where=f"{path}: line 1",
                )


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import datasets

    try:
        with quiet_datasets(datasets):
            dataset = datasets.load_dataset("parquet", data_files=str(path), split="train")
    except Exception as exc:  # pyarrow and datasets raise many kinds for a broken file
        raise TaskError(
            f"cannot read Parquet: {type(exc).__name__}: {_first_line(exc)}", where=str(path)
        ) from None
    yield from dataset


def _read_disk(path: Path, split: str | None) -> Iterator[dict[str, Any]]:
    """A folder written by `datasets`' `save_to_disk` (a Dataset, or a DatasetDict with `split`)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise TaskError(
            f"not a `save_to_disk` folder: {type(exc).__name__}: {_first_line(exc)}", where=str(path)
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split not in loaded:
            raise TaskError(
                f"set source.options.split to one of {', '.join(splits)}", where=f"{path}: split {split!r}"
            )
        loaded = loaded[split]
    yield from loaded


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


@contextlib.contextmanager
def quiet_datasets(datasets: Any) -> Iterator[None]:
    """A local file loads in milliseconds; its "Generating train split" bars only clutter the output."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
