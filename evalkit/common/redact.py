"""The last guard before text reaches a terminal: nothing shaped like an API key is echoed.

Options are validated without repeating suspicious values, but a key can be pasted into any field
(a run id, a task name, a route). Every error line the CLI prints passes through `redact`.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

KEY_VARIABLES = ("ROUTERAI_API_KEY", "OPENAI_API_KEY")
MASK = "***"
# sk-..., rai-..., key-..., bearer tokens, and any long run of letters AND digits (a random token);
# long enough that words, hashes of 16 hex digits and run ids with a timestamp are left alone
_SHAPED = re.compile(
    r"(?i)\b(?:sk|rai|key|api|tok)[-_][A-Za-z0-9_-]{8,}"
    r"|(?i:bearer)\s+\S+"
    r"|\b(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{32,}\b"
)


def redact(text: str, *secrets: str) -> str:
    """`text` without `secrets`, the keys in the usual variables, or anything shaped like a key."""
    known = [*secrets, *(os.environ.get(name, "") for name in KEY_VARIABLES)]
    for secret in sorted({s for s in known if s and len(s) >= 8}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _SHAPED.sub(MASK, text)


def url_without_credentials(url: str, *keys: str) -> str:
    """`url` without userinfo, query, fragment or trailing slash, and with a key (one of `keys`, or
    anything shaped like one) in its path masked: a key put anywhere in it never reaches a file."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, redact(parts.path.rstrip("/"), *keys), "", ""))
