"""Stable identities: who a scorer or reader is, and a hashable form of any value, the same in every
process (nothing hashed holds a memory address). Task fingerprints, the manifest and the simulator
all name a Python scorer by `identity`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from typing import Any


def identity(func: Any) -> str:
    """Who a Python scorer is, the same in every process: its qualified name and a hash of its source
    (or bytecode), plus the attributes of a scorer object."""
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else type(func)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(target).__name__)}"
    try:
        body = inspect.getsource(target)
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        body = code.co_code.hex() if code is not None else ""
    state = (
        ""
        if target is func
        else json.dumps(
            stable(vars(func)) if hasattr(func, "__dict__") else "", sort_keys=True, default=stable
        )
    )
    digest = hashlib.sha256(f"{body}\0{state}".encode()).hexdigest()[:16]
    return f"{name}@{digest}"


def stable(value: Any) -> Any:
    """A JSON-able form of a value without memory addresses (images and bytes become hashes)."""
    if isinstance(value, dict):
        return {str(k): stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    tobytes = getattr(value, "tobytes", None)
    if callable(tobytes):  # PIL images, numpy arrays
        return f"{type(value).__name__}:sha256:" + hashlib.sha256(tobytes()).hexdigest()
    if callable(value):
        return identity(value)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))
