"""Run untrusted (model-written) Python programs against trusted tests, in separate, limited
processes with no network, where the verdict cannot be forged by the program.

Per sample, two processes in a new PID namespace (see `inside/zygote.py`): the *program* process
runs the model's code; the *judge* process runs the tests, where the functions under test are
proxies, and reports the verdict on a pipe only it holds. Only plain data crosses between them
(`inside/plain.py`). Each runs as its own uid in its own mount namespace that holds only the system
directories and private, size-capped `/tmp`, `/var/tmp` and `/dev/shm`; a seccomp filter refuses
new namespaces. Layers that do not work here are loud warnings, see `sandbox_capabilities()`.

Two launchers, same layers. `zygote` (the default as root): per worker, one trusted interpreter
started once in a network namespace, which never runs untrusted code itself and forks a fresh
pair of processes per sample. `exec`: a fresh zygote per sample (one interpreter start-up each).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import queue
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

from evalkit.common.errors import ConfigError, EvalkitError

Status = Literal["pass", "fail", "timeout", "crash"]
Launcher = Literal["zygote", "exec"]

_UID_BASE = 10_000_000
_UIDS_PER_PROCESS = 1024
_RUN_IDS = itertools.count()  # only a source of distinct per-run uids; never read back
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_INSIDE = Path(__file__).resolve().parent  # holds the `inside` package the zygote imports
_ZYGOTE_MAIN = f"import sys; sys.path.insert(0, {str(_INSIDE)!r}); from inside import zygote; zygote.main()"


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
    tmp_mb: int = 64  # each of the private /tmp, /var/tmp and /dev/shm

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.memory_mb >= 64 and self.max_processes >= 1 and self.tmp_mb >= 1):
            raise ConfigError(
                "sandbox limits need timeout_s > 0, memory_mb >= 64, max_processes >= 1 and tmp_mb >= 1",
                where="sandbox limits",
            )


@dataclass(frozen=True)
class Job:
    """One sample to judge. `code` (untrusted) runs in the program process; `prelude` then `tests`
    (trusted) run in the judge, where `entry_point` and every other name the tests read but do not
    define are proxies of the program's objects. Without `tests`, the verdict is only whether
    `code` ran to its end, which the program controls (`ProgramResult.forgeable`)."""

    code: str
    tests: str | None = None
    prelude: str = ""
    entry_point: str | None = None


@dataclass(frozen=True)
class ProgramResult:
    """What one program did. `detail` is one line: the exception, the signal or the limit hit.
    `forgeable`: the program could have decided this verdict itself (no tests, or no separate
    uids on this machine); never true for a judged sample on a machine with every layer."""

    status: Status
    detail: str = ""
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    forgeable: bool = False

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
    def isolated(self) -> bool:
        """Root and network namespaces: per-sample uids, PID and mount namespaces, seccomp."""
        return self.network == "netns" and self.user == "uid-drop"

    @property
    def launcher(self) -> Launcher:
        """The zygote needs root (one uid per program) and network namespaces; else exec."""
        return "zygote" if self.isolated else "exec"


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
        "verdict": "separate-judge" if plan.isolated else "forgeable",
        "files": "private-root+tmpfs" if plan.isolated else "shared",
        "namespaces_from_inside": "seccomp-refused" if plan.isolated and _seccomp_supported() else "allowed",
        "python": plan.python,
        "python_version": plan.python_version,
        "warnings": list(plan.warnings),
    }


class Sandbox:
    """A bounded pool that runs programs in isolated processes; thread-safe.

        sandbox = Sandbox(Limits(timeout_s=3))
        result = sandbox.run("assert 1 + 1 == 2")      # ProgramResult(status="pass", ...)
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

    def run(self, job: Job | str) -> ProgramResult:
        """Judge one job (a bare string: a program with no tests) and return what happened."""
        if isinstance(job, str):
            job = Job(job)
        analysis = _analysis(job)  # before taking a worker: meanwhile the previous sample runs
        slot = self._slots.get()
        try:
            if self.launcher == "exec":
                return _run_exec_one(job, self.limits, self._plan, analysis)
            return self._run_in_zygote(slot, job, analysis)
        finally:
            self._slots.put(slot)

    def run_many(self, programs: Iterable[Job | str]) -> list[ProgramResult]:
        """Run jobs in parallel on `workers` processes; results in the order given."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, programs))

    def close(self) -> None:
        """Stop the workers' zygotes (a later `run` starts new ones)."""
        _stop_zygotes(self._zygotes)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run_in_zygote(self, slot: int, job: Job, analysis: dict[str, Any] | None) -> ProgramResult:
        """One retry if the slot's zygote died under the run (not the program's doing: it cannot
        signal the zygote); a second loss is a SandboxError."""
        for attempt in (1, 2):
            zygote = self._zygotes[slot]
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.stop()
                zygote = self._zygotes[slot] = _Zygote(self._plan, self.limits)
            try:
                return _run_zygote_one(zygote, job, self.limits, self._plan, analysis)
            except _ZygoteLost as exc:
                zygote.stop()
                self._zygotes[slot] = None
                if attempt == 2:
                    raise SandboxError(f"the sandbox worker died twice: {exc}", where="sandbox") from None
        raise AssertionError("unreachable")


# ---- zygote launcher ------------------------------------------------------------------------------

# Trusted, already-imported modules every child gets for free (copy-on-write): most programs
# import some of them, and a fresh import of `typing` or `re` costs several ms. Not `random` (nor
# `statistics`, which imports it): it reseeds itself in every forked child, which costs each of a
# sample's two processes more than the ~0.6 ms its import costs the few programs that use it.
_WARM_MODULES = (
    "typing", "re", "math", "collections", "itertools", "functools", "heapq", "bisect", "string",
    "hashlib", "fractions", "copy", "decimal", "operator", "traceback",
)  # fmt: skip
_ZYGOTE_START_S = 30.0
_REPLY_GRACE_S = 30.0  # past the program's own timeout, the zygote is stuck: replace it


class _ZygoteLost(Exception):
    """The zygote died or stopped answering."""


class _Zygote:
    """One warm trusted interpreter in a network namespace that forks a fresh child per program."""

    def __init__(self, plan: _Plan, limits: Limits, *, once: bool = False) -> None:
        _sweep_stale(plan)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the zygote; its stderr
        self._buffer = b""
        # root-only; the zygote sees it at /.jobs, a sample's processes never do
        self.jobs = Path(tempfile.mkdtemp(prefix=f"evalkit-sbx-{os.getpid()}-", dir=_scratch_dir()))
        (self.jobs / ".root").mkdir()
        # the zygote and so every process it forks live in these (no per-sample migration, which
        # costs ~15 ms); one sample at a time per zygote, so the memory limit is per sample
        try:
            self.cgroups = _make_cgroups(f"z{next(_RUN_IDS)}", limits, plan)
        except SandboxError:
            shutil.rmtree(self.jobs, ignore_errors=True)
            raise
        config = {
            "isolate": plan.isolated,
            "limits": _rlimits(limits, plan),
            "tmp_mb": limits.tmp_mb,
            "env": _environment(),
            "output_bytes": limits.max_output_bytes,
        }
        argv = [plan.python, "-I", "-S", "-B", "-c", _ZYGOTE_MAIN, str(self.jobs), json.dumps(config)]
        argv += ["--once"] if once else list(_WARM_MODULES)
        if plan.network == "netns":
            argv = ["unshare", "--net", "--", *argv]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd="/",
                env=_environment(),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self._log.close()
            self._remove_files()
            raise SandboxError(f"cannot start the sandbox zygote: {exc}", where="sandbox") from None
        try:
            for group in self.cgroups:
                (group / "cgroup.procs").write_text(str(self.proc.pid))
        except OSError as exc:
            self.stop()
            raise SandboxError(
                f"cannot put the sandbox zygote in its cgroup: {exc}", where="sandbox"
            ) from None
        try:
            ready = self._reply(_ZYGOTE_START_S)
        except _ZygoteLost as exc:
            self.stop()
            raise SandboxError(f"the sandbox zygote did not start: {exc}", where="sandbox") from None
        if ready.get("ready") != self.proc.pid:
            self.stop()
            raise SandboxError(f"the sandbox zygote answered {ready!r}", where="sandbox")
        self.spare: dict[str, Any] | None = ready.get("spare")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, request: dict[str, Any], parts: tuple[bytes, bytes], timeout_s: float) -> dict[str, Any]:
        """Run one sample and wait for its reply (at most `timeout_s` + a grace period). `parts`:
        the judge's and the program's; written straight into the spare's pipes when it has one
        (one hand-off fewer), else sent along for the zygote to hand over."""
        spare, self.spare = self.spare, None
        # (if the zygote dies after this check, the spare dies with it: its parent-death signal)
        pipes = _open_spare(self.proc.pid, spare) if spare and self.alive() else None
        if pipes is None:
            request = {**request, "parts": [part.decode() for part in parts]}
        else:
            request = {**request, "handed": True}
            _raise_priority(spare["pid"])  # type: ignore[index]
        # the parts first, then the zygote: woken first, it would run (fork the next spare) on
        # this core before the sample could start; its clock starts a moment after the sample
        for fd, part in zip(pipes or (), parts, strict=False):
            _write_part(fd, part)
        self._send(request)
        reply = self._reply(timeout_s + _REPLY_GRACE_S)
        self.spare = reply.get("spare")
        if "error" in reply:
            raise SandboxError(f"the sandbox could not start the program: {reply['error']}", where="sandbox")
        return reply

    def _send(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise _ZygoteLost(f"cannot send to the zygote: {exc}") from None

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
        self._remove_files()

    def _remove_files(self) -> None:
        _kill_leftovers(None, self.cgroups)
        for group in self.cgroups:
            _remove_cgroup(group)
        self.cgroups = []
        shutil.rmtree(self.jobs, ignore_errors=True)


def _open_spare(zygote_pid: int, spare: dict[str, Any]) -> tuple[int, int] | None:
    """Our own ends of the spare's two request pipes, opened through the zygote's descriptors
    (it holds them and, blocked on our pipe, changes none until our next request), each checked
    by inode; None if that fails (the zygote then hands the parts over itself)."""
    opened: list[int] = []
    try:
        for name in ("judge_fd", "program_fd"):
            number, inode = spare[name]
            opened.append(os.open(f"/proc/{zygote_pid}/fd/{int(number)}", os.O_WRONLY | os.O_CLOEXEC))
            info = os.fstat(opened[-1])
            if not stat.S_ISFIFO(info.st_mode) or info.st_ino != inode:
                raise OSError(f"descriptor {number} of the zygote is not the spare's pipe")
    except (OSError, KeyError, TypeError, ValueError):
        for fd in opened:
            os.close(fd)
        return None
    return opened[0], opened[1]


def _raise_priority(pid: int) -> None:
    """The spare was made at the lowest priority: back to normal, PID 1 then its process group."""
    for which in (os.PRIO_PROCESS, os.PRIO_PGRP):
        with contextlib.suppress(OSError):
            os.setpriority(which, pid, 0)


def _write_part(fd: int, part: bytes) -> None:
    """One side's part, framed as the zygote frames it; a side that could not contain itself is
    gone (EPIPE), and the zygote's reply says why."""
    try:
        with contextlib.suppress(BrokenPipeError):
            data = memoryview(len(part).to_bytes(4, "big") + part)
            while data:
                data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _stop_zygotes(zygotes: list[_Zygote | None]) -> None:
    for index, zygote in enumerate(zygotes):
        if zygote is not None:
            zygote.stop()
            zygotes[index] = None


def _run_exec_one(
    job: Job, limits: Limits, plan: _Plan, analysis: dict[str, Any] | None = None
) -> ProgramResult:
    """The exec launcher: a zygote of its own that serves this one job (a fresh interpreter)."""
    zygote = _Zygote(plan, limits, once=True)
    try:
        return _run_zygote_one(zygote, job, limits, plan, analysis)
    except _ZygoteLost as exc:
        raise SandboxError(f"the sandbox process died: {exc}", where="sandbox") from None
    finally:
        zygote.stop()


def _seccomp_supported() -> bool:
    return os.uname().machine in ("x86_64", "aarch64")


def _run_zygote_one(
    zygote: _Zygote, job: Job, limits: Limits, plan: _Plan, analysis: dict[str, Any] | None = None
) -> ProgramResult:
    uids = _run_uids()
    # the code and the tests travel in the request; only without a private root (no per-sample
    # /tmp) does a sample get a directory, for its two homes
    workdir = None if plan.isolated else Path(tempfile.mkdtemp(prefix="job-", dir=zygote.jobs))
    cgroups = zygote.cgroups
    try:
        if workdir is not None:
            for side in ("program", "judge"):
                (workdir / f"home-{side}").mkdir(mode=0o700)
        request = {"timeout": limits.timeout_s, "job": "" if workdir is None else workdir.name}
        try:
            reply = zygote.run(request, _parts(job, uids, plan, analysis), limits.timeout_s)
        except _ZygoteLost:
            _kill_leftovers(uids, cgroups)  # its children died with it (PDEATHSIG); make sure
            raise
        memory_hit = _memory_cgroup_hit(cgroups)
        if memory_hit:
            _reset_failcnt(cgroups)  # for the next sample (a new zygote's cgroup starts at 0)
        if reply["setup_error"]:
            raise SandboxError(
                f"the sandbox could not contain the program: {_one_line(reply['setup_error'])}",
                where="sandbox",
            )
        status, detail = _classify(reply, memory_hit, limits)
        outputs = reply["outputs"]
        stdout = _joined(outputs, ("program.stdout", "judge.stdout"), limits.max_output_bytes)
        stderr = _joined(outputs, ("program.stderr", "judge.stderr"), limits.max_output_bytes)
        forgeable = not plan.isolated or job.tests is None
        duration = round(reply["duration"], 4)
        return ProgramResult(status, detail, reply["returncode"], stdout, stderr, duration, forgeable)
    finally:
        if workdir is not None:
            _remove_workdir(workdir)


def _parts(
    job: Job, uids: tuple[int, int], plan: _Plan, analysis: dict[str, Any] | None
) -> tuple[bytes, bytes]:
    """What each side of the sample is given: the judge its uid, the tests and their analysis, the
    program process its uid and the code (never the tests)."""
    judge_uid, program_uid = uids if plan.isolated else (None, None)
    spec = {"prelude": job.prelude, "test": job.tests or "", "entry_point": job.entry_point}
    if analysis is not None:
        spec["analysis"] = analysis
    judge = json.dumps({"uid": judge_uid, "spec": spec}).encode()
    program = json.dumps({"uid": program_uid, "source": job.code}).encode()
    return judge, program


def _analysis(job: Job) -> dict[str, Any] | None:
    """The static part of the judge's work, done here (trusted, like the judge): the test's free
    names and, when its calls can be batched (`inside/prefetch.py`), those calls (plain data) and
    the names that must then be the judge's own, which the judge checks against its namespace.
    None when the prelude or the test does not parse: the judge then finds out, and says so.
    Shared by every sample of the same tests (pass@k): read it, never change it."""
    return _analysed(job.prelude, job.tests or "", job.entry_point)


@lru_cache(maxsize=1024)
def _analysed(prelude: str, tests: str, entry_point: str | None) -> dict[str, Any] | None:
    import ast

    from evalkit.sandbox.inside import plain, prefetch
    from evalkit.scorers.code_extract import PARSING  # see there: one lock for every ast.parse

    try:
        with PARSING:
            prompt, tree = ast.parse(prelude), ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError, SystemError):
        return None
    found = prefetch.analyse(tree, prompt, entry_point) if entry_point else None
    calls, needs = found or ([], set())

    def not_literal(value: Any) -> dict[str, Any]:
        raise TypeError(f"not a literal: {type(value).__name__}")

    try:
        with plain.deep_enough():
            encoded = [plain.encode([list(args), kwargs], not_literal) for args, kwargs in calls]
    except (TypeError, plain.NotPlain, RecursionError):
        encoded, needs = [], set()
    return {"free": prefetch.free_names(prompt, tree), "calls": encoded, "needs": sorted(needs)}


def _kill_leftovers(uids: tuple[int, int] | None, cgroups: list[Path]) -> None:
    """After a lost zygote: kill whatever still runs as the run's uids or in its cgroups."""
    for _ in range(200):
        pids = set(_cgroup_pids(cgroups))
        for uid in uids or ():
            pids |= set(_pids_of_uid(uid))
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _rlimits(limits: Limits, plan: _Plan) -> dict[str, int]:
    """The rlimits of each process (-1: not set). RLIMIT_NPROC counts per uid, so only per-run uids."""
    return {
        "mem": limits.memory_mb * 1024 * 1024,
        "cpu": max(1, math.ceil(limits.timeout_s)),
        "nproc": limits.max_processes if plan.isolated else -1,
        "fsize": limits.max_file_mb * 1024 * 1024,
        "nofile": 256,
        "core": 0,
    }


def _environment() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _run_uids() -> tuple[int, int]:
    """Two uids (judge, program) no other live run of this machine uses."""
    base = _UID_BASE + (os.getpid() % 1_000_000) * _UIDS_PER_PROCESS
    run = next(_RUN_IDS) % (_UIDS_PER_PROCESS // 2)
    return base + 2 * run, base + 2 * run + 1


def _classify(reply: dict[str, Any], memory_hit: bool, limits: Limits) -> tuple[Status, str]:
    returncode, report = reply["returncode"], reply["report"]
    if reply["timed_out"]:
        return "timeout", _timeout_detail(limits, reply.get("cpu"))
    kind, _, message = report.partition(" ")
    if kind == "ok" and not message and returncode == 0:
        return "pass", "pass"
    if kind == "crash" and "SIGKILL" in message and memory_hit:
        return "crash", "crash: out of memory (killed by SIGKILL)"
    if kind == "timeout":
        return "timeout", f"timeout: CPU time limit ({max(1, math.ceil(limits.timeout_s))} s)"
    if kind in ("fail", "crash"):
        return kind, f"{kind}: {_one_line(message)}"  # type: ignore[return-value]
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return (
                "timeout",
                f"timeout: the tests used more than {max(1, math.ceil(limits.timeout_s))} s of CPU",
            )
        if sig == signal.SIGKILL and memory_hit:
            return "crash", "crash: out of memory (killed by SIGKILL)"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "crash", f"crash: the judge was killed by {name}"
    return "fail", f"fail: no verdict (the judge exited with code {returncode})"


def _timeout_detail(limits: Limits, cpu: float | None) -> str:
    """Says when the machine, not the program, was slow: little CPU time in the whole wall time."""
    detail = f"timeout: still running after {limits.timeout_s:g} s"
    if cpu is not None and cpu < 0.5 * limits.timeout_s:
        detail += (
            f" (only {cpu:.2f} s on the CPU: the program waited or slept, or the machine was overloaded)"
        )
    return detail


def _joined(outputs: dict[str, str], names: tuple[str, ...], limit: int) -> str:
    text = "".join(str(outputs.get(name, "")) for name in names)
    return text if len(text) <= limit else "…" + text[-limit:]


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


_SWEPT: list[bool] = []


def _sweep_stale(plan: _Plan, *, again: bool = False) -> None:
    """Once per process: remove the job directories and empty cgroups that a process of ours which
    died without closing its Sandbox (killed, `os._exit`) left; its zygotes exited by themselves."""
    if _SWEPT and not again:
        return
    _SWEPT.append(True)
    scratch = Path(_scratch_dir() or tempfile.gettempdir())
    for path in scratch.glob("evalkit-sbx-*-*"):
        owner = path.name.split("-")[2]
        if owner.isdigit() and not _pid_alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)
    for parent in plan.cgroups.values():
        for group in parent.glob("evalkit-*-*"):
            owner = group.name.split("-")[1]
            if owner.isdigit() and not _pid_alive(int(owner)):
                with contextlib.suppress(OSError):
                    group.rmdir()  # fails while a process is still inside: then it is not stale


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scratch_dir() -> str | None:
    """Job files go to RAM (/dev/shm) where we can write there: they are small and short-lived."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def _reset_failcnt(cgroups: list[Path]) -> None:
    for group in cgroups:
        with contextlib.suppress(OSError):
            (group / "memory.failcnt").write_text("0")


def _make_cgroups(uid: int | str, limits: Limits, plan: _Plan) -> list[Path]:
    """The zygote's own cgroups (one per usable controller), with its limits set and no member yet."""
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
    if not (network == "netns" and user == "uid-drop"):
        problems.append(
            "verdicts can be forged: without root the judge cannot run as another uid, and there is no "
            "private filesystem view or seccomp filter (results are marked score_forgeable)"
        )
    elif not _seccomp_supported():
        problems.append(f"no seccomp filter for {os.uname().machine}: programs can create namespaces")
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
    check = "import sys, _socket, json; print(sys.version.split()[0], sys.prefix, sys.exec_prefix)"
    uid = _run_uids()[1]
    prefix = ["unshare", "--net", "--"] if network == "netns" else []
    if user == "uid-drop":
        prefix += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]
    for candidate in dict.fromkeys(c for c in candidates if c):
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
        done = subprocess.run(argv, capture_output=True, timeout=20, cwd="/", env=_environment())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode().strip() if done.returncode == 0 else None
