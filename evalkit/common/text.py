"""Any text a model returns, kept losslessly and handed on safely.

A router may send a lone surrogate (`"\\ud800"`) or split one emoji's surrogate pair across two stream
chunks as JSON escapes. Python keeps such strings, but they cannot be encoded as UTF-8, so every
write of them (journal, cache, report, a sandboxed program) would raise. Three rules keep paid work
safe:
- pairs split across chunks are joined back into the character they encode (`join_pairs`);
- a JSON line holding a lone surrogate is written with `\\uXXXX` escapes, which read back to the very
  same string (`json_line`);
- code that needs real UTF-8 (scorers, the sandbox, HTML) gets lone surrogates as U+FFFD (`encodable`).
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def join_pairs(text: str) -> str:
    """Join high+low surrogate code points into the character they encode; lone ones are kept."""
    if not has_surrogates(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def encodable(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    if not has_surrogates(text):
        return text
    return _SURROGATE.sub(REPLACEMENT, join_pairs(text))


def json_line(record: Any) -> str:
    """One compact JSON line that encodes as UTF-8 and reads back to an equal value (a surrogate pair
    reads back as the one character it encodes, as `join_pairs` gives).

    Readable non-ASCII text is kept as is; only a record holding a surrogate is escaped."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    if has_surrogates(line):
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)
    return line


def json_document(data: Any) -> str:
    """Indented JSON for files people read (manifests), under the same rule as `json_line`."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if has_surrogates(text):
        text = json.dumps(data, ensure_ascii=True, indent=2, default=str)
    return text
