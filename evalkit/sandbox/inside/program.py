"""The untrusted side: runs the model's program, then answers the judge's requests (look up a name,
call, get or set an attribute, iterate) with plain data. It never sees the tests, the reference
solution or the task's data, and nothing it sends can do more than an honest program's values."""

from __future__ import annotations

import builtins
import collections.abc
import contextlib
import io
import sys
import traceback
import types
from typing import Any

from . import plain
from .channel import Channel

_MAX_CAPTURED = 1 << 20
_OPERATIONS = {
    "iter": iter,
    "next": next,
    "len": len,
    "bool": bool,
    "getitem": lambda obj, key: obj[key],
}


class _Program:
    def __init__(self, fd: int) -> None:
        self.channel = Channel(fd, self.serve)
        self.namespace: dict[str, Any] = {"__name__": "__sandbox__", "__builtins__": builtins}
        self.objects: dict[int, Any] = {}  # keeps every object the judge holds a reference to alive

    def load(self, source: str) -> list[str] | None:
        """Run the program's top level; the exception it raised, as [type, message], or None."""
        try:
            exec(compile(source, "program.py", "exec"), self.namespace)
        except SystemExit:
            return ["SystemExit", "the program exited before the tests finished"]
        except MemoryError:
            return ["MemoryError", "out of memory"]
        except BaseException as exc:  # noqa: BLE001 - every failure of the program is reported
            traceback.print_exc()
            return [type(exc).__name__, str(exc)]
        finally:
            _flush()
        return None

    def names(self) -> dict[str, Any]:
        """What the program defined, sent with "loaded" so that the judge needs no lookup: references
        to its functions, classes and objects, and the names of its plain values (looked up if used)."""
        refs, values = {}, []
        for name, value in list(self.namespace.items()):
            if name.startswith("__") or isinstance(value, types.ModuleType):
                continue
            if type(value) in _PLAIN_TYPES:
                values.append(name)
            else:
                refs[name] = self._keep(value)
        return {"refs": refs, "values": values}

    def run_batch(self, name: str, calls: list[dict[str, Any]]) -> None:
        """The planned calls of `name` in order, each reply sent as soon as it is known; stops
        after the first that raises (the test would stop there too)."""
        if name not in self.namespace:
            self.channel.send(
                {"op": "reply", "error": ["NameError", f"name {name!r} is not defined"], "last": True}
            )
            return
        target = self._keep(self.namespace[name])
        for index, call in enumerate(calls):
            reply = self.serve({**call, "target": target})
            last = index == len(calls) - 1 or "error" in reply
            self.channel.send({"op": "reply", **reply, "last": last})
            if last:
                return

    def serve(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "lookup":
            found = {n: self.encode(self.namespace[n]) for n in request["names"] if n in self.namespace}
            return {"value": found}
        capture = io.StringIO()
        try:
            with contextlib.redirect_stdout(capture):
                reply = self._apply(op, request)
        except SystemExit:
            reply = {"error": ["SystemExit", "the program exited during the tests"]}
        except BaseException as exc:  # noqa: BLE001 - the judge raises it in the test
            reply = {"error": [type(exc).__name__, _message(exc)]}
        reply["out"] = capture.getvalue()[-_MAX_CAPTURED:]
        return reply

    def _apply(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        target = self.decode(request["target"])
        args = [self.decode(a) for a in request.get("args", [])]
        if op == "call":
            kwargs = {str(k): self.decode(v) for k, v in request.get("kwargs", [])}
            value = target(*args, **kwargs)
            given = [*enumerate(args), *kwargs.items()]  # positions, then keyword names
            after = [[key, self.encode(arg)] for key, arg in given if type(arg) in _MUTABLE]
            return {"value": self.encode(value), "after": after}
        if op == "getattr":
            return {"value": self.encode(getattr(target, str(request["name"])))}
        if op == "setattr":
            setattr(target, str(request["name"]), args[0])
            return {"value": None}
        if op == "setitem":
            target[args[0]] = args[1]
            return {"value": None}
        return {"value": self.encode(_OPERATIONS[op](target, *args))}

    def encode(self, value: Any) -> Any:
        with plain.deep_enough():
            return plain.encode(value, self._keep)

    def decode(self, data: Any) -> Any:
        with plain.deep_enough():
            return plain.decode(data, self._resolve)

    def _keep(self, value: Any) -> dict[str, Any]:
        self.objects[id(value)] = value
        kind = type(value)
        name = f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', '?')}"[:200]
        if isinstance(value, collections.abc.Iterator):
            return {"iter": [id(value), name]}
        return {"ref": [id(value), name, callable(value)]}

    def _resolve(self, tag: str, body: Any) -> Any:
        if tag == "fn":
            return _Callback(self.channel, body, self)
        return self.objects[int(body[0])]


class _Callback:
    """A callable the test passed as an argument: calling it calls back into the judge."""

    def __init__(self, channel: Channel, ident: Any, program: _Program) -> None:
        self._channel, self._ident, self._program = channel, ident, program

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = {
            "op": "call",
            "target": {"fn": self._ident},
            "args": [self._program.encode(a) for a in args],
            "kwargs": [[k, self._program.encode(v)] for k, v in kwargs.items()],
        }
        reply = self._channel.request(request)
        if "error" in reply:
            raise _exception(*reply["error"])
        return self._program.decode(reply["value"])


_MUTABLE = (list, dict, set, bytearray)
_PLAIN_TYPES = {type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset}


def _exception(name: Any, message: Any) -> BaseException:
    kind = getattr(builtins, str(name), None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(str(message))
    return RuntimeError(f"{name}: {message}")


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[:2000]
    except BaseException:  # noqa: BLE001 - the program's own __str__ may raise
        return "?"


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def main(fd: int, source: str) -> None:
    """Load the program, tell the judge how it went, then serve until the judge is done."""
    program = _Program(fd)
    error = program.load(source)
    program.channel.send({"op": "loaded", "error": error, **program.names()})
    while True:
        request = program.channel.receive()
        if request["op"] == "batch":
            program.run_batch(str(request["name"]), request["calls"])
        else:
            program.channel.send({"op": "reply", **program.serve(request)})
