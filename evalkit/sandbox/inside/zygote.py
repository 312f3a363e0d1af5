"""The zygote: a trusted interpreter started as root in a new network namespace (`unshare --net`).
It never runs untrusted code. Per request (one JSON line on stdin) it forks a child into a new PID
namespace; that child, PID 1 there, forks the *program* process and then becomes the *judge*:

- program: own mount namespace (`contain.enter_private_tmp`), uid `uids[1]`, runs the model's code
  (`program.py`) and answers the judge over a socket with plain data;
- judge: own mount namespace, uid `uids[0]`, runs the tests (`judge.json`, which the program
  process never reads) and writes the verdict on a pipe that only it holds.

When the judge exits, the kernel kills every other process of the namespace. One JSON reply line
on stdout; EOF on stdin ends the zygote. `--once` serves a single request (the `exec` launcher).
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
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from . import contain, judge, program

PROGRAM_FILES = ("program.py", "program.stdout", "program.stderr")
JUDGE_FILES = ("judge.json", "judge.stdout", "judge.stderr")
SETUP_FAILED = 70
JOBS_DIR = [""]  # where this zygote sees the host's job directories
_SETUP_FD = [-1]  # where this process reports a failure to contain itself (it moves to fd 4)


def send(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def serve(once: bool, warm: list[str], jobs_dir: str, isolate: bool) -> None:
    for name in warm:  # warm trusted imports; every child gets a copy-on-write copy
        with contextlib.suppress(ImportError):
            __import__(name)
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # /proc is gone after this:
    if isolate:
        _oom_score_adj("-1000")  # the memory cgroup's OOM kill takes a program, not us (if allowed)
        contain.enter_zygote_root(jobs_dir)
    JOBS_DIR[0] = contain.JOBS if isolate else jobs_dir
    import gc

    gc.freeze()  # children's collections skip our objects, so fewer copy-on-write page copies
    spare = None if once else spawn(isolate, own_pidns)
    send({"ready": os.getpid()})
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return
        try:
            reply = run(json.loads(line), spare or spawn(isolate, own_pidns))
        except OSError as exc:
            reply = {"error": str(exc)}
        spare = None
        send(reply)
        if once:
            return
        try:
            spare = spawn(isolate, own_pidns)  # while our side reads the reply and prepares the next
        except OSError:
            spare = None


@dataclass
class Spare:
    """The PID 1 of the next sample's namespace, forked ahead of time: it waits (as root, having
    run nothing) for its request on `request_fd`; `report_fd` and `setup_fd` are its pipes' ends."""

    pid: int
    request_fd: int
    report_fd: int
    setup_fd: int


def spawn(isolate: bool, own_pidns: int) -> Spare:
    request_read, request_write = os.pipe()
    read_fd, write_fd = os.pipe()
    setup_read, setup_write = os.pipe()  # closed before any untrusted code runs: it cannot forge
    if isolate:
        contain.check(contain.LIBC.unshare(contain.CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    try:
        pid = os.fork()
    finally:
        if isolate and os.getpid() != 1:  # back to our own namespace for the next unshare
            contain.check(contain.LIBC.setns(own_pidns, contain.CLONE_NEWPID), "setns")
    if pid == 0:
        for fd in (request_write, read_fd, setup_read, own_pidns):
            os.close(fd)
        req = _read_request(request_read)
        supervise(req, (request_read,), write_fd, setup_write)
    for fd in (request_read, write_fd, setup_write):
        os.close(fd)
    return Spare(pid, request_write, read_fd, setup_read)


def _read_request(fd: int) -> dict[str, Any]:
    """The request line, or exit quietly when the zygote is gone without sending one."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            os._exit(0)
        data += chunk
    request: dict[str, Any] = json.loads(data)
    return request


def run(req: dict[str, Any], spare: Spare) -> dict[str, Any]:
    pid, read_fd, setup_read = spare.pid, spare.report_fd, spare.setup_fd
    started = time.monotonic()
    try:
        os.write(spare.request_fd, json.dumps(req).encode() + b"\n")
    finally:
        os.close(spare.request_fd)
    timed_out = not wait(pid, req["timeout"])
    if timed_out:
        kill_tree(pid, req["isolate"])
    _, status, usage = os.wait4(pid, 0)  # returns once every process of that namespace is gone
    if not req["isolate"]:
        kill_tree(pid, False)
    return {
        "returncode": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "report": drain(read_fd),
        "setup_error": drain(setup_read),
        "duration": time.monotonic() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


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


def supervise(req: dict[str, Any], parent_ends: tuple[int, ...], status_fd: int, setup_fd: int) -> NoReturn:
    """PID 1 of the sample's namespace: start the program process, then become the judge."""
    _SETUP_FD[0] = setup_fd
    try:
        for fd in parent_ends:
            os.close(fd)
        os.setsid()
        req["dir"] = JOBS_DIR[0] + "/" + req["job"]
        if req["isolate"]:
            _oom_score_adj("0")
            contain.enter_sample_proc()
        judge_end, program_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        program_setup_read, program_setup_write = os.pipe()
        program_pid = os.fork()
        if program_pid == 0:
            os.close(status_fd)
            os.close(setup_fd)
            judge_end.close()
            os.close(program_setup_read)
            _SETUP_FD[0] = program_setup_write
            start_program(req, program_end.detach(), program_setup_write)
        program_end.close()
        os.close(program_setup_write)
        spec = _prepare_judge(req, status_fd, setup_fd, judge_end.detach(), program_setup_read)
    except BaseException as exc:  # noqa: BLE001 - reported as a sandbox error, never scored
        _setup_failed(exc)
    judge.main(5, 3, spec, program_pid, (4, 6))
    os._exit(0)


def _prepare_judge(req: dict[str, Any], status_fd: int, setup_fd: int, sock: int, program_setup: int) -> Any:
    workdir = req["dir"]
    with open(workdir + "/judge.json", encoding="utf-8") as f:
        spec = json.load(f)
    _arrange_fds(workdir, JUDGE_FILES, [status_fd, setup_fd, sock, program_setup])
    _SETUP_FD[0] = 4
    _contain(req, req["uids"][0], "judge")
    return spec  # fds 4 and 6 (the setup pipes) stay open until the program process has loaded


def start_program(req: dict[str, Any], sock: int, setup_fd: int) -> NoReturn:
    try:
        workdir = req["dir"]
        with open(workdir + "/program.py", encoding="utf-8") as f:
            source = f.read()
        _arrange_fds(workdir, PROGRAM_FILES, [sock, setup_fd])
        _SETUP_FD[0] = 4
        _contain(req, req["uids"][1], "program")
        os.close(4)
    except BaseException as exc:  # noqa: BLE001 - the judge turns it into a sandbox error
        _setup_failed(exc)
    with contextlib.suppress(BaseException):  # the judge is gone or the channel broke: just end
        program.main(3, source)
    os._exit(0)


def _arrange_fds(workdir: str, files: tuple[str, ...], extra: list[int]) -> None:
    """0: /dev/null, 1-2: the side's output files, 3...: `extra`; every other descriptor closed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    sources = [os.open(os.devnull, os.O_RDONLY)]
    sources += [os.open(f"{workdir}/{name}", flags, 0o600) for name in files[1:]] + extra
    for target, fd in enumerate([fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in sources]):
        os.dup2(fd, target)  # via fds >= 100, so no source is clobbered before it is used
    os.closerange(len(sources), resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def _contain(req: dict[str, Any], uid: int, side: str) -> None:
    if req["isolate"]:
        # the judge runs trusted test code: a private /tmp is enough (the others stay read-only)
        contain.enter_private_tmp(req["tmp_mb"], ("/tmp",) if side == "judge" else contain.TMP_DIRS)
    contain.set_limits(req["limits"])
    cwd = "/tmp" if req["isolate"] else f"{req['dir']}/home-{side}"
    contain.become(uid if req["isolate"] else None, {**req["env"], "HOME": cwd, "TMPDIR": cwd}, cwd)


def _setup_failed(exc: BaseException) -> NoReturn:
    message = (type(exc).__name__ + ": " + str(exc)).encode("utf-8", "replace")[:4096]
    with contextlib.suppress(OSError):
        os.write(_SETUP_FD[0], message)
    os._exit(SETUP_FAILED)


def _oom_score_adj(value: str) -> None:
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
        f.write(value)


def main() -> None:
    """argv: JOBS_DIR [--once] [--isolate] WARM_MODULE..."""
    jobs_dir, *args = sys.argv[1:]
    flags = {"--once", "--isolate"}
    serve("--once" in args, [a for a in args if a not in flags], jobs_dir, "--isolate" in args)
