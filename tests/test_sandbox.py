"""Containment of model-written code: network, processes, memory, time, environment, files, leftovers."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest

from evalkit import sandbox as sandbox_module
from evalkit.sandbox import Limits, Sandbox, sandbox_capabilities

REPO = Path(__file__).resolve().parent.parent
ROOT = os.geteuid() == 0


def _our_sandbox_pids() -> list[int]:
    """Live processes running under any uid this test process hands to its sandboxes."""
    low = sandbox_module._UID_BASE + (os.getpid() % 1_000_000) * sandbox_module._UIDS_PER_PROCESS
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(f"/proc/{entry.name}/status").read_text()
            except OSError:
                continue
            uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "Uid: 0")
            state = next((line for line in status.splitlines() if line.startswith("State:")), "")
            if low <= int(uid_line.split()[1]) < low + sandbox_module._UIDS_PER_PROCESS and "Z" not in state:
                found.append(int(entry.name))
    return found


def _our_cgroups() -> list[Path]:
    plan = sandbox_module._probe()
    return [g for parent in plan.cgroups.values() for g in parent.glob(f"evalkit-{os.getpid()}-*")]


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return Sandbox(Limits(timeout_s=3, memory_mb=512, max_processes=16), workers=2)


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    assert _our_sandbox_pids() == [], "a sandboxed process survived its run"
    assert _our_cgroups() == [], "a per-run cgroup was left behind"


def test_capabilities_name_every_layer():
    caps = sandbox_capabilities()
    assert set(caps) >= {"network_isolation", "nproc_limit", "memory_limit", "user", "python", "warnings"}
    if ROOT:
        assert caps["network_isolation"] == "netns"
        assert caps["user"] == "uid-drop"
        assert "rlimit" in caps["nproc_limit"]
        assert caps["warnings"] == []
    else:
        assert caps["warnings"], "a missing layer must come with a warning"


def test_passing_and_failing_programs(box: Sandbox):
    assert box.run("assert sum(range(10)) == 45").status == "pass"
    failed = box.run("def f():\n    return 1\nassert f() == 2, 'wrong answer'")
    assert failed.status == "fail"
    assert failed.detail == "fail: AssertionError: wrong answer"
    assert "program.py" in failed.stderr


@pytest.mark.parametrize("code", ["import sys; sys.exit(0)", "import os; os._exit(0)", "raise SystemExit"])
def test_exiting_early_is_not_a_pass(box: Sandbox, code: str):
    result = box.run(code + "\nassert False")
    assert result.status == "fail"
    assert "before the tests finished" in result.detail


def test_printing_the_success_marker_is_not_a_pass(box: Sandbox):
    result = box.run("print('ok'); import os; os.write(3, b'ok'); os._exit(0)")
    assert result.status == "fail"


def test_no_network_even_to_a_listening_local_port(box: Sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(0.2)

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the port really is reachable from our own process
        accept()
        assert len(accepted) == 1
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        result = box.run(code)
        accept()
    finally:
        server.close()
    if not ROOT:
        pytest.skip("network namespaces need root here")
    assert result.status == "fail"
    assert "OSError" in result.detail or "ConnectionRefused" in result.detail
    assert len(accepted) == 1, "the sandboxed program reached the listening socket"


def test_fork_bomb_is_contained_and_cleaned_up(box: Sandbox):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = box.run(code)
    assert result.status in ("timeout", "fail", "crash")
    # the autouse fixture proves no forked process survived


def test_background_children_are_killed_after_a_normal_exit(box: Sandbox):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
    )
    assert box.run(code).status == "pass"


def test_allocating_8_gb_is_contained(box: Sandbox):
    result = box.run("block = bytearray(8 * 1024**3)\nassert False")
    assert result.status == "crash"
    assert "memory" in result.detail.lower()


def test_growing_memory_is_contained(box: Sandbox):
    result = box.run("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))\n")
    assert result.status == "crash"


def test_infinite_loop_is_killed_on_time():
    box = Sandbox(Limits(timeout_s=1), workers=1)
    result = box.run("while True:\n    pass\n")
    assert result.status == "timeout"
    assert result.duration_s < 1 + 5  # killed, not left to run: a bound, not a speed target


def test_sleeping_program_is_killed_on_wall_clock():
    result = Sandbox(Limits(timeout_s=1), workers=1).run("import time\ntime.sleep(30)\n")
    assert result.status == "timeout"
    assert result.duration_s < 1 + 5


def test_api_keys_are_not_visible(box: Sandbox, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-test-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
    code = (
        "import os\n"
        "assert 'ROUTERAI_API_KEY' not in os.environ and 'OPENAI_API_KEY' not in os.environ\n"
        "assert 'sk-test-secret-value' not in repr(dict(os.environ))\n"
        f"try:\n    data = open('/proc/{os.getpid()}/environ', 'rb').read()\n"
        "except OSError:\n    data = b''\n"
        "assert b'sk-test-secret-value' not in data\n"
        "print(sorted(os.environ))\n"
    )
    result = box.run(code)
    assert result.status == "pass", result.stderr
    assert "sk-test" not in result.stdout


@pytest.mark.skipif(not ROOT, reason="only an unprivileged uid keeps the project read-only")
def test_writing_outside_the_temp_dir_does_not_touch_the_project(box: Sandbox):
    target = REPO / "sandbox_escape_probe.txt"
    code = f"open({str(target)!r}, 'w').write('escaped')\n"
    result = box.run(code)
    assert result.status == "fail"
    assert "PermissionError" in result.detail
    assert not target.exists()
    inside = box.run(
        "open('scratch.txt', 'w').write('x' * 100)\nassert open('scratch.txt').read() == 'x' * 100\n"
    )
    assert inside.status == "pass"


def test_each_run_gets_a_fresh_removed_directory(box: Sandbox):
    result = box.run("import os\nprint(os.getcwd())\nassert os.listdir('.') == ['program.py'] or True\n")
    workdir = result.stdout.strip()
    assert workdir and not Path(workdir).exists()


def test_huge_output_is_truncated(box: Sandbox):
    result = box.run("import sys\nsys.stderr.write('e' * 1_000_000)\nprint('x' * 1_000_000)\n")
    assert result.status == "pass"
    assert len(result.stdout) <= box.limits.max_output_bytes + 1
    assert len(result.stderr) <= box.limits.max_output_bytes + 1


def test_crash_by_signal(box: Sandbox):
    result = box.run("import ctypes\nctypes.string_at(0)\n")  # a real fault: the kernel delivers it
    assert result.status == "crash"
    assert "SIGSEGV" in result.detail


def test_run_many_keeps_order_and_is_thread_safe(box: Sandbox):
    programs = [f"assert {i} % 3 != 0" for i in range(12)]
    results: dict[int, list[str]] = {}

    def worker(index: int) -> None:
        results[index] = [r.status for r in box.run_many(programs)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = ["fail" if i % 3 == 0 else "pass" for i in range(12)]
    assert all(statuses == expected for statuses in results.values())
