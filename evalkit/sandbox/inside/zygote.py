"""The zygote: a trusted interpreter started as root in a new network namespace (`unshare --net`).
It never runs untrusted code. Per sample it forks a child into a new PID namespace; that child,
PID 1 there, forks the *program* process and then becomes the *judge*:

- program: own mount namespace (`contain.enter_private_tmp`), uid `uids[1]`, runs the model's code
  (`program.py`) and answers the judge over a socket with plain data;
- judge: the sample's mount namespace (its `/proc`, the tests' `/tmp`), uid `uids[0]`, runs the tests (which the program process never
  receives) and writes the verdict on a pipe that only it holds.

The pair is made ahead of its sample (a *spare*: forked while the previous sample runs): both
processes build their namespaces, private tmpfs, descriptors and rlimits as root, then wait, having
run nothing, each on its own pipe. The request hands each its part (the program its code, the judge
the tests) and its uid; each drops to that uid, sets `no_new_privs`, the parent-death signal and the
seccomp filter, and only then runs what it was given. Their stdout and stderr are memory files
(memfd) that only the zygote reads back. When the judge exits, the kernel kills every other process
of the namespace. One JSON request line on stdin, one JSON reply line on stdout; EOF on stdin ends
the zygote. `--once` serves a single request (the `exec` launcher).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import resource
import select
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from . import contain, judge, program, seccomp

PROGRAM_OUTPUTS = ("program.stdout", "program.stderr")
JUDGE_OUTPUTS = ("judge.stdout", "judge.stderr")
SETUP_FAILED = 70
SPARE_NICE = 19
SAMPLE_CWD = "/tmp"  # isolated: each side's own tmpfs, its home and working directory
_SETUP_FD = [-1]  # where this process reports a failure to contain itself (it moves to fd 4)


@dataclass(frozen=True)
class Config:
    """What is the same for every sample of this zygote (argv `--config`, JSON)."""

    isolate: bool
    limits: dict[str, int]
    tmp_mb: int
    env: dict[str, str]
    output_bytes: int


def send(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def serve(once: bool, warm: list[str], jobs_dir: str, config: Config) -> None:
    for name in warm:  # warm trusted imports; every child gets a copy-on-write copy
        with contextlib.suppress(ImportError):
            __import__(name)
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # /proc is gone after this:
    if config.isolate:
        _oom_score_adj("-1000")  # the memory cgroup's OOM kill takes a program, not us or a spare
        contain.enter_zygote_root(jobs_dir)
        if seccomp.supported():
            seccomp.prepare()  # built once here; each child only installs it
        # the same for every sample's two sides (each works in its own /tmp): set once here, so
        # no child rewrites its environment (each such write copies pages of ours)
        contain.settle({**config.env, "HOME": SAMPLE_CWD, "TMPDIR": SAMPLE_CWD}, "/")
    import gc

    gc.freeze()  # children's collections skip our objects, so fewer copy-on-write page copies
    ahead = config.isolate and not once  # without a private root the homes are per sample
    spare = spawn(config, own_pidns) if ahead else None
    send({"ready": os.getpid(), "spare": spare and spare.announce()})
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return
        req = json.loads(line)
        try:
            if spare is None:
                spare = spawn(config, own_pidns, jobs_dir + "/" + str(req.get("job", "")))
            make = (lambda: spawn(config, own_pidns, lowly=True)) if ahead else None
            reply, spare, held = run(req, spare, config, make)
        except OSError as exc:
            reply, spare, held = {"error": str(exc)}, None, []
        reply["spare"] = spare and spare.announce()
        send(reply)
        for fd in held:  # the judge's mount namespace is torn down now, after the reply
            os.close(fd)
        if once:
            return


@dataclass
class Spare:
    """The PID 1 of the next sample's namespace, made ahead of time with its program process: both
    wait (as root, contained but for the uid drop, having run nothing) for their part of the request
    on `judge_fd` and `program_fd`; `report_fd` and `setup_fd` are its pipes' ends, `outputs` the
    memory files of both sides' stdout and stderr."""

    pid: int
    judge_fd: int
    program_fd: int
    report_fd: int
    setup_fd: int
    outputs: dict[str, int]
    keep_fd: int  # where the judge sends its mount namespace, which then outlives it until we reply

    def announce(self) -> dict[str, Any]:
        """Where our side can hand this spare its request itself (through /proc/<our pid>/fd, as
        root), without waking us first: PID 1, and the number and inode of each part's pipe."""
        pipes = {
            name: [fd, os.fstat(fd).st_ino]
            for name in ("judge_fd", "program_fd")
            if (fd := getattr(self, name)) >= 0
        }
        return {"pid": self.pid, **pipes}

    def take(self, name: str) -> int:
        """One of the pipe ends, handed over to be closed by the caller (a closed fd's number is
        soon reused: it must never be closed twice)."""
        fd: int = getattr(self, name)
        setattr(self, name, -1)
        return fd

    def close(self) -> None:
        for name in ("judge_fd", "program_fd", "report_fd", "setup_fd", "keep_fd"):
            if (fd := self.take(name)) >= 0:
                os.close(fd)
        for fd in self.outputs.values():
            os.close(fd)
        self.outputs = {}

    def discard(self) -> None:
        """End an unused spare: EOF on its pipes makes both processes exit; reap PID 1."""
        self.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def spawn(config: Config, own_pidns: int, home: str = "", lowly: bool = False) -> Spare:
    """Fork the next sample's PID 1 (in a new PID namespace when isolated), which prepares itself
    and its program process and waits for the request. `lowly`: made while a sample runs, so at
    the lowest priority until its request comes, to take no CPU time from that sample (set here,
    before the spare is announced: whoever hands it its request raises it after)."""
    judge_read, judge_write = os.pipe()
    program_read, program_write = os.pipe()
    read_fd, write_fd = os.pipe()
    setup_read, setup_write = os.pipe()  # closed before any untrusted code runs: it cannot forge
    keep_ours, keep_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    outputs = {name: os.memfd_create(name, os.MFD_CLOEXEC) for name in PROGRAM_OUTPUTS + JUDGE_OUTPUTS}
    if config.isolate:
        contain.check(contain.LIBC.unshare(contain.CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    try:
        pid = os.fork()
    finally:
        if config.isolate and os.getpid() != 1:  # back to our own namespace for the next unshare
            contain.check(contain.LIBC.setns(own_pidns, contain.CLONE_NEWPID), "setns")
    if pid != 0 and lowly:
        with contextlib.suppress(OSError):  # then only slower
            os.setpriority(os.PRIO_PROCESS, pid, SPARE_NICE)
    if pid == 0:
        # everything else we hold (another sample's pipes and outputs) is closed in _arrange_fds
        ends = (judge_read, program_read, write_fd, setup_write, keep_theirs.detach())
        prepare_sample(config, home, ends, outputs)
    for fd in (judge_read, program_read, write_fd, setup_write):
        os.close(fd)
    keep_theirs.close()
    return Spare(pid, judge_write, program_write, read_fd, setup_read, outputs, keep_ours.detach())


def run(
    req: dict[str, Any], spare: Spare, config: Config, make_spare: Any
) -> tuple[dict[str, Any], Spare | None, list[int]]:
    """Hand the request to `spare`, make the next spare while it runs, wait for the sample's end.
    The reply, and the next spare (None: make one when needed)."""
    started = time.monotonic()
    pid = spare.pid
    if req.get("handed"):  # our side wrote both parts itself; ours are only spare copies
        os.close(spare.take("judge_fd"))
        os.close(spare.take("program_fd"))
    else:
        _raise_priority(pid)
        judge_part, program_part = (framed(part.encode()) for part in req["parts"])
        _hand(spare.take("judge_fd"), judge_part)
        _hand(spare.take("program_fd"), program_part)
    next_spare = None
    if make_spare is not None:
        with contextlib.suppress(OSError):
            next_spare = make_spare()
    try:
        timed_out = not wait(pid, req["timeout"])
        if timed_out:
            kill_tree(pid, config.isolate)
        _, status, usage = os.wait4(pid, 0)  # returns once every process of that namespace is gone
    except BaseException:
        if next_spare is not None:
            next_spare.discard()
        raise
    if not config.isolate:
        kill_tree(pid, False)
    reply = {
        "returncode": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "report": drain(spare.take("report_fd")),
        "setup_error": drain(spare.take("setup_fd")),
        "outputs": {name: _tail(fd, config.output_bytes) for name, fd in spare.outputs.items()},
        "duration": time.monotonic() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    held = _received_fds(spare.keep_fd)
    spare.close()
    return reply, next_spare, held


def _received_fds(fd: int) -> list[int]:
    """The descriptors the spare sent on its keep socket (its judge's mount namespace)."""
    sock = socket.socket(fileno=os.dup(fd))
    sock.setblocking(False)
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, 4)
    except OSError:
        fds = []
    finally:
        sock.close()
    return list(fds)


def _raise_priority(pid: int) -> None:
    """Back to the normal priority: the spare's PID 1, then its process group (its program process;
    one forked in between inherits the normal priority, one forked before is in the group)."""
    for which in (os.PRIO_PROCESS, os.PRIO_PGRP):
        with contextlib.suppress(OSError):
            os.setpriority(which, pid, 0)


def framed(part: bytes) -> bytes:
    """A side's part of the request (JSON: its uid and the tests, or its uid and its code) with its
    length in front: the side reads exactly that, whoever else still holds the pipe."""
    return len(part).to_bytes(4, "big") + part


def hand(fd: int, part: bytes) -> None:
    """Write one side's part of the request. A side that could not contain itself is already
    gone (EPIPE): its setup pipe says why."""
    with contextlib.suppress(BrokenPipeError):
        data = memoryview(part)
        while data:
            data = data[os.write(fd, data) :]


def _hand(fd: int, part: bytes) -> None:
    hand(fd, part)
    os.close(fd)


def _tail(fd: int, limit: int) -> str:
    """The last `limit` bytes of a memory file (tracebacks end with the useful line)."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ""
        data = os.pread(fd, limit, max(0, info.st_size - limit))
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return ("…" + text) if info.st_size > limit else text


def kill_tree(pid: int, isolated: bool) -> None:
    """PID 1 of its namespace: the kernel kills the whole tree; else its process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL) if isolated else os.killpg(pid, signal.SIGKILL)


def wait(pid: int, timeout: float) -> bool:
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(0, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:  # polled at least once: when we get here late (a busy machine), a sample
            left = deadline - time.monotonic()  # that already ended is not a timeout
            for fd, _ in poller.poll(max(0, math.ceil(left * 1000))):
                if fd == pidfd:
                    return True
                os.kill(pid, signal.SIGKILL)  # our parent is gone: nobody reads the result
                os.waitpid(pid, 0)
                os._exit(0)
            if left <= 0:
                return False
    finally:
        os.close(pidfd)


def drain(fd: int) -> str:
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk if len(data) < 8192 else b""
    except OSError:
        pass
    os.close(fd)
    return data[:8192].decode("utf-8", "replace")


def prepare_sample(
    config: Config, home: str, ends: tuple[int, int, int, int, int], outputs: dict[str, int]
) -> NoReturn:
    """PID 1 of the sample's namespace: set up the program process and the judge (this process),
    each waiting for its part of the request, then run the judge."""
    judge_read, program_read, status_fd, setup_fd, keep_fd = ends
    _SETUP_FD[0] = setup_fd
    try:
        # if the zygote dies, so does this spare (and its namespace), even before it is handed a
        # request: our side may hand it one straight, and nobody would watch the time
        contain.check(contain.prctl(contain.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
        os.setsid()
        if config.isolate:
            contain.enter_sample_proc()
            # the judge's private /tmp, mounted before the program process is forked: that one
            # then mounts its own over it (and its other two), in a namespace of its own
            contain.mount_tmp(config.tmp_mb, SAMPLE_CWD)
        judge_end, program_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        program_setup_read, program_setup_write = os.pipe()
        program_pid = os.fork()
        if program_pid == 0:
            _SETUP_FD[0] = program_setup_write
            start_program(config, home, program_end.detach(), program_setup_write, program_read, outputs)
        program_end.close()
        os.close(program_setup_write)
        fds = [status_fd, setup_fd, judge_end.detach(), program_setup_read, judge_read, keep_fd]
        _arrange_fds([outputs[name] for name in JUDGE_OUTPUTS], fds)
        _SETUP_FD[0] = 4
        _settle(config, home, "judge")
        _lend_mount_namespace(config, 8)
        part = _await_part(7)
        _activate(config, part["uid"])
    except BaseException as exc:  # noqa: BLE001 - reported as a sandbox error, never scored
        _setup_failed(exc)
    judge.main(5, 3, part["spec"], program_pid, (4, 6))  # fds 4, 6: the setup pipes, open until loaded
    os._exit(0)


def _lend_mount_namespace(config: Config, keep_fd: int) -> None:
    """Send the zygote our mount namespace: while the descriptor is in flight or held, our exit does
    not tear down its mounts (a wait for RCU), so the zygote learns of our end sooner; it closes
    the descriptor once it has replied. Only ours: the program process's files die with it."""
    if config.isolate:
        ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        with socket.socket(fileno=keep_fd) as sock:
            socket.send_fds(sock, [b"m"], [ns])
        os.close(ns)
    else:
        os.close(keep_fd)


def start_program(
    config: Config, home: str, sock: int, setup_fd: int, part_fd: int, outputs: dict[str, int]
) -> NoReturn:
    try:
        _arrange_fds([outputs[name] for name in PROGRAM_OUTPUTS], [sock, setup_fd, part_fd])
        _SETUP_FD[0] = 4
        _settle(config, home, "program")
        part = _await_part(5)
        _activate(config, part["uid"])
        os.close(4)
    except BaseException as exc:  # noqa: BLE001 - the judge turns it into a sandbox error
        _setup_failed(exc)
    with contextlib.suppress(BaseException):  # the judge is gone or the channel broke: just end
        program.main(3, part["source"])
    os._exit(0)


def _await_part(fd: int) -> dict[str, Any]:
    """This side's part of the request (a length, then JSON), or exit quietly when the zygote is
    gone or drops the spare without sending one."""
    header = _read_exactly(fd, 4)
    part: dict[str, Any] = json.loads(_read_exactly(fd, int.from_bytes(header, "big")))
    os.close(fd)
    return part


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            os._exit(0)
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _arrange_fds(outputs: list[int], extra: list[int]) -> None:
    """0: /dev/null, 1-2: the side's output files, 3...: `extra`; every other descriptor closed."""
    sources = [os.open(os.devnull, os.O_RDONLY), *outputs, *extra]
    for target, fd in enumerate([fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in sources]):
        os.dup2(fd, target)  # via fds >= 100, so no source is clobbered before it is used
    os.closerange(len(sources), resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def _settle(config: Config, home: str, side: str) -> None:
    """Ahead of the sample, as root: private temporary directories, rlimits, environment, cwd.
    Isolated, the judge's /tmp is already mounted (it runs trusted test code: a private /tmp is
    enough, the others stay read-only) and the environment was set by the zygote."""
    if config.isolate and side == "program":
        contain.enter_private_tmp(config.tmp_mb)
    contain.set_limits(config.limits)
    if config.isolate:
        os.chdir(SAMPLE_CWD)
        contain.refuse_namespaces()
    else:
        cwd = f"{home}/home-{side}"
        contain.settle({**config.env, "HOME": cwd, "TMPDIR": cwd}, cwd)


def _activate(config: Config, uid: int | None) -> None:
    """Given the sample: killable again by the OOM killer, then this sample's uid and filter."""
    if config.isolate:
        _oom_score_adj("0")
    contain.drop(uid if config.isolate else None)


def _setup_failed(exc: BaseException) -> NoReturn:
    message = (type(exc).__name__ + ": " + str(exc)).encode("utf-8", "replace")[:4096]
    with contextlib.suppress(OSError):
        os.write(_SETUP_FD[0], message)
    os._exit(SETUP_FAILED)


def _oom_score_adj(value: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)


def main() -> None:
    """argv: JOBS_DIR CONFIG_JSON [--once] WARM_MODULE..."""
    jobs_dir, config, *args = sys.argv[1:]
    serve("--once" in args, [a for a in args if a != "--once"], jobs_dir, Config(**json.loads(config)))
