"""Plain data between the untrusted process and the judge: exact built-in types, checked deeply.

`encode` (in the untrusted process) turns a value into JSON-compatible data; values that are not
plain become references (`keep` decides how: a handle or a remote iterator). `decode` (in the
judge) accepts only that grammar and builds only built-in objects (plus the few standard
containers in `_STD`, rebuilt by the judge itself), so nothing the model defined can reach the
judge's comparisons: an object whose `__eq__` always returns True arrives as an opaque handle.
"""

from __future__ import annotations

import collections
import contextlib
import fractions
import sys
from collections.abc import Callable, Iterator
from typing import Any

MAX_DEPTH = 10_000
_SMALL_INT = 1 << 62


class NotPlain(Exception):
    """The data is not in the plain-data grammar (the other side sent something malformed)."""


@contextlib.contextmanager
def deep_enough() -> Iterator[None]:
    """Room for MAX_DEPTH levels while encoding, decoding or framing; the program's own limit is
    restored afterwards."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * MAX_DEPTH))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def encode(value: Any, keep: Callable[[Any], dict[str, Any]], depth: int = 0) -> Any:
    """JSON-compatible data for `value`; a value of any other type becomes `keep(value)`."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_SMALL_INT < value < _SMALL_INT else {"int": hex(value)}
    if kind is float:
        return {"float": value.hex()}
    if kind is complex:
        return {"complex": [value.real.hex(), value.imag.hex()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind in _SEQUENCES:
        return {_SEQUENCES[kind]: [encode(item, keep, depth + 1) for item in value]}
    if kind in _MAPPINGS:
        items = dict.items(value)
        return {_MAPPINGS[kind]: [[encode(k, keep, depth + 1), encode(v, keep, depth + 1)] for k, v in items]}
    if kind is fractions.Fraction:
        return {"fraction": [hex(value.numerator), hex(value.denominator)]}
    if kind is type and value in _TYPES_BY_OBJECT:
        return {"type": _TYPES_BY_OBJECT[value]}
    return keep(value)


def decode(data: Any, resolve: Callable[[str, Any], Any], depth: int = 0) -> Any:
    """The value for `data` built from built-in types only; references go to `resolve(tag, id)`."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(data)
    if data is None or kind is bool or kind is str or kind is int:
        return data
    if kind is not dict or len(data) != 1:
        raise NotPlain(f"unexpected {kind.__name__}")
    ((tag, body),) = data.items()
    try:
        return _decode_tagged(tag, body, resolve, depth)
    except (TypeError, ValueError, OverflowError) as exc:
        raise NotPlain(f"bad {tag!r} value: {exc}") from None


def _decode_tagged(tag: str, body: Any, resolve: Callable[[str, Any], Any], depth: int) -> Any:
    if tag == "int":
        return int(_text(body), 16)
    if tag == "float":
        return float.fromhex(_text(body))
    if tag == "complex":
        real, imag = _pair(body)
        return complex(float.fromhex(_text(real)), float.fromhex(_text(imag)))
    if tag == "bytes":
        return bytes.fromhex(_text(body))
    if tag == "fraction":
        num, den = _pair(body)
        return fractions.Fraction(int(_text(num), 16), int(_text(den), 16))
    if tag == "type":
        return _TYPES[_text(body)]
    if tag in _SEQUENCE_TYPES:
        return _SEQUENCE_TYPES[tag](decode(item, resolve, depth + 1) for item in _list(body))
    if tag in _MAPPING_TYPES:
        pairs = [_pair(pair) for pair in _list(body)]
        return _MAPPING_TYPES[tag](
            (decode(k, resolve, depth + 1), decode(v, resolve, depth + 1)) for k, v in pairs
        )
    if tag in ("ref", "iter", "fn"):
        return resolve(tag, body)
    raise NotPlain(f"unknown tag {tag!r}")


def _text(body: Any) -> str:
    if type(body) is not str:
        raise NotPlain("expected a string")
    return body


def _list(body: Any) -> list[Any]:
    if type(body) is not list:
        raise NotPlain("expected a list")
    return body


def _pair(body: Any) -> tuple[Any, Any]:
    items = _list(body)
    if len(items) != 2:
        raise NotPlain("expected a pair")
    return items[0], items[1]


_SEQUENCES: dict[type, str] = {
    list: "list",
    tuple: "tuple",
    set: "set",
    frozenset: "frozenset",
    collections.deque: "deque",
    bytearray: "bytearray",
}
_SEQUENCE_TYPES: dict[str, Callable[[Any], Any]] = {tag: kind for kind, tag in _SEQUENCES.items()}
_MAPPINGS: dict[type, str] = {
    dict: "dict",
    collections.Counter: "counter",
    collections.OrderedDict: "ordereddict",
    collections.defaultdict: "defaultdict",  # the factory is not sent; equality does not use it
}
_MAPPING_TYPES: dict[str, Callable[[Any], Any]] = {
    "dict": dict,
    "counter": lambda pairs: collections.Counter(dict(pairs)),
    "ordereddict": collections.OrderedDict,
    "defaultdict": lambda pairs: collections.defaultdict(None, pairs),
}
_TYPES: dict[str, type] = {
    kind.__name__: kind
    for kind in (int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset, type(None), object)
}
_TYPES_BY_OBJECT: dict[type, str] = {kind: name for name, kind in _TYPES.items()}
