"""Shards: a deterministic partition of a run's samples, so N machines can share one run.

    evalkit run TASK -m MODEL --shard 2/4 --run-id exp-2      # one command per shard, anywhere

Shard `I/N` (1 ≤ I ≤ N, as "shard 2 of 4") takes the units whose identity hashes to I: SHA-256 of
(task name, model, sample id, epoch), read as an integer, modulo N. The identity is what the journal
keys a sample by; it does not depend on the task's fingerprint, the sample order, the machine or the
Python version, so every shard agrees on the partition without talking to the others, and a unit
falls in exactly one shard.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from evalkit.common.errors import ConfigError
from evalkit.runner.journal import Key

_SHARD = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def holds(self, key: Key) -> bool:
        return shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`"I/N"` → Shard; anything else is one clear error."""
    match = _SHARD.fullmatch(str(text))
    if match is None:
        raise ConfigError(f"shard {str(text)[:40]!r}: expected I/N, e.g. 2/4 (shard 2 of 4)", option="shard")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(f"shard {index}/{count}: I must be between 1 and N", option="shard")
    return Shard(index, count)


def shard_of(key: Key, count: int) -> int:
    """The shard (1..count) that runs the unit with this identity."""
    task, model, sample_id, epoch = key
    text = "\0".join((task, model, str(sample_id), str(int(epoch))))
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
