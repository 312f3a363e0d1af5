"""The judge: runs the trusted test code in its own process, where the model's functions are
proxies. A call sends plain data to the untrusted process and gets plain data back (see `plain`),
so the comparisons, the asserts and the verdict all happen here, out of the program's reach.

The verdict goes to the zygote on a pipe that only this process holds: `ok`, or `fail ...`,
`crash ...`, `timeout ...` with one explaining line."""

from __future__ import annotations

import ast
import builtins
import collections
import contextlib
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from . import plain, prefetch
from .channel import Channel, Lost

_CPU_SIGNALS = {signal.SIGXCPU}
_MAX_SHOWN = 4 << 20


class ProgramLost(BaseException):
    """The untrusted process died or broke the protocol; carries the verdict line.

    Every instance is remembered: test code with a bare `except:` may swallow it, but the verdict
    is still this failure, never a pass."""

    def __init__(self, verdict: str) -> None:
        super().__init__(verdict)
        _LOSSES.append(verdict)


_LOSSES: list[str] = []


class RemoteError(Exception):
    """An exception of a type the program defined itself, raised by one of its calls."""


class Remote:
    """A reference to an object that lives in the untrusted process (a function, a class, an
    instance that is not plain data). It equals only itself: its `__eq__` is never the program's."""

    __slots__ = ("_judge", "_body", "__weakref__")

    def __init__(self, judge: Judge, body: list[Any]) -> None:
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_body", body)

    @property
    def type_name(self) -> str:
        return str(self._body[1]) if len(self._body) > 1 else "?"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._judge.call(self, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._judge.apply("getattr", self, name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._judge.apply("setattr", self, value, name=name)

    def __getitem__(self, key: Any) -> Any:
        return self._judge.apply("getitem", self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._judge.apply("setitem", self, key, value)

    def __len__(self) -> int:
        value = self._judge.apply("len", self)
        if type(value) is not int:
            raise TypeError("len() of a program object is not an int")
        return value

    # No __contains__: `x in obj` iterates and compares here, with the judge's `==`; the
    # program's own `__contains__` could answer True to every item it is asked about.

    def __bool__(self) -> bool:
        truth = self._judge.apply("bool", self)  # the object's own __bool__ or __len__, as in-process
        if type(truth) is not bool:
            raise TypeError("bool() of a program object is not a bool")
        return truth

    def __iter__(self) -> Iterator[Any]:
        value = self._judge.apply("iter", self)
        return value if isinstance(value, RemoteIterator) else iter(value)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<{self.type_name} object of the program>"


class RemoteIterator(Remote):
    """An iterator (a generator, `map`, ...) of the program: each `next` is one request."""

    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self._judge.apply("next", self)


class Judge:
    """The judge's end of the channel: proxies calls of the program's functions, answers the
    program's calls of the test's callbacks, and turns a lost program into a verdict."""

    def __init__(self, fd: int, program_pid: int | None) -> None:
        self.channel = Channel(fd, self.serve)
        self.program_pid = program_pid
        self.remotes: dict[int, Remote] = {}
        self.callbacks: dict[int, Any] = {}
        self.not_plain: list[str] = []  # types of non-plain values the program returned
        self.shown = 0  # characters of the program's output written to our own stdout
        # a batch of planned calls (see prefetch.py): what each call should look like, the
        # replies already read, and whether the program process may still send more of them
        self.planned: collections.deque[str] = collections.deque()
        self.stash: collections.deque[dict[str, Any]] = collections.deque()
        self.batch_open = False
        self.batch_name: str | None = None
        self.batch_target: Remote | None = None  # the program's function of that name, once loaded
        self.trees: tuple[ast.Module, ast.Module] | None = None  # the prelude and the test, parsed
        self.free: list[str] | None = None  # the test's free names, when our side sent them

    def start_batch(self, name: str, calls: list[Any]) -> None:
        """Send the planned calls of the program's `name` (before it has even loaded: it runs them
        right after). Raises Lost if the program process is already gone."""
        requests = [self._call_request(None, tuple(args), kwargs) for args, kwargs in calls]
        self.planned.extend(_signature(r) for r in requests)
        self.channel.send({"op": "batch", "name": name, "calls": requests})
        self.batch_open = True
        self.batch_name = name

    def _planned_reply(self, target: Remote, request: dict[str, Any]) -> dict[str, Any] | None:
        """The batch's reply for this call, if it is the next planned one."""
        if not self.planned:
            return None
        if target is not self.batch_target or self.planned[0] != _signature(request):
            self._drain_batch()  # cannot happen for a test prefetch accepted; stay correct anyway
            self.planned.clear()
            self.stash.clear()
            return None
        self.planned.popleft()
        if not self.stash and self.batch_open:
            self._read_batch_reply()
        return self.stash.popleft() if self.stash else None

    def _read_batch_reply(self) -> None:
        try:
            reply = self.channel.request(None)
        except Lost as exc:
            raise ProgramLost(self.lost_verdict("during the tests", str(exc))) from None
        self.batch_open = not reply.get("last", True)
        self.stash.append(reply)

    def _drain_batch(self) -> None:
        while self.batch_open:
            self._read_batch_reply()

    # ---- the test's side of a call -----------------------------------------------------------

    def call(self, target: Remote, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = self._call_request(target, args, kwargs)
        reply = self._planned_reply(target, request)
        if reply is None:
            reply = self._request(request)
        else:
            self._show_output(reply)
        for key, data in reply.get("after", []):
            if type(key) is int and -len(args) <= key < len(args):
                _update_in_place(args[key], self.decode(data))
            elif type(key) is str and key in kwargs:
                _update_in_place(kwargs[key], self.decode(data))
        return self._result(reply, "call")

    def _call_request(
        self, target: Remote | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "op": "call",
            "target": None if target is None else self.encode(target),
            "args": [self.encode(a) for a in args],
            "kwargs": [[str(k), self.encode(v)] for k, v in kwargs.items()],
        }

    def apply(self, op: str, target: Remote, *args: Any, name: str = "") -> Any:
        request = {"op": op, "target": self.encode(target), "args": [self.encode(a) for a in args]}
        if name:
            request["name"] = name
        return self._result(self._request(request), op)

    def lookup(self, names: list[str]) -> dict[str, Any]:
        reply = self._request({"op": "lookup", "names": names})
        found = reply.get("value")
        if type(found) is not dict:
            raise ProgramLost("fail: the program broke the protocol (a lookup reply that is not a map)")
        return {str(k): self.decode(v) for k, v in found.items() if k in names}

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        self._drain_batch()  # the program process answers nothing else before its batch is done
        try:
            reply = self.channel.request(request)
        except Lost as exc:
            raise ProgramLost(self.lost_verdict("during the tests", str(exc))) from None
        self._show_output(reply)
        return reply

    def _show_output(self, reply: dict[str, Any]) -> None:
        out = reply.get("out")
        if type(out) is not str or not out:
            return
        if sys.stdout is sys.__stdout__:
            # our output file (RLIMIT_FSIZE): beyond a cap it would fail the test with EFBIG, and
            # only its tail is kept anyway
            out = out[: max(0, _MAX_SHOWN - self.shown)]
            self.shown += len(out)
        sys.stdout.write(out)  # what the call printed: a test that captures stdout sees it all

    def _result(self, reply: dict[str, Any], op: str) -> Any:
        if "error" in reply:
            name, message = _pair(reply["error"])
            if name == "SystemExit":
                raise ProgramLost("fail: SystemExit: the program exited during the tests")
            if name in _ENDS_ITERATION and op != "next":
                # raised through the test's own loop (`all(map(lambda x: f(x) == y, ...))`) it
                # would end that loop early and skip its asserts; PEP 479 treats generators so
                raise RuntimeError(f"the program raised {name} ({message}) outside an iterator's next()")
            raise _exception(name, message)
        value = self.decode(reply.get("value"))
        if isinstance(value, Remote) and not callable_body(value):
            self.not_plain.append(value.type_name)
        return value

    # ---- the program's side: callbacks into the test ------------------------------------------

    def serve(self, request: dict[str, Any]) -> dict[str, Any]:
        target = request.get("target")
        if request["op"] != "call" or type(target) is not dict or "fn" not in target:
            return {"error": ["TypeError", "the judge only runs callbacks it passed"]}
        try:
            function = self.callbacks[int(target["fn"])]
            args = [self.decode(a) for a in request.get("args", [])]
            kwargs = {str(k): self.decode(v) for k, v in request.get("kwargs", [])}
            return {"value": self.encode(function(*args, **kwargs))}
        except (ProgramLost, Lost):
            raise
        except Exception as exc:  # noqa: BLE001 - the callback's exception goes to the caller
            return {"error": [type(exc).__name__, str(exc)[:2000]]}

    # ---- plain data ---------------------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        with plain.deep_enough():
            return plain.encode(value, self._keep)

    def decode(self, data: Any) -> Any:
        try:
            with plain.deep_enough():
                return plain.decode(data, self._resolve)
        except (plain.NotPlain, KeyError, TypeError, ValueError) as exc:
            raise ProgramLost(f"fail: the program sent data that is not plain ({exc})") from None
        except RecursionError:
            raise ProgramLost("fail: the program sent data nested too deeply") from None

    def _keep(self, value: Any) -> dict[str, Any]:
        if isinstance(value, Remote):
            return {"iter" if isinstance(value, RemoteIterator) else "ref": value._body}
        if callable(value):
            self.callbacks[id(value)] = value
            return {"fn": id(value)}
        raise TypeError(f"cannot pass a {type(value).__name__} object to the program (not plain data)")

    def _resolve(self, tag: str, body: Any) -> Any:
        if tag == "fn":
            return self.callbacks[int(body)]
        if type(body) is not list or not body or type(body[0]) is not int:
            raise plain.NotPlain(f"bad {tag} reference")
        key = body[0]
        if key not in self.remotes:
            self.remotes[key] = (RemoteIterator if tag == "iter" else Remote)(self, body)
        return self.remotes[key]

    # ---- verdict lines ------------------------------------------------------------------------

    def lost_verdict(self, when: str, why: str) -> str:
        """The verdict when the program's process stopped answering: how it ended, if it did."""
        status = _exit_status(self.program_pid)
        if status is None:
            return f"fail: the program stopped answering {when} ({why})"
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig in _CPU_SIGNALS:
                return "timeout: CPU time limit"
            return f"crash: killed by {_signal_name(sig)}"
        return f"fail: the program exited (code {os.WEXITSTATUS(status)}) {when}"


_ENDS_ITERATION = ("StopIteration", "StopAsyncIteration")


def _signature(request: dict[str, Any]) -> str:
    return json.dumps([request["args"], request["kwargs"]], sort_keys=True)


def callable_body(remote: Remote) -> bool:
    body = remote._body
    return len(body) > 2 and body[2] is True


def _update_in_place(original: Any, new: Any) -> None:
    """Apply the program's in-place changes to an argument to the test's own object."""
    kind = type(original)
    if kind is not type(new):
        return
    if kind in (list, bytearray):
        original[:] = new
    elif kind in (dict, set):
        original.clear()
        original.update(new)


def _exit_status(pid: int | None) -> int | None:
    """The program process's wait status, waiting up to 1 s for it (we are PID 1: we reap it)."""
    if pid is None:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        select.select([pidfd], [], [], 1.0)
        _, status = os.waitpid(pid, os.WNOHANG)
        return status if _ else None
    except ChildProcessError:
        return None
    finally:
        os.close(pidfd)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _pair(data: Any) -> tuple[str, str]:
    if type(data) is list and len(data) == 2:
        return str(data[0])[:200], str(data[1])[:2000]
    return "RemoteError", "?"


def _exception(name: str, message: str) -> BaseException:
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(message)
    return RemoteError(f"{name}: {message}")


def _parsed(prelude: str, test: str) -> tuple[ast.Module, ast.Module] | None:
    """The prelude and the test parsed once, for every analysis and the test's compilation."""
    try:
        return ast.parse(prelude), ast.parse(test)
    except SyntaxError:
        return None  # the same error is raised where each is compiled, and is the verdict


def prepare(judge: Judge, spec: dict[str, Any]) -> dict[str, Any]:
    """The judge's namespace before the program has loaded (the prelude run), and the batch of
    planned calls sent; raises Lost if the program process is already gone."""
    prelude, test, entry_point = spec.get("prelude", ""), spec.get("test", ""), spec.get("entry_point")
    analysis = spec.get("analysis")  # made by our side while the sample waited for a worker
    if analysis is None:
        judge.trees = _parsed(prelude, test)
    namespace: dict[str, Any] = {"__name__": "__sandbox__", "__builtins__": builtins}
    exec(compile(prelude, "prelude.py", "exec"), namespace)
    owned = {k: not isinstance(v, Remote) for k, v in namespace.items() if k != entry_point}
    if analysis is not None:
        judge.free = [str(name) for name in analysis["free"]]
        if entry_point and analysis["calls"] and prefetch.owns_all(analysis["needs"], owned):
            judge.start_batch(entry_point, [_literal(call) for call in analysis["calls"]])
    elif entry_point and judge.trees:
        calls = prefetch.plan(judge.trees[1], judge.trees[0], entry_point, owned)
        if calls:
            judge.start_batch(entry_point, calls)
    return namespace


def _literal(data: Any) -> tuple[list[Any], dict[str, Any]]:
    """A planned call's arguments, as our side encoded them (plain data, no references)."""

    def no_reference(tag: str, body: Any) -> Any:
        raise plain.NotPlain(f"a reference ({tag}) in a planned call")

    with plain.deep_enough():
        args, kwargs = plain.decode(data, no_reference)
    return list(args), dict(kwargs)


def run_tests(judge: Judge, spec: dict[str, Any], namespace: dict[str, Any], loaded: dict[str, Any]) -> str:
    """Run the test code; the verdict line."""
    if loaded.get("error") is not None:
        name, message = _pair(loaded["error"])
        return f"{'crash' if name == 'MemoryError' else 'fail'} {name}: {message}"
    prelude, test, entry_point = spec.get("prelude", ""), spec.get("test", ""), spec.get("entry_point")
    if judge.free is not None:
        free = judge.free
    else:
        free = prefetch.free_names(
            *(judge.trees or (ast.parse(prelude + "\n" + test),))
        )  # or the SyntaxError
    wanted = [n for n in free if n not in namespace or n == entry_point]
    for name in [n for n in wanted if n in sys.stdlib_module_names and n != entry_point]:
        namespace[name] = __import__(name)  # a test relying on `math` gets ours, never the program's
        wanted.remove(name)
    if entry_point and entry_point not in wanted:
        wanted.append(entry_point)
    refs, values = loaded.get("refs"), loaded.get("values")
    if type(refs) is not dict or type(values) is not list:
        raise ProgramLost("fail: the program broke the protocol (no names)")
    namespace.update({n: judge.decode(refs[n]) for n in wanted if n in refs})
    looked_up = [n for n in wanted if n in values and n not in refs]
    if looked_up:
        namespace.update(judge.lookup(looked_up))
    if entry_point and not isinstance(namespace.get(entry_point), Remote):
        namespace.pop(entry_point, None)  # the prompt's stub must not stand in for a missing function
    elif entry_point and judge.batch_name == entry_point:
        judge.batch_target = namespace[entry_point]
    try:
        exec(compile(judge.trees[1] if judge.trees else test, "test.py", "exec"), namespace)
    except AssertionError as exc:
        traceback.print_exc()
        return "fail AssertionError: " + str(exc) + _not_plain_note(judge)
    except ProgramLost:
        raise
    except MemoryError:
        return "crash MemoryError: out of memory"
    except BaseException as exc:  # noqa: BLE001 - any exception of the test run is a failure
        traceback.print_exc()
        return f"fail {type(exc).__name__}: {exc}" + _not_plain_note(judge)
    if _LOSSES:
        raise ProgramLost(_LOSSES[0])  # the tests swallowed it
    return "ok"


def _pass_on_setup_failure(setup_fds: tuple[int, int]) -> None:
    own, program = setup_fds
    failure = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(program, 4096):
            failure += chunk
    if failure:
        with contextlib.suppress(OSError):
            os.write(own, b"program process: " + failure[:4000])
        os._exit(70)


def _not_plain_note(judge: Judge) -> str:
    if not judge.not_plain:
        return ""
    kinds = ", ".join(sorted(set(judge.not_plain))[:3])
    return f" (the program returned {kinds} objects, which are not plain data and equal only themselves)"


def main(
    sock_fd: int, status_fd: int, spec: dict[str, Any], program_pid: int | None, setup_fds: tuple[int, int]
) -> None:
    """Wait for the program to load, run the tests, write the verdict to `status_fd`, exit.

    `setup_fds`: our own setup pipe and the program process's (read end). It writes there only
    if it could not contain itself, and closes it before the program runs; so when the program
    process ends before "loaded", what it wrote there is a sandbox error, passed on, not a verdict."""
    judge = Judge(sock_fd, program_pid)
    try:
        try:
            namespace = prepare(judge, spec)
            loaded = judge.channel.receive()
        except Lost as exc:
            _pass_on_setup_failure(setup_fds)
            raise ProgramLost(judge.lost_verdict("before the tests finished", str(exc))) from None
        for fd in setup_fds:
            os.close(fd)
        if loaded["op"] != "loaded":
            raise ProgramLost("fail: the program broke the protocol")
        verdict = run_tests(judge, spec, namespace, loaded)
    except ProgramLost as exc:
        verdict = str(exc.args[0]).replace(": ", " ", 1) if exc.args else "fail ?"
    except BaseException as exc:  # noqa: BLE001 - a broken prelude is still a verdict, not a hang
        traceback.print_exc()
        verdict = f"fail {type(exc).__name__}: {exc}"
    with contextlib.suppress(OSError):
        os.close(sock_fd)  # EOF: the program process ends now, while we finish (else killed with us)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os.write(status_fd, verdict.encode("utf-8", "replace")[:4096])
    os._exit(0)
