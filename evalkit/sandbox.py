"""Run untrusted (model-written) Python programs in separate, limited processes with no network.

Every program gets a fresh process, never ours and never one that ran another program, and a fresh
temporary directory that is removed afterwards. What contains it (each layer is probed once; a
missing one is a loud warning, see `sandbox_capabilities()`):

- network: a new network namespace (`unshare --net`), which has no interfaces up, not even loopback;
- process tree: the program is PID 1 of its own PID namespace, so when it exits or is killed the
  kernel kills every process it left behind;
- identity: when we are root, the program runs as its own unprivileged uid with no new privileges,
  so it can write neither the project nor the files of another run, cannot signal or trace any
  other process, and the kernel enforces RLIMIT_NPROC (it does not for root);
- resources: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_NOFILE, no core
  dumps; plus, where cgroup v1 is writable, a memory cgroup bounding the whole process tree;
- time: a wall-clock timeout, after which the program's PID namespace (or process group, cgroup and
  uid) is killed (also after a normal exit, so no background child survives);
- input: `python -I -S` (no site, no user paths, no PYTHON* variables), a scrubbed environment
  (PATH, LANG, HOME, TMPDIR only: no API keys), stdin from /dev/null, no inherited descriptors.

Two launchers, same layers. `zygote` (the default as root): per worker, one trusted interpreter
started once in the network namespace, which never runs untrusted code itself; for each program it
forks a child into a new PID namespace, and the child (PID 1 there) drops to the run's uid, sets
its limits and runs the program. `exec` (the fallback): a fresh `unshare --net --pid` +
`setpriv` + `python` per program.

A run passes only when the whole program ran and the bootstrap reported success on a private pipe
with a per-run nonce, so `sys.exit(0)` or `os._exit(0)` before the tests is a failure, not a pass.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import queue
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from evalkit.errors import ConfigError, EvalkitError

Status = Literal["pass", "fail", "timeout", "crash"]
Launcher = Literal["zygote", "exec"]

_UID_BASE = 10_000_000
_UIDS_PER_PROCESS = 1024
_RUN_IDS = itertools.count()  # only a source of distinct per-run uids; never read back
_CGROUP_ROOT = Path("/sys/fs/cgroup")

# Runs inside the child, before the program: read the nonce, set limits, run, report on the status fd.
_BOOTSTRAP = r"""
import os, sys, resource
def _evalkit_main():
    nonce = sys.stdin.readline().strip()
    me = os.getpid()
    null = os.open(os.devnull, os.O_RDONLY); os.dup2(null, 0); os.close(null)
    status_fd, mem, cpu, nproc, fsize = (int(a) for a in sys.argv[1:6])
    path = sys.argv[6]
    for name, value in (("RLIMIT_AS", mem), ("RLIMIT_CPU", cpu), ("RLIMIT_NPROC", nproc),
                        ("RLIMIT_FSIZE", fsize), ("RLIMIT_NOFILE", 256), ("RLIMIT_CORE", 0)):
        if value >= 0:
            hard = value + 1 if name == "RLIMIT_CPU" else value
            try:
                resource.setrlimit(getattr(resource, name), (value, hard))
            except (ValueError, OSError):
                pass
    with open(path, encoding="utf-8") as f:
        source = f.read()
    def report(text):
        if os.getpid() == me:  # not from a child the program forked
            os.write(status_fd, (nonce + " " + text).encode("utf-8", "replace")[:4096])
    namespace = {"__name__": "__sandbox__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except SystemExit as exc:
        if exc.code in (0, None):
            report("fail SystemExit: the program exited before the tests finished")
            os._exit(1)
        report("fail SystemExit: " + str(exc.code))
        os._exit(1)
    except MemoryError:
        report("crash MemoryError: out of memory")
        os._exit(1)
    except BaseException as exc:
        import traceback
        traceback.print_exc()
        report("fail " + type(exc).__name__ + ": " + str(exc))
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    report("ok")
    os._exit(0)
_evalkit_main()
"""

# The zygote: started once per worker inside the network namespace, as root (it must give each
# program its own uid). It never runs untrusted code: per request it forks a child into a new PID
# namespace, and only that child, after dropping to the run's uid, runs the program.
# Protocol: one JSON request line on stdin, one JSON reply line on stdout; EOF on stdin ends it.
_ZYGOTE = r"""
import ctypes, fcntl, json, math, os, resource, select, signal, sys, time

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
LIMITS = (("RLIMIT_AS", "mem"), ("RLIMIT_CPU", "cpu"), ("RLIMIT_NPROC", "nproc"),
          ("RLIMIT_FSIZE", "fsize"), ("RLIMIT_NOFILE", "nofile"), ("RLIMIT_CORE", "core"))


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, what + ": " + os.strerror(err))


def send(message):
    os.write(1, (json.dumps(message) + "\n").encode())


def serve():
    for name in sys.argv[1:]:  # warm trusted imports; every child gets a copy-on-write copy
        try:
            __import__(name)
        except ImportError:
            pass
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    import gc
    gc.freeze()  # children's collections skip our objects, so fewer copy-on-write page copies
    send({"ready": os.getpid()})
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return
        try:
            reply = run(json.loads(line), own_pidns)
        except OSError as exc:
            reply = {"error": str(exc)}
        send(reply)


def run(req, own_pidns):
    read_fd, write_fd = os.pipe()
    setup_read, setup_write = os.pipe()  # closed by the child before the program: it cannot forge
    started = time.monotonic()
    check(LIBC.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    try:
        pid = os.fork()
    finally:
        if os.getpid() != 1:  # back to our own namespace for the next unshare
            check(LIBC.setns(own_pidns, CLONE_NEWPID), "setns")
    if pid == 0:
        child(req, (read_fd, setup_read), write_fd, setup_write)
    os.close(write_fd)
    os.close(setup_write)
    timed_out = not wait(pid, req["timeout"])
    if timed_out:
        os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: the kernel kills the whole tree
    _, status = os.waitpid(pid, 0)  # returns once every process of that namespace is gone
    duration = time.monotonic() - started
    return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
            "report": drain(read_fd), "setup_error": drain(setup_read), "duration": duration}


def wait(pid, timeout):
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(0, select.POLLIN)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(max(1, math.ceil(left * 1000))):
                if fd == pidfd:
                    return True
                os.kill(pid, signal.SIGKILL)  # our parent is gone: nobody reads the result
                os.waitpid(pid, 0)
                os._exit(0)
        return False
    finally:
        os.close(pidfd)


def drain(fd):
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk if len(data) < 8192 else b""
    except OSError:
        pass
    os.close(fd)
    return data[:8192].decode("utf-8", "replace")


def child(req, parent_ends, status_fd, setup_fd):
    try:
        for fd in parent_ends:
            os.close(fd)
        contain(req, status_fd, setup_fd)
    except BaseException as exc:
        message = (type(exc).__name__ + ": " + str(exc)).encode("utf-8", "replace")[:4096]
        for fd in (setup_fd, 4):  # before or after it was moved to 4
            try:
                os.write(fd, message)
                break
            except OSError:
                pass
        os._exit(70)
    try:
        execute(req["nonce"])
    finally:
        os._exit(1)


def contain(req, status_fd, setup_fd):
    os.setsid()
    for group in req["cgroups"]:  # "0": the writer itself, before it can run anything
        with open(group + "/cgroup.procs", "w") as f:
            f.write("0")
    workdir, uid = req["dir"], req["uid"]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    sources = (os.open(os.devnull, os.O_RDONLY), os.open(workdir + "/.stdout", flags, 0o600),
               os.open(workdir + "/.stderr", flags, 0o600), status_fd, setup_fd)
    for target, fd in enumerate([fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in sources]):
        os.dup2(fd, target)  # via fds >= 100, so no source is clobbered before it is used
    os.closerange(5, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv[:] = ["program.py"]
    for name, key in LIMITS:
        value = req["limits"][key]
        if value >= 0:
            hard = value + 1 if name == "RLIMIT_CPU" else value
            resource.setrlimit(getattr(resource, name), (value, hard))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    check(LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "PR_SET_DUMPABLE")  # /proc/self as after an exec
    check(LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")  # after setuid, which clears it
    os.close(4)  # the setup pipe: from here on, only the program runs


def execute(nonce):
    def report(text):
        if os.getpid() == 1:  # not from a child the program forked
            try:
                os.write(3, (nonce + " " + text).encode("utf-8", "replace")[:4096])
            except OSError:
                pass

    def finish(code, text):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        report(text)
        os._exit(code)

    try:
        with open("program.py", encoding="utf-8") as f:
            source = f.read()
        namespace = {"__name__": "__sandbox__", "__builtins__": __builtins__}
        exec(compile(source, "program.py", "exec"), namespace)
    except SystemExit as exc:
        if exc.code in (0, None):
            finish(1, "fail SystemExit: the program exited before the tests finished")
        finish(1, "fail SystemExit: " + str(exc.code))
    except MemoryError:
        finish(1, "crash MemoryError: out of memory")
    except BaseException as exc:
        import traceback
        traceback.print_exc()
        finish(1, "fail " + type(exc).__name__ + ": " + str(exc))
    finish(0, "ok")


serve()
"""


class SandboxError(EvalkitError):
    """The sandbox itself could not run a program (not the program's fault): never score it."""


@dataclass(frozen=True)
class Limits:
    """Per-program limits. `timeout_s` is wall-clock from launch; CPU time is capped at the next second."""

    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 16
    max_output_bytes: int = 2048

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.memory_mb >= 64 and self.max_processes >= 1):
            raise ConfigError(
                "sandbox limits need timeout_s > 0, memory_mb >= 64 and max_processes >= 1",
                where="sandbox limits",
            )


@dataclass(frozen=True)
class RunResult:
    """What one program did. `detail` is one line: the exception, the signal or the limit hit."""

    status: Status
    detail: str = ""
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class _Plan:
    """How programs are launched on this machine (the result of the probe)."""

    python: str
    python_version: str
    network: str
    user: str
    nproc: str
    memory: str
    cgroups: dict[str, Path] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def launcher(self) -> Launcher:
        """The zygote needs root (one uid per program) and network namespaces; else exec."""
        return "zygote" if self.network == "netns" and self.user == "uid-drop" else "exec"


def sandbox_capabilities() -> dict[str, Any]:
    """What the sandbox can enforce here, for the run manifest, e.g.
    {"network_isolation": "netns", "user": "uid-drop", "nproc_limit": "rlimit", ...,
    "launcher": "zygote", "warnings": []}. Every missing layer has a warning."""
    plan = _probe()
    return {
        "network_isolation": plan.network,
        "user": plan.user,
        "nproc_limit": plan.nproc,
        "memory_limit": plan.memory,
        "launcher": plan.launcher,
        "python": plan.python,
        "python_version": plan.python_version,
        "warnings": list(plan.warnings),
    }


class Sandbox:
    """A bounded pool that runs programs in isolated processes; thread-safe.

        sandbox = Sandbox(Limits(timeout_s=3))
        result = sandbox.run("assert 1 + 1 == 2")      # RunResult(status="pass", ...)
        results = sandbox.run_many(programs)            # in parallel, in order

    At most `workers` (default: the number of cores) programs run at once, however many threads call
    `run`. With the zygote launcher each worker keeps one warm trusted interpreter (started on first
    use, restarted if it dies); `close()` (or leaving a `with` block, or garbage collection) stops them.
    `launcher="exec"` forces a fresh interpreter per program.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        workers: int | None = None,
        launcher: Literal["auto", "zygote", "exec"] = "auto",
    ) -> None:
        self.limits = limits or Limits()
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._plan = _probe()
        if launcher == "zygote" and self._plan.launcher != "zygote":
            raise ConfigError(
                "the zygote launcher needs root and network namespaces", where="sandbox launcher"
            )
        self.launcher: Launcher = self._plan.launcher if launcher == "auto" else launcher
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)
        self._zygotes: list[_Zygote | None] = [None] * self.workers
        self._finalizer = weakref.finalize(self, _stop_zygotes, self._zygotes)
        for text in self._plan.warnings:
            warnings.warn(f"evalkit sandbox: {text}", RuntimeWarning, stacklevel=2)

    def capabilities(self) -> dict[str, Any]:
        return {**sandbox_capabilities(), "launcher": self.launcher}

    def run(self, code: str) -> RunResult:
        """Run one program to completion (or its limits) and return what happened."""
        slot = self._slots.get()
        try:
            if self.launcher == "exec":
                return _run_one(code, self.limits, self._plan)
            return self._run_in_zygote(slot, code)
        finally:
            self._slots.put(slot)

    def run_many(self, programs: Iterable[str]) -> list[RunResult]:
        """Run programs in parallel on `workers` processes; results in the order given."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, programs))

    def close(self) -> None:
        """Stop the workers' zygotes (a later `run` starts new ones)."""
        _stop_zygotes(self._zygotes)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run_in_zygote(self, slot: int, code: str) -> RunResult:
        """One retry if the slot's zygote died under the run (not the program's doing: it cannot
        signal the zygote); a second loss is a SandboxError."""
        for attempt in (1, 2):
            zygote = self._zygotes[slot]
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.stop()
                zygote = self._zygotes[slot] = _Zygote(self._plan)
            try:
                return _run_zygote_one(zygote, code, self.limits, self._plan)
            except _ZygoteLost as exc:
                zygote.stop()
                self._zygotes[slot] = None
                if attempt == 2:
                    raise SandboxError(f"the sandbox worker died twice: {exc}", where="sandbox") from None
        raise AssertionError("unreachable")


# ---- zygote launcher ------------------------------------------------------------------------------

# Trusted, already-imported modules every child gets for free (copy-on-write): most programs
# import some of them, and a fresh import of `typing` or `re` costs several ms.
_WARM_MODULES = (
    "typing", "re", "math", "collections", "itertools", "functools", "heapq", "bisect", "string",
    "hashlib", "random", "fractions", "statistics", "copy", "decimal", "operator", "traceback",
)  # fmt: skip
_ZYGOTE_START_S = 30.0
_REPLY_GRACE_S = 30.0  # past the program's own timeout, the zygote is stuck: replace it


class _ZygoteLost(Exception):
    """The zygote died or stopped answering."""


class _Zygote:
    """One warm trusted interpreter in a network namespace that forks a fresh child per program."""

    def __init__(self, plan: _Plan) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the zygote; its stderr
        self._buffer = b""
        argv = ["unshare", "--net", "--", plan.python, "-I", "-S", "-B", "-c", _ZYGOTE, *_WARM_MODULES]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd="/",
                env=_environment(Path("/")),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self._log.close()
            raise SandboxError(f"cannot start the sandbox zygote: {exc}", where="sandbox") from None
        try:
            ready = self._reply(_ZYGOTE_START_S)
        except _ZygoteLost as exc:
            self.stop()
            raise SandboxError(f"the sandbox zygote did not start: {exc}", where="sandbox") from None
        if ready.get("ready") != self.proc.pid:
            self.stop()
            raise SandboxError(f"the sandbox zygote answered {ready!r}", where="sandbox")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply (at most `timeout_s` + a grace period)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise _ZygoteLost(f"cannot send to the zygote: {exc}") from None
        reply = self._reply(timeout_s + _REPLY_GRACE_S)
        if "error" in reply:
            raise SandboxError(f"the sandbox could not start the program: {reply['error']}", where="sandbox")
        return reply

    def _reply(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        poller = select.poll()  # not select(): our fds may be numbered past 1024
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(math.ceil(left * 1000)):
                raise _ZygoteLost(f"no answer within {timeout_s:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise _ZygoteLost(f"the zygote exited ({self.proc.wait()}): {self._stderr()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _stderr(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._log.seek(0)
            return _one_line(self._log.read().decode("utf-8", "replace")[-2000:])
        return ""

    def stop(self) -> None:
        """End the zygote: EOF first (it kills a running child and exits), then SIGKILL."""
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self._log.close()


def _stop_zygotes(zygotes: list[_Zygote | None]) -> None:
    for index, zygote in enumerate(zygotes):
        if zygote is not None:
            zygote.stop()
            zygotes[index] = None


def _run_zygote_one(zygote: _Zygote, code: str, limits: Limits, plan: _Plan) -> RunResult:
    uid = _run_uid()
    workdir = Path(tempfile.mkdtemp(prefix="evalkit-sbx-"))
    dir_fd = _open_dir(workdir)
    cgroups: list[Path] = []
    try:
        (workdir / "program.py").write_text(code, encoding="utf-8")
        os.chown(workdir, uid, uid)
        cgroups.extend(_make_cgroups(uid, limits, plan))
        nonce = secrets.token_hex(16)
        request = {
            "dir": str(workdir),
            "uid": uid,
            "nonce": nonce,
            "timeout": limits.timeout_s,
            "env": _environment(workdir),
            "limits": _rlimits(limits, plan),
            "cgroups": [str(group) for group in cgroups],
        }
        try:
            reply = zygote.run(request, limits.timeout_s)
        except _ZygoteLost:
            _kill_leftovers(uid, cgroups)  # its child died with it (PDEATHSIG); make sure
            raise
        if reply["setup_error"]:
            raise SandboxError(
                f"the sandbox could not contain the program: {_one_line(reply['setup_error'])}",
                where="sandbox",
            )
        report = _check_nonce(reply["report"], nonce)
        status, detail = _classify(
            reply["returncode"], report, reply["timed_out"], _memory_cgroup_hit(cgroups), limits
        )
        stdout = _tail(dir_fd, ".stdout", limits.max_output_bytes)
        stderr = _tail(dir_fd, ".stderr", limits.max_output_bytes)
        return RunResult(status, detail, reply["returncode"], stdout, stderr, round(reply["duration"], 4))
    finally:
        os.close(dir_fd)
        for group in cgroups:
            _remove_cgroup(group)
        _remove_workdir(workdir)


def _kill_leftovers(uid: int, cgroups: list[Path]) -> None:
    """After a lost zygote: kill whatever still runs as the run's uid or in its cgroups."""
    for _ in range(200):
        pids = set(_cgroup_pids(cgroups)) | set(_pids_of_uid(uid))
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


# ---- exec launcher --------------------------------------------------------------------------------


def _run_one(code: str, limits: Limits, plan: _Plan) -> RunResult:
    uid = _run_uid()
    workdir = Path(tempfile.mkdtemp(prefix="evalkit-sbx-"))
    dir_fd = _open_dir(workdir)
    cgroups: list[Path] = []
    try:
        program = workdir / "program.py"
        program.write_text(code, encoding="utf-8")
        if plan.user == "uid-drop":
            os.chown(workdir, uid, uid)
        read_fd, write_fd = os.pipe()
        try:
            return _launch(code, program, workdir, dir_fd, uid, read_fd, write_fd, limits, plan, cgroups)
        finally:
            with contextlib.suppress(OSError):
                os.close(read_fd)
    finally:
        os.close(dir_fd)
        for group in cgroups:
            _remove_cgroup(group)
        _remove_workdir(workdir)


def _launch(
    code: str,
    program: Path,
    workdir: Path,
    dir_fd: int,
    uid: int,
    read_fd: int,
    write_fd: int,
    limits: Limits,
    plan: _Plan,
    cgroups: list[Path],
) -> RunResult:
    nonce = secrets.token_hex(16)
    argv = _argv(plan, uid, write_fd, limits, program)
    out_path, err_path = workdir / ".stdout", workdir / ".stderr"
    started = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=workdir,
                env=_environment(workdir),
                pass_fds=(write_fd,),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            os.close(write_fd)
            raise SandboxError(f"cannot start the sandboxed interpreter: {exc}", where="sandbox") from None
    os.close(write_fd)
    timed_out = False
    init_fd = None
    try:
        init_fd = _init_pidfd(proc.pid) if plan.network == "netns" else None
        cgroups.extend(_join_cgroups(proc.pid, uid, limits, plan))
        _send_nonce(proc, nonce)
        timed_out = not _wait(proc, limits.timeout_s)
    finally:
        scan_uid = plan.user == "uid-drop" and init_fd is None  # a pid namespace dies with its init
        _kill_everything(proc, uid if scan_uid else None, cgroups)
        _await_exit(init_fd)
    duration = time.monotonic() - started
    report = _read_report(read_fd, nonce)
    stdout = _tail(dir_fd, ".stdout", limits.max_output_bytes)
    stderr = _tail(dir_fd, ".stderr", limits.max_output_bytes)
    status, detail = _classify(proc.returncode, report, timed_out, _memory_cgroup_hit(cgroups), limits)
    return RunResult(status, detail, proc.returncode, stdout, stderr, round(duration, 4))


def _rlimits(limits: Limits, plan: _Plan) -> dict[str, int]:
    """The program's rlimits (-1: not set). RLIMIT_NPROC counts per uid, so only a per-run uid."""
    return {
        "mem": limits.memory_mb * 1024 * 1024,
        "cpu": max(1, math.ceil(limits.timeout_s)),
        "nproc": limits.max_processes if plan.user == "uid-drop" else -1,
        "fsize": limits.max_file_mb * 1024 * 1024,
        "nofile": 256,
        "core": 0,
    }


def _argv(plan: _Plan, uid: int, status_fd: int, limits: Limits, program: Path) -> list[str]:
    rlimits = _rlimits(limits, plan)
    python = [plan.python, "-I", "-S", "-B", "-c", _BOOTSTRAP, str(status_fd)]
    python += [str(rlimits[key]) for key in ("mem", "cpu", "nproc", "fsize")] + [str(program)]
    prefix: list[str] = []
    if plan.network == "netns":
        prefix += ["unshare", "--net", "--pid", "--fork", "--kill-child", "--"]
    if plan.user == "uid-drop":
        prefix += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]
    return prefix + python


def _environment(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
    }


def _run_uid() -> int:
    """A uid no other live run of this machine uses (per process and per run)."""
    return _UID_BASE + (os.getpid() % 1_000_000) * _UIDS_PER_PROCESS + next(_RUN_IDS) % _UIDS_PER_PROCESS


def _send_nonce(proc: subprocess.Popen[bytes], nonce: str) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError):  # the child may already be gone; its exit status tells why
        proc.stdin.write(nonce.encode() + b"\n")
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _read_report(read_fd: int, nonce: str) -> str | None:
    os.set_blocking(read_fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(read_fd, 8192):
            chunks.append(chunk)
    return _check_nonce(b"".join(chunks).decode("utf-8", "replace"), nonce)


def _check_nonce(text: str, nonce: str) -> str | None:
    """The report without its nonce, or None when it does not start with this run's nonce."""
    prefix = nonce + " "
    return text[len(prefix) :] if text.startswith(prefix) else None


def _classify(
    returncode: int | None, report: str | None, timed_out: bool, memory_hit: bool, limits: Limits
) -> tuple[Status, str]:
    if timed_out:
        return "timeout", f"timeout: still running after {limits.timeout_s:g} s"
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "timeout", f"timeout: CPU time limit ({max(1, math.ceil(limits.timeout_s))} s)"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGKILL and memory_hit:
            return "crash", "crash: out of memory (killed by SIGKILL)"
        return "crash", f"crash: killed by {name}"
    if report == "ok" and returncode == 0:
        return "pass", "pass"
    if report is not None and report.startswith(("fail ", "crash ")):
        kind, _, message = report.partition(" ")
        return ("crash" if kind == "crash" else "fail"), f"{kind}: {_one_line(message)}"
    return "fail", f"fail: the program exited (code {returncode}) before the tests finished"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _remove_workdir(workdir: Path) -> None:
    """Remove the run's directory; a symlink the program put in its place is removed, not followed."""
    if workdir.is_symlink():
        with contextlib.suppress(OSError):
            workdir.unlink()
        return
    shutil.rmtree(workdir, ignore_errors=True)


def _open_dir(workdir: Path) -> int:
    """A descriptor of the run's directory, taken before the program runs: the program owns the
    directory and may rename it or put symlinks in it, so its outputs are read only through this."""
    return os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _tail(dir_fd: int, name: str, limit: int) -> str:
    """The last `limit` bytes of a captured stream (tracebacks end with the useful line). Only a
    regular file, never through a symlink: we are root and the program chose what is there."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return ""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ""
        data = os.pread(fd, limit, max(0, info.st_size - limit))
    except OSError:
        return ""
    finally:
        os.close(fd)
    text = data.decode("utf-8", "replace")
    return ("…" + text) if info.st_size > limit else text


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the exit (True) or the timeout (False); a pidfd wakes us at once, where
    Popen.wait(timeout) would poll with sleeps of up to 50 ms."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(1, int(timeout * 1000))):
            return False
        proc.wait()
        return True
    finally:
        os.close(pidfd)


# ---- cleanup -------------------------------------------------------------------------------------


def _kill_everything(proc: subprocess.Popen[bytes], uid: int | None, cgroups: list[Path]) -> None:
    """Kill the run's process group, cgroup members and uid's processes until none is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if uid is None:
        proc.wait()  # our direct child; with a pid namespace nothing else of the run can outlive it
    for _ in range(200):
        pids = set(_cgroup_pids(cgroups))
        if uid is not None:
            pids |= set(_pids_of_uid(uid))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        if not pids and proc.returncode is not None:
            return
        time.sleep(0.002)


def _init_pidfd(pid: int) -> int | None:
    """A pidfd of the PID namespace's init that `unshare --fork` (our child `pid`) starts."""
    with contextlib.suppress(OSError, AttributeError):
        for child in _children(pid):
            return os.pidfd_open(child)
    return None


def _await_exit(pidfd: int | None) -> None:
    """Wait until the namespace's init has exited: the kernel signals its pidfd only after every
    other process of that namespace is gone (`unshare` itself may be reaped before that)."""
    if pidfd is None:
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(10_000)
    finally:
        os.close(pidfd)


def _pids_of_uid(uid: int) -> Iterator[int]:
    """Live processes whose real uid is `uid` (from /proc; zombies are not counted)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith("Z"):
            continue
        uids = fields.get("Uid", "").split()
        if uids and uids[0] == str(uid):
            yield int(entry.name)


# ---- cgroups (v1; optional) -----------------------------------------------------------------------


def _own_cgroup(controller: str) -> Path | None:
    """Our own cgroup directory for a v1 controller, if it is mounted and writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            directory = _CGROUP_ROOT / controller / path.lstrip("/")
            if directory.is_dir() and os.access(directory, os.W_OK):
                return directory
    return None


def _make_cgroups(uid: int, limits: Limits, plan: _Plan) -> list[Path]:
    """The run's own cgroups (one per usable controller), with its limits set and no member yet."""
    created = []
    settings = {
        "pids": {"pids.max": str(limits.max_processes + 2)},
        "memory": {"memory.limit_in_bytes": str(limits.memory_mb * 1024 * 1024)},
    }
    for controller, parent in plan.cgroups.items():
        group = parent / f"evalkit-{os.getpid()}-{uid}"
        try:
            group.mkdir()
            created.append(group)
            for name, value in settings[controller].items():
                (group / name).write_text(value)
        except OSError as exc:
            for made in created:
                _remove_cgroup(made)
            raise SandboxError(
                f"cannot set up the {controller} cgroup {group}: {exc}", where="sandbox"
            ) from None
    return created


def _join_cgroups(pid: int, uid: int, limits: Limits, plan: _Plan) -> list[Path]:
    created = _make_cgroups(uid, limits, plan)
    with_child = plan.network == "netns"
    for group in created:
        try:
            for member in _children(pid) if with_child else [pid]:
                (group / "cgroup.procs").write_text(str(member))
        except OSError as exc:
            raise SandboxError(f"cannot join the cgroup {group}: {exc}", where="sandbox") from None
    return created


def _children(pid: int) -> list[int]:
    """The interpreter that `unshare --fork` starts; it waits for the nonce, so it cannot have forked yet."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    for _ in range(400):
        try:
            found = [int(p) for p in path.read_text().split()]
        except (OSError, ValueError):
            return []
        if found:
            return found
        time.sleep(0.0005)
    return []


def _cgroup_pids(cgroups: list[Path]) -> Iterator[int]:
    for group in cgroups:
        with contextlib.suppress(OSError):
            yield from (int(p) for p in (group / "cgroup.procs").read_text().split())


def _memory_cgroup_hit(cgroups: list[Path]) -> bool:
    for group in cgroups:
        failcnt = group / "memory.failcnt"
        with contextlib.suppress(OSError, ValueError):
            if failcnt.exists() and int(failcnt.read_text()) > 0:
                return True
    return False


def _remove_cgroup(group: Path) -> None:
    for _ in range(100):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.002)


# ---- probe ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _probe() -> _Plan:
    """Find out once per process which containment layers work here, by trying them."""
    problems: list[str] = []
    root = os.geteuid() == 0
    network = (
        "netns" if _works(["unshare", "--net", "--pid", "--fork", "--kill-child", "--", "true"]) else "none"
    )
    if network == "none":
        problems.append(
            "no network isolation: `unshare --net` failed (needs root or CAP_SYS_ADMIN); "
            "model-written code can reach the network"
        )
    user = "uid-drop" if root and shutil.which("setpriv") else "same-user"
    if user == "same-user":
        problems.append(
            "programs run as the current user (not root, or no setpriv): they can write whatever "
            "this user can, and RLIMIT_NPROC is not applied"
        )
    # RLIMIT_NPROC on a per-run uid is exact, so the pids cgroup (a costly task migration) is only
    # a fallback; the memory cgroup bounds the whole process tree, which RLIMIT_AS cannot.
    wanted = ("memory",) if user == "uid-drop" else ("pids", "memory")
    cgroups = {c: d for c in wanted if root and (d := _own_cgroup(c)) is not None}
    nproc = (
        "+".join(
            part for part, ok in (("cgroup-pids", "pids" in cgroups), ("rlimit", user == "uid-drop")) if ok
        )
        or "none"
    )
    if nproc == "none":
        problems.append("no process-count limit: a fork bomb is contained only by the timeout")
    memory = "rlimit-as+cgroup" if "memory" in cgroups else "rlimit-as"
    python, version = _choose_python(network, user)
    return _Plan(python, version, network, user, nproc, memory, cgroups, tuple(problems))


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _choose_python(network: str, user: str) -> tuple[str, str]:
    """The first interpreter that works under the sandbox's own uid with the same standard library
    as under ours. Ours may live in an unreadable home (e.g. /root/.pyenv): run as another uid it
    may still start but fall back to another prefix, while the zygote (root) would use its own."""
    candidates = [sys.executable, "/usr/bin/python3", shutil.which("python3") or ""]
    probe_plan = _Plan("", "", network, user, "", "")
    check = "import sys, _socket, json; print(sys.version.split()[0], sys.prefix, sys.exec_prefix)"
    for candidate in dict.fromkeys(c for c in candidates if c):
        prefix = _argv(probe_plan, _run_uid(), 1, Limits(), Path("/dev/null"))
        prefix = prefix[: prefix.index("-I") - 1]
        sandboxed = _python_says(prefix + [candidate, "-I", "-S", "-c", check])
        if sandboxed is not None and (
            user != "uid-drop" or sandboxed == _python_says([candidate, "-I", "-S", "-c", check])
        ):
            return candidate, sandboxed.split()[0]
    raise ConfigError(
        "no Python interpreter can be started inside the sandbox (tried: "
        + ", ".join(c for c in candidates if c)
        + ")",
        where="sandbox",
    )


def _python_says(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, cwd="/", env=_environment(Path("/")))
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode().strip() if done.returncode == 0 else None
