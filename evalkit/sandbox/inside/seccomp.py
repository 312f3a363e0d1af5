"""A seccomp filter that refuses new namespaces and mount changes from inside the sandbox.

Why seccomp: it is per process and inherited by every child, needs no privilege once
`no_new_privs` is set, and cannot be undone; the alternative, `user.max_user_namespaces = 0`, is a
machine-wide setting that would also break the host's own containers. Refused (EPERM): `unshare`,
`setns`, `mount`, `umount2`, `pivot_root`, and `clone` with any CLONE_NEW* flag; `clone3` gets
ENOSYS (its flags are in memory a filter cannot read; glibc then falls back to `clone`). Other
architectures' system calls (e.g. i386 through `int 0x80`) kill the process.
"""

from __future__ import annotations

import ctypes
import platform
import struct

# Syscall numbers per machine: unshare, setns, mount, umount2, pivot_root, clone, clone3.
_SYSCALLS = {
    "x86_64": (0xC000003E, {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155},
               56, 435),
    "aarch64": (0xC00000B7, {"unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41},
                220, 435),
}  # fmt: skip
CLONE_NEW_FLAGS = 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00020000
# ^ NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWNS
_X32_BIT = 0x40000000
_EPERM, _ENOSYS = 1, 38
_RET_ALLOW, _RET_ERRNO, _RET_KILL = 0x7FFF0000, 0x00050000, 0x80000000
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def supported() -> bool:
    return platform.machine() in _SYSCALLS


def program() -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jump-if-true, jump-if-false, k) instructions."""
    arch, denied, clone, clone3 = _SYSCALLS[platform.machine()]
    numbers = list(denied.values())
    n = len(numbers)
    # layout: 0 ld arch; 1 jeq arch; 2 kill; 3 ld nr; 4 jge x32; 5..5+n-1 jeq denied; 5+n jeq clone3;
    # 6+n jeq clone; 7+n allow; 8+n ld flags; 9+n jset; 10+n allow; 11+n eperm; 12+n enosys
    eperm, enosys = 11 + n, 12 + n
    insns = [(_LD_ABS_W, 0, 0, 4), (_JEQ, 1, 0, arch), (_RET, 0, 0, _RET_KILL), (_LD_ABS_W, 0, 0, 0)]
    insns.append((_JGE, eperm - 5, 0, _X32_BIT) if arch == 0xC000003E else (_JEQ, 0, 0, 0))
    for index, number in enumerate(numbers):
        insns.append((_JEQ, eperm - (6 + index), 0, number))
    insns.append((_JEQ, enosys - (6 + n), 0, clone3))
    insns.append((_JEQ, 1, 0, clone))
    insns.append((_RET, 0, 0, _RET_ALLOW))
    insns.append((_LD_ABS_W, 0, 0, 16))  # args[0], low 32 bits (little-endian): the clone flags
    insns.append((_JSET, 1, 0, CLONE_NEW_FLAGS))
    insns.append((_RET, 0, 0, _RET_ALLOW))
    insns.append((_RET, 0, 0, _RET_ERRNO | _EPERM))
    insns.append((_RET, 0, 0, _RET_ERRNO | _ENOSYS))
    return insns


def install() -> None:
    """Install the filter on this thread (and every child it makes); needs `no_new_privs`."""
    insns = program()
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in insns)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = _Prog(len(insns), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        import os

        raise OSError(err, "cannot install the seccomp filter: " + os.strerror(err))
