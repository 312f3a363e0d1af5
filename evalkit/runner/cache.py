"""Response cache: request content -> the call's record, so a finished request is never paid twice.

Keyed by `Rendered.cache_key` (`evalkit/task/render.py`): the endpoint's identity (never its key), model,
messages with images replaced by their hashes, generation params and epoch. SQLite in WAL mode:
one file, safe against a killed process.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from evalkit.common.errors import StorageError
from evalkit.common.text import json_line


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, record TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the response cache: {exc} (or run with --no-cache)", where=str(path)
            ) from None

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded call, or None. A damaged database is one clear error (a hit read from it could be
        wrong); a single unreadable record is a miss, and the request is simply sent."""
        try:
            row = self._db.execute("SELECT record FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(
                f"cannot read the response cache: {exc} (delete it, or run with --no-cache)",
                where=str(self.path),
            ) from None
        try:
            record = json.loads(row[0]) if row else None
        except (ValueError, TypeError):
            return None
        return record if isinstance(record, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store a record. A cache that cannot be written (disk full) is skipped: the run's journal, not
        the cache, is what keeps a paid response from being paid again."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, record) VALUES (?, ?)",
                (key, json_line(record)),
            )

    def close(self) -> None:
        self._db.close()
