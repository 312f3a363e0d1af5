"""A seccomp filter that refuses, from inside the sandbox, new namespaces and mount changes, and
the kernel objects that are shared with other samples and the host however private the files are.

Why seccomp: it is per process and inherited by every child, needs no privilege once
`no_new_privs` is set, and cannot be undone; the alternative, `user.max_user_namespaces = 0`, is a
machine-wide setting that would also break the host's own containers. Refused (EPERM):

- `unshare`, `setns`, `mount`, `umount2`, `pivot_root`, and `clone` with any CLONE_NEW* flag;
  `clone3` gets ENOSYS (its flags are in memory a filter cannot read; glibc then falls back to
  `clone`);
- the kernel keyring (`add_key`, `request_key`, `keyctl`): it is not namespaced, so a key outlives
  its sample and another sample can read it by serial (Docker's default profile refuses it too);
- file locks (`flock`; `fcntl` F_GETLK/F_SETLK/F_SETLKW and their OFD forms) and change
  notifications (`inotify_init`, `inotify_init1`, `inotify_add_watch`, `fanotify_init`, which an
  unprivileged process may use on any file it can read; `fcntl` F_NOTIFY): the system files every
  sample sees are the same inodes, so a lock or an open watched by one sample is seen by another
  running at the same time, a channel between them (and a lock on a system file would block the
  host). The price: SQLite on a file, which locks it, fails ("access permission denied").

Other architectures' system calls (e.g. i386 through `int 0x80`) kill the process.
"""

from __future__ import annotations

import ctypes
import platform
import struct
from typing import Any

_REFUSED = ("unshare", "setns", "mount", "umount2", "pivot_root", "add_key", "request_key", "keyctl",
            "flock", "inotify_init", "inotify_init1", "inotify_add_watch", "fanotify_init")  # fmt: skip
# audit architecture, system call numbers (absent: the machine has no such call)
_SYSCALLS: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
                            "add_key": 248, "request_key": 249, "keyctl": 250, "flock": 73,
                            "inotify_init": 253, "inotify_init1": 294, "inotify_add_watch": 254, "fanotify_init": 300,
                            "clone": 56, "clone3": 435, "fcntl": 72}),
    "aarch64": (0xC00000B7, {"unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
                             "add_key": 217, "request_key": 218, "keyctl": 219, "flock": 32,
                             "inotify_init1": 26, "inotify_add_watch": 27, "fanotify_init": 262,
                             "clone": 220, "clone3": 435, "fcntl": 25}),
}  # fmt: skip
CLONE_NEW_FLAGS = 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00020000
# ^ NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWNS
FCNTL_REFUSED = (5, 6, 7, 36, 37, 38, 1026)  # F_GETLK, F_SETLK, F_SETLKW, F_OFD_*, F_NOTIFY
_X32_BIT = 0x40000000
_EPERM, _ENOSYS = 1, 38
_RET_ALLOW, _RET_ERRNO, _RET_KILL = 0x7FFF0000, 0x00050000, 0x80000000
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low 32 bits of args)


def supported() -> bool:
    return platform.machine() in _SYSCALLS


def program() -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jump-if-true, jump-if-false, k) instructions."""
    arch, numbers = _SYSCALLS[platform.machine()]
    # (code, label-if-true, label-if-false, k): jumps name labels, resolved below
    code: list[tuple[int, str | None, str | None, int] | str] = [
        (_LD_ABS_W, None, None, _ARCH),
        (_JEQ, None, "kill", arch),
        (_LD_ABS_W, None, None, _NR),
    ]
    if arch == 0xC000003E:
        code.append((_JGE, "eperm", None, _X32_BIT))
    code += [(_JEQ, "eperm", None, numbers[name]) for name in _REFUSED if name in numbers]
    code += [
        (_JEQ, "enosys", None, numbers["clone3"]),
        (_JEQ, "clone", None, numbers["clone"]),
        (_JEQ, "fcntl", None, numbers["fcntl"]),
        (_RET, None, None, _RET_ALLOW),
        "clone",
        (_LD_ABS_W, None, None, _ARG0),
        (_JSET, "eperm", "allow", CLONE_NEW_FLAGS),
        "fcntl",
        (_LD_ABS_W, None, None, _ARG1),
        *[(_JEQ, "eperm", None, cmd) for cmd in FCNTL_REFUSED],
        "allow",
        (_RET, None, None, _RET_ALLOW),
        "eperm",
        (_RET, None, None, _RET_ERRNO | _EPERM),
        "enosys",
        (_RET, None, None, _RET_ERRNO | _ENOSYS),
        "kill",
        (_RET, None, None, _RET_KILL),
    ]
    return _assemble(code)


def _assemble(code: list[tuple[int, str | None, str | None, int] | str]) -> list[tuple[int, int, int, int]]:
    labels: dict[str, int] = {}
    insns: list[tuple[int, str | None, str | None, int]] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)

    def offset(label: str | None, at: int) -> int:
        return 0 if label is None else labels[label] - at - 1

    return [(op, offset(t, i), offset(f, i), k) for i, (op, t, f, k) in enumerate(insns)]


_PREPARED: list[Any] = []  # (the filter's bytes, the sock_fprog pointing at them, libc)


def prepare() -> None:
    """Build the filter once (the zygote does, before it forks): `install` then costs one call."""
    if _PREPARED:
        return
    insns = program()
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in insns)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = _Prog(len(insns), ctypes.cast(buffer, ctypes.c_void_p))
    # the function looked up here, once: a lookup in each child would build it again there
    _PREPARED.extend((buffer, prog, ctypes.CDLL(None, use_errno=True).prctl))


def install() -> None:
    """Install the filter on this thread (and every child it makes); needs `no_new_privs`."""
    prepare()
    _, prog, prctl = _PREPARED
    if prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        import os

        raise OSError(err, "cannot install the seccomp filter: " + os.strerror(err))
