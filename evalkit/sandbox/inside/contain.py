"""What a sandboxed process does to itself, as root, before it runs anything it did not write:
a private filesystem view, rlimits, its own uid, `no_new_privs`, the seccomp filter.

The filesystem view (built once per zygote, then per sample only /proc and the tmpfs mounts): a
mount namespace whose root is a small read-only tmpfs holding only the system directories (`/usr`,
`/bin`, `/lib*`, `/etc`, read-only), a minimal `/dev`, its own `/proc` (other uids' processes
hidden), and fresh size-capped tmpfs mounts on `/tmp`, `/var/tmp` and `/dev/shm`. The project, the
run's results and cache, the task data files, home directories, other samples' files and the
host's Unix sockets (`/tmp/.X11-unix`, `/run/dbus`) are simply not there. The tmpfs mounts die
with the namespace, so nothing is left behind."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

from . import seccomp

LIBC = ctypes.CDLL(None, use_errno=True)
# looked up once, here: ctypes makes a function on its first lookup, which each child would redo
prctl = LIBC.prctl
CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 32, 4096, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
LIMITS = (("RLIMIT_AS", "mem"), ("RLIMIT_CPU", "cpu"), ("RLIMIT_NPROC", "nproc"),
          ("RLIMIT_FSIZE", "fsize"), ("RLIMIT_NOFILE", "nofile"), ("RLIMIT_CORE", "core"))  # fmt: skip
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


def check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, what + ": " + os.strerror(err))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def encode(s):
        return None if s is None else s.encode()

    check(LIBC.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def enter_zygote_root(jobs_dir: str) -> None:
    """Once per zygote: a new mount namespace whose `/` is a read-only tmpfs in `jobs_dir/.root`
    with the system directories, a minimal /dev and mount points for the per-sample /proc and
    tmpfs; nothing of the host's, `jobs_dir` included (a sample's code and tests arrive on pipes)."""
    root = jobs_dir + "/.root"
    check(LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for name in SYSTEM_DIRS:
        _bind_system(f"/{name}", root)
    for prefix in {sys.base_prefix, sys.base_exec_prefix}:  # an interpreter outside /usr
        if not any(prefix == f"/{d}" or prefix.startswith(f"/{d}/") for d in SYSTEM_DIRS):
            _bind_system(prefix, root)
    os.makedirs(root + "/dev")
    mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        open(f"{root}/dev/{name}", "w").close()
        mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND)
    os.symlink("/proc/self/fd", root + "/dev/fd")
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{number}", f"{root}/dev/{name}")
    for path in ("/dev/shm", "/tmp", "/var/tmp", "/proc"):
        os.makedirs(root + path, exist_ok=True)
    os.chdir(root)
    number = _PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(0, "pivot_root: unknown machine " + os.uname().machine)
    check(LIBC.syscall(number, b".", b"."), "pivot_root")  # the old root is stacked under the new
    check(LIBC.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")
    mount(None, "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def enter_sample_proc() -> None:
    """In a sample's PID namespace: its own mount namespace and a /proc of that namespace, where
    other uids' processes are invisible, and its own IPC namespace: System V shared memory,
    semaphores and message queues and POSIX message queues outlive their process, so in the
    host's namespace a program could leave RAM behind or pass data to a later sample; the kernel
    frees the sample's when its last process ends."""
    check(LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(CLONE_NEWNS | CLONE_NEWIPC)")
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
    except OSError:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")


TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def enter_private_tmp(tmp_mb: int) -> None:
    """This process's own mount namespace with fresh, capped temporary directories (`TMP_DIRS`),
    which disappear with it."""
    check(LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    for path in TMP_DIRS:
        mount_tmp(tmp_mb, path)


def mount_tmp(tmp_mb: int, path: str) -> None:
    """A fresh tmpfs of at most `tmp_mb` MB on `path`, in this process's mount namespace."""
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")


def _bind_system(source: str, root: str) -> None:
    target = root + source
    if os.path.islink(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.readlink(source), target)
        return
    if not os.path.isdir(source):
        return
    os.makedirs(target, exist_ok=True)
    mount(source, target, None, MS_BIND | MS_REC)
    flags = os.statvfs(source).f_flag
    kept = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048) | (MS_RELATIME if flags & 4096 else 0)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def set_limits(limits: dict[str, int]) -> None:
    for name, key in LIMITS:
        value = limits[key]
        if value >= 0:
            hard = value + 1 if name == "RLIMIT_CPU" else value
            resource.setrlimit(getattr(resource, name), (value, hard))


def settle(env: dict[str, str], cwd: str) -> None:
    """The working directory and the whole environment (nothing of ours, no API key), and the
    program's name in `sys.argv`."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv[:] = ["program.py"]


def drop(uid: int | None) -> None:
    """Drop to `uid` (no groups, no capabilities), no new privileges, killed with its parent."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    check(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "PR_SET_DUMPABLE")  # /proc/self as after an exec
    check(prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")  # setuid clears it


def refuse_namespaces() -> None:
    """The seccomp filter, installed while still root (CAP_SYS_ADMIN stands in for `no_new_privs`)
    once this process needs no more mounts: what is left to do, the uid drop and `prctl`, it
    allows. Inherited by every child, never removed."""
    if seccomp.supported():
        seccomp.install()
