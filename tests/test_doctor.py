"""`evalkit doctor`'s local checks, each with the capability taken away, and the command itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit import sim
from evalkit.cli.commands import main
from evalkit.client import Endpoint
from evalkit.client.catalog import Catalog, cache_path, write_cache
from evalkit.common.errors import ConfigError
from evalkit.doctor import machine as doctor
from evalkit.visual.fonts import PACKAGE_HINT, FontBook, font_dirs

KEY = "sk-doctor-cli-SECRET-77e1b0"


# --------------------------------------------------------------------------------------------
# Folders


def test_a_writable_folder_is_ok_and_a_missing_one_is_not_left_behind(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "results"
    check = doctor.check_folder("results folder", folder, "EVALKIT_RESULTS_DIR")
    assert check.ok and "writable" in check.detail and "GiB free" in check.detail
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_results_folder_that_cannot_be_made_is_degraded(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # under a regular file no folder can be made, whoever we are (root ignores permission bits)
    check = doctor.check_folder("results folder", blocker / "results", "EVALKIT_RESULTS_DIR or --out")
    assert not check.ok
    assert str(blocker / "results") in check.detail and "not writable" in check.detail
    assert check.fix == "choose another with EVALKIT_RESULTS_DIR or --out"
    assert blocker.read_text() == "not a folder"


def _can_bind_read_only() -> bool:
    try:
        return subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_bind_read_only(), reason="needs `unshare --mount` (root) for a read-only bind")
def test_a_read_only_results_folder_is_degraded_even_for_root(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    program = (
        "import sys; from pathlib import Path; from evalkit.doctor import machine as doctor; "
        "c = doctor.check_folder('results folder', Path(sys.argv[1]), 'EVALKIT_RESULTS_DIR'); "
        "print(c.ok, c.detail)"
    )
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" -c "$3" "$1"'
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(folder), sys.executable, program],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False ") and "Read-only file system" in done.stdout
    assert list(folder.iterdir()) == []


def test_a_full_disk_is_degraded(tmp_path: Path) -> None:
    check = doctor.check_folder("cache folder", tmp_path, "EVALKIT_CACHE_DIR", min_free=1 << 62)
    assert not check.ok and "free some space" in (check.fix or "")


# --------------------------------------------------------------------------------------------
# Fonts, browser, sandbox, packages


def test_no_fonts_at_all_degrades_every_script(tmp_path: Path) -> None:
    check = doctor.check_fonts(FontBook(dirs=[tmp_path]))
    assert not check.ok and check.fix == PACKAGE_HINT
    for script in ("latin", "cyrillic", "arabic", "devanagari", "thai"):
        assert f"{script}:" in check.detail


def test_only_matplotlibs_dejavu_covers_latin_and_cyrillic_but_not_the_rest() -> None:
    mpl = [d for d in font_dirs() if d.parts[-3:] == ("mpl-data", "fonts", "ttf")]
    check = doctor.check_fonts(FontBook(dirs=mpl))
    assert not check.ok
    assert "devanagari:" in check.detail and "thai:" in check.detail
    assert "latin:" not in check.detail and "cyrillic:" not in check.detail


def test_no_chromium_on_path_is_degraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    check = doctor.check_chromium()
    assert not check.ok and check.fix == "apt-get install chromium"


def test_a_chromium_on_path_is_found_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\necho 'Chromium 999.0 test build'\n")
    browser.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    check = doctor.check_chromium()
    assert check.ok and check.detail == f"{browser} (Chromium 999.0 test build)"


def test_sandbox_warnings_degrade_and_are_shown() -> None:
    def weak() -> dict[str, object]:
        return {
            "network_isolation": "none",
            "user": "same-user",
            "nproc_limit": "none",
            "memory_limit": "rlimit-as",
            "launcher": "exec",
            "warnings": ["no network isolation: `unshare --net` failed"],
        }

    check = doctor.check_sandbox(weak)
    assert not check.ok and "launcher exec" in check.detail and "unshare --net" in check.detail
    assert check.fix and "CAP_SYS_ADMIN" in check.fix


def test_a_sandbox_that_cannot_start_python_is_degraded() -> None:
    def broken() -> dict[str, object]:
        raise ConfigError("no Python interpreter can be started inside the sandbox", where="sandbox")

    check = doctor.check_sandbox(broken)
    assert not check.ok and "no Python interpreter" in check.detail


def test_the_sandbox_check_reports_what_the_sandbox_says() -> None:
    from evalkit.sandbox import sandbox_capabilities

    caps = sandbox_capabilities()
    check = doctor.check_sandbox()
    assert check.ok == (not caps["warnings"])
    assert f"launcher {caps['launcher']}" in check.detail


def test_missing_and_old_packages_are_degraded() -> None:
    check = doctor.check_packages(
        ["openai[aiohttp]>=999.0", "evalkit-no-such-package>=1", 'pytest>=8; extra == "dev"']
    )
    assert not check.ok
    assert "openai" in check.detail and "older than 999.0" in check.detail
    assert "evalkit-no-such-package is missing" in check.detail
    assert "pytest" not in check.detail  # optional extras are not required


def test_the_declared_packages_are_installed_here() -> None:
    check = doctor.check_packages()
    assert check.ok, check.detail
    assert "openai" in check.detail and "pydantic" in check.detail


def test_python_version() -> None:
    assert doctor.check_python().ok


# --------------------------------------------------------------------------------------------
# Catalog cache


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path))
    for name in ("EVALKIT_BASE_URL", "ROUTERAI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return cache_path(Endpoint.from_env(required=False))


def test_no_catalog_cache_yet_is_fine(cache_home: Path) -> None:
    assert doctor.check_catalog_cache().ok


def test_a_stale_catalog_cache_is_degraded_and_a_fresh_one_is_not(cache_home: Path) -> None:
    day_ago = time.time() - 30 * 3600
    write_cache(Catalog(source="network", fetched_at=day_ago), cache_home)
    check = doctor.check_catalog_cache()
    assert not check.ok and "30 h old" in check.detail and check.fix == "evalkit models --refresh"
    assert doctor.check_catalog_cache(now=day_ago + 3600).ok


def test_an_unreadable_catalog_cache_is_degraded(cache_home: Path) -> None:
    cache_home.parent.mkdir(parents=True, exist_ok=True)
    cache_home.write_text("{not json")
    check = doctor.check_catalog_cache()
    assert not check.ok and check.fix == f"delete {cache_home}"


# --------------------------------------------------------------------------------------------
# The command


def test_doctor_says_what_is_degraded_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EVALKIT_RESULTS_DIR", str(tmp_path / "file" / "results"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "DEGRADED  results folder" in out and "fix: choose another with EVALKIT_RESULTS_DIR" in out
    assert "problem(s)" in out


def test_doctor_live_checks_a_router_and_writes_a_report_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    monkeypatch.setenv("EVALKIT_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    report = tmp_path / "doctor.json"
    with sim.serve(latency_scale=0, api_key=KEY) as server:
        code = main(["doctor", "--live", "--base-url", server.base_url, "--json", str(report)])
    out = capsys.readouterr().out
    local_ok = all(c.ok for c in doctor.local_checks())
    assert code == (0 if local_ok else 1)
    assert "DIFFERS" not in out and "conforms  usage_cost_rub" in out
    assert "spent 0.09" in out and "₽ of a 0.15 ₽ budget" in out
    text = report.read_text(encoding="utf-8")
    assert KEY not in text and KEY not in out
    data = json.loads(text)
    assert data["live"]["base_url"] == server.base_url
    assert {f["status"] for f in data["live"]["findings"].values()} == {"conforms", "not_seen"}
    assert [c["name"] for c in data["local"]][:2] == ["python", "packages"]


def test_doctor_live_without_a_key_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ROUTERAI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVALKIT_RESULTS_DIR", "results")
    assert main(["doctor", "--live", "--base-url", "http://127.0.0.1:9/api/v1"]) == 2
    assert "no API key" in capsys.readouterr().err


def test_doctor_live_on_the_bundled_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVALKIT_RESULTS_DIR", str(tmp_path / "results"))
    report = tmp_path / "sim-doctor.json"
    main(["doctor", "--live", "--sim", "--budget-rub", "0.01", "--json", str(report)])
    data = json.loads(report.read_text(encoding="utf-8"))["live"]
    assert data["budget_rub"] == 0.01 and data["spent_rub"] <= 0.01
    assert [c["probe"] for c in data["calls"]] == ["plain", "stream"]
    assert "differs" not in {f["status"] for f in data["findings"].values()}
    assert "skipped: image:" in capsys.readouterr().out
