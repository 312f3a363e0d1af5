"""The run journal: `results/<run_id>/manifest.json` + an append-only `samples.jsonl`.

Three kinds of line go into samples.jsonl:
  {"kind": "response", "key": ..., "call": {...}}   the router's answer, written as soon as it arrives
  {"kind": "judge_response", "key": ..., "judge": tag, "asked": hash, "call": {...}}   a judge's reply
                                                    (judged tasks), written before any verdict is read from it
  {"kind": "sample", "key": ..., ...columns...}     the scored sample; it counts once this is on disk
and one kind that only the budget reads:
  {"kind": "unconfirmed", "key": ..., "unconfirmed_rub": x, "invocation": started_at}  a call that
                                                    ended without a response (model- or run-fatal) after a
                                                    cut, maybe billed, attempt (one line per invocation)

A run killed between the two resumes by scoring the recorded response: nothing is sent twice.
A line cut short by a crash or power loss is dropped on resume and its sample redone.
Writes are group-committed: each line is written and flushed at once (safe from a process kill), and
the awaiting samples are released after the next fsync (safe from power loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.common.errors import ConfigError, EvalkitWarning, RunLocked, StorageError
from evalkit.common.text import json_document, json_line

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
LOCK = "writer.lock"  # flock'ed by the one process writing the run; readers never take it

Key = tuple[str, str, str, int]  # (task, model, sample_id, epoch)


def key_of(record: dict[str, Any]) -> Key:
    task, model, sample_id, epoch = record["key"]
    return task, model, sample_id, int(epoch)


@dataclass
class JournalState:
    """What an existing journal already holds (read on resume)."""

    done: set[Key] = field(default_factory=set)
    failed: set[Key] = field(default_factory=set)
    responses: dict[Key, dict[str, Any]] = field(default_factory=dict)
    judge_responses: dict[tuple[Key, str], dict[str, Any]] = field(default_factory=dict)  # (key, call tag)
    scores: dict[Key, float | None] = field(default_factory=dict)  # of the done samples
    errors: dict[Key, str] = field(default_factory=dict)  # of the failed ones: "class: message"
    spent_rub: float = 0.0
    unconfirmed_rub: float = 0.0  # worst cases of cut attempts whose cost the router never reported
    dropped_partial_line: bool = False


class Journal:
    """The single writer of one run directory: holds its lock from `create`/`open_existing` to `release`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.samples_path = directory / SAMPLES
        self._file: Any = None
        self._lock_fd: int | None = None
        self._written = 0
        self._synced = 0
        self._sync_lock = asyncio.Lock()

    @classmethod
    def create(cls, directory: Path) -> Journal:
        if directory.parent.exists() and not directory.parent.is_dir():
            raise StorageError("--out is a file, not a folder", where=str(directory.parent))
        with storage(directory):
            directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory)
        journal.lock()
        if (directory / MANIFEST).exists():  # checked under the lock: two creators cannot both pass
            journal.release()
            raise ConfigError(f"run directory {directory} already exists; use --resume or another --run-id")
        if journal.samples_path.exists() and journal.samples_path.stat().st_size:
            # a run's manifest is written before its first line, so this one was removed by hand;
            # appending here would pay again for every sample and record each twice
            journal.release()
            raise ConfigError(
                f"{SAMPLES} holds results but {MANIFEST} is missing; restore it, or use another --run-id",
                where=str(directory),
            )
        return journal

    @classmethod
    def open_existing(cls, directory: Path) -> Journal:
        if not (directory / MANIFEST).exists():
            raise ConfigError(f"no run to resume at {directory} (no {MANIFEST})")
        journal = cls(directory)
        journal.lock()
        return journal

    def lock(self) -> None:
        """Become the run's only writer, or fail at once naming the process that is."""
        path = self.directory / LOCK
        with storage(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise StorageError(f"cannot lock the run: {exc.strerror}", where=str(path)) from None
            raise RunLocked(
                f"run {self.directory.name} is being written by another evalkit process (pid {holder}); "
                "wait for it to finish or stop it, then resume",
                where=str(self.directory),
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def read_state(self) -> JournalState:
        """Read what is recorded and cut off a trailing partial line, so appends start clean."""
        state = JournalState()
        if not self.samples_path.exists():
            return state
        own = {self.directory.name, _manifest_run_id(self.directory)}
        good_bytes, partial = _scan(self.samples_path, state, own)
        if partial:
            with open(self.samples_path, "r+b") as file:
                file.truncate(good_bytes)
            state.dropped_partial_line = True
        return state

    def open(self) -> None:
        with storage(self.samples_path):
            self._file = open_append(self.samples_path)

    async def append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        """Write one record and flush it (safe from a process kill at once); with `sync`, return once it
        is fsynced too (safe from power loss; one fsync serves all concurrent appends). A later synced
        append covers every earlier line of the file."""
        self.write(record)
        if sync:
            await self.sync()

    def write(self, record: dict[str, Any]) -> None:
        """Write one record and flush it, without waiting: once this returns, the line is in the file
        (a cancellation can only come later, while `sync` waits)."""
        with storage(self.samples_path):
            self._file.write(json_line(record) + "\n")
            self._file.flush()
        self._written += 1

    async def sync(self) -> None:
        """Return once every line written so far is fsynced."""
        target = self._written
        async with self._sync_lock:
            if self._synced >= target:
                return
            covered = self._written
            with storage(self.samples_path):
                await asyncio.to_thread(os.fsync, self._file.fileno())
            self._synced = covered

    def close(self) -> None:
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            with storage(self.samples_path):
                file.flush()
                os.fsync(file.fileno())
        finally:
            with contextlib.suppress(
                OSError
            ):  # what could not be flushed is a partial line: dropped on resume
                file.close()

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with storage(self.directory / MANIFEST):
            write_json_atomic(self.directory / MANIFEST, manifest)

    def read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.directory)


def _manifest_run_id(directory: Path) -> str | None:
    try:
        return read_manifest(directory).get("run_id")
    except ConfigError:
        return None


def _scan(path: Path, state: JournalState, own_ids: set[str | None]) -> tuple[int, bool]:
    """Absorb every record; only the last line may be cut short (a crash). A bad line with records after
    it, or another run's sample, was put there by hand: refused, since truncating there would drop paid
    responses and guessing would count a wrong number. An exact duplicate line counts once."""
    good_bytes = 0
    seen: set[bytes] = set()
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            record = _parse(raw)
            if record is None:
                if file.read(1):
                    raise _hand_edited(path, number, "is not a complete record, yet records follow it")
                return good_bytes, True
            good_bytes += len(raw)
            digest = hashlib.sha256(raw).digest()
            if digest in seen:
                continue
            seen.add(digest)
            if record.get("kind") == "sample" and record.get("run_id", path.parent.name) not in own_ids:
                raise _hand_edited(path, number, f"is a sample of another run ({record.get('run_id')!r})")
            _absorb(record, state)
    return good_bytes, False


def _hand_edited(path: Path, number: int, what: str) -> ConfigError:
    return ConfigError(
        f"line {number} {what}; was the file edited? Nothing was sent: restore or remove that line, "
        "then resume (a removed response is asked, and paid, again)",
        where=str(path),
    )


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    key = record.get("key")
    valid = isinstance(key, list) and len(key) == 4 and isinstance(key[3], int)
    return record if valid else None


def _absorb(record: dict[str, Any], state: JournalState) -> None:
    key = key_of(record)
    if record.get("kind") == "response":
        state.responses[key] = record
        call = record.get("call") or {}
        if not record.get("from_cache"):
            state.spent_rub += call.get("cost_rub") or 0.0
            state.unconfirmed_rub += record.get("unconfirmed_rub") or 0.0
        return
    if record.get("kind") == "judge_response":
        state.judge_responses[(key, str(record.get("judge")))] = record
        call = record.get("call") or {}
        state.spent_rub += call.get("cost_rub") or 0.0
        state.unconfirmed_rub += record.get("unconfirmed_rub") or 0.0
        return
    if record.get("kind") == "unconfirmed":
        state.unconfirmed_rub += record.get("unconfirmed_rub") or 0.0
        return
    if record.get("kind") != "sample":  # a kind written by a later version: not ours to read
        return
    if not str(record.get("error") or "").startswith("judge_"):
        # a sample whose judge failed keeps its answer and judge replies: a retry pays neither again
        state.responses.pop(key, None)
        for tag in [t for k, t in state.judge_responses if k == key]:
            state.judge_responses.pop((key, tag))
    if record.get("error"):
        state.failed.add(key)
        state.done.discard(key)
        state.scores.pop(key, None)
        state.errors[key] = f"{record['error']}: {record.get('error_message') or ''}".rstrip(": ")
    else:
        state.done.add(key)
        state.failed.discard(key)
        state.errors.pop(key, None)
        state.scores[key] = record.get("score")


@contextlib.contextmanager
def held(directory: Path) -> Iterator[None]:
    """Hold a run's writer lock while it is read whole to write another run from it (`merge`,
    `rescore`), so a run still being written, or resumed meanwhile, is refused naming its writer. A run
    on a read-only share cannot be locked, nor written either: it is read as it is."""
    journal = Journal(directory)
    with contextlib.suppress(StorageError):
        journal.lock()
    try:
        yield
    finally:
        journal.release()


def open_append(path: Path) -> Any:
    """The journal's file, opened for appending (a seam where tests put a disk that fills up)."""
    return open(path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run


@contextlib.contextmanager
def storage(path: Path) -> Iterator[None]:
    """Turn a failed write into one line naming the file and the system's reason (disk full, ...)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        code = f"{errno.errorcode.get(exc.errno, exc.errno)}: " if exc.errno else ""
        raise StorageError(f"cannot write: {code}{reason}", where=str(path)) from exc


def iter_records(
    directory: Path, kind: str | None = "sample", *, strict: bool = False
) -> Iterator[dict[str, Any]]:
    """Every complete record of a kind (None: of every kind), in file order. A trailing partial line is
    ignored (a run being written, or killed mid-line); a bad line with records after it means the file was damaged or
    edited: it is skipped with an `EvalkitWarning` naming the file and line, or refused with `strict`
    (for a command that writes a new run from these records)."""
    path = directory / SAMPLES
    if not path.exists():
        return
    bad: list[int] = []  # unreadable lines so far; damage once a record follows them
    damaged: list[int] = []
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            record = _parse(raw)
            if record is None:
                bad.append(number)
                continue
            damaged, bad = damaged + bad, []
            if kind is None or record.get("kind") == kind:
                yield record
    if damaged:
        _damaged(path, damaged, strict)


def _damaged(path: Path, lines: list[int], strict: bool) -> None:
    shown = ", ".join(map(str, lines[:10])) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
    message = (
        f"line(s) {shown} are not complete records, yet records follow them: was the file damaged or edited?"
    )
    if strict:
        raise ConfigError(f"{message} Nothing was written", where=str(path))
    warnings.warn(EvalkitWarning(f"{path}: {message} They are left out of these results"), stacklevel=3)


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no run at {directory} (no {MANIFEST})") from None
    except ValueError as exc:
        raise ConfigError(f"corrupt manifest: {exc}", where=str(directory / MANIFEST)) from None
    if not isinstance(manifest, dict):
        raise ConfigError("corrupt manifest: not a JSON object", where=str(directory / MANIFEST))
    return manifest


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(json_document(data))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no half file behind
        raise
