"""`evalkit doctor`: what works on this machine, what is degraded, and how to fix each.

The local checks need no key and no network: Python and package versions, the sandbox's
capabilities (asked of the sandbox itself), fonts for every script of the visual suite, headless
Chromium for reports, write access and free space in the results and cache folders, and the age of
the catalog cache. `--live` adds the router's conformance (`evalkit/doctor/conformance.py`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.doctor.conformance import LiveReport
    from evalkit.visual.fonts import FontBook

MIN_FREE_BYTES = 1 << 30
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class Check:
    """One local check: `ok` False means degraded, and `fix` says what to do about it."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


def local_checks(
    *,
    results: Path | None = None,
    cache: Path | None = None,
    capabilities: Callable[[], dict[str, Any]] | None = None,
    fonts: FontBook | None = None,
) -> list[Check]:
    """Every local check, in the order they are shown. Arguments replace what is looked up."""
    from evalkit.client.catalog import cache_dir
    from evalkit.results import results_dir

    return [
        check_python(),
        check_packages(),
        check_sandbox(capabilities),
        check_fonts(fonts),
        check_chromium(),
        check_folder("results folder", results or results_dir(), "EVALKIT_RESULTS_DIR or --out"),
        check_folder("cache folder", cache or cache_dir(), "EVALKIT_CACHE_DIR"),
        check_catalog_cache(),
    ]


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        return Check("python", False, f"Python {version}", f"use Python {wanted} or newer")
    return Check("python", True, f"Python {version} ({sys.executable})")


def check_packages(requirements: Iterable[str] | None = None) -> Check:
    """Every dependency that evalkit declares is installed, at its declared minimum version or newer."""
    from importlib import metadata

    found, problems = [], []
    for name, minimum in _requirements(requirements):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is missing")
            continue
        if minimum and _version(have) < _version(minimum):
            problems.append(f"{name} {have} is older than {minimum}")
        found.append(f"{name} {have}")
    if problems:
        return Check(
            "packages", False, "; ".join(problems), 'pip install -e ".[dev]" in the evalkit checkout'
        )
    return Check("packages", True, ", ".join(found))


def _requirements(given: Iterable[str] | None) -> list[tuple[str, str | None]]:
    """(name, minimum) of each base dependency: from the installed metadata, else the checkout's pyproject."""
    lines = list(given) if given is not None else _declared()
    wanted = []
    for line in lines:
        if ";" in line:  # an optional extra (`; extra == "dev"`)
            continue
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(?:>=\s*([0-9][0-9.]*))?", line)
        if match:
            wanted.append((match.group(1), match.group(2)))
    return wanted


def _declared() -> list[str]:
    from importlib import metadata

    try:
        return list(metadata.requires("evalkit") or [])
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return list(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])
        except (OSError, KeyError, ValueError):
            return []


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_sandbox(capabilities: Callable[[], dict[str, Any]] | None = None) -> Check:
    """What the sandbox for model-written code can enforce here, as the sandbox itself reports it."""
    from evalkit.common.errors import EvalkitError

    if capabilities is None:
        from evalkit.sandbox import sandbox_capabilities as capabilities
    try:
        caps = capabilities()
    except EvalkitError as exc:
        return Check("sandbox", False, str(exc), "install python3 for the sandbox (apt-get install python3)")
    detail = (
        f"launcher {caps.get('launcher')}; network {caps.get('network_isolation')}, user {caps.get('user')}, "
        f"processes {caps.get('nproc_limit')}, memory {caps.get('memory_limit')}"
    )
    warnings = list(caps.get("warnings") or [])
    if warnings:
        fix = (
            "run as root on Linux with user namespaces (unshare) and setpriv available "
            "(in a container: --privileged or CAP_SYS_ADMIN) and cgroup v2 writable"
        )
        return Check("sandbox", False, detail + "; " + "; ".join(warnings), fix)
    return Check("sandbox", True, detail)


def check_fonts(fonts: FontBook | None = None) -> Check:
    """A font (and text shaping where needed) for every script of the generated visual suite."""
    from evalkit.task.languages import CORE_LANGUAGES
    from evalkit.visual.fonts import PACKAGE_HINT, SCRIPTS, FontBook
    from evalkit.visual.text import WORDS

    fonts = fonts or FontBook()
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for language in CORE_LANGUAGES:
        script = SCRIPTS.get(language, "latin")
        path, reason = fonts.for_text(language, WORDS[language])
        if path is None:
            missing.setdefault(script, reason)
        elif script not in missing:
            found.setdefault(script, path.name)
    for script in missing:
        found.pop(script, None)
    detail = ", ".join(f"{script}: {name}" for script, name in found.items())
    if missing:
        lost = "; ".join(f"{script}: {reason}" for script, reason in missing.items())
        return Check("fonts", False, f"{lost} (the visual suite skips those languages)", PACKAGE_HINT)
    return Check("fonts", True, detail)


def check_chromium() -> Check:
    """Headless Chromium, which renders the HTML report to a screenshot or PDF."""
    for name in BROWSERS:
        if path := shutil.which(name):
            version = _version_of(path)
            return Check("chromium", True, f"{path}" + (f" ({version})" if version else ""))
    return Check(
        "chromium",
        False,
        "no headless Chromium on PATH: reports are written but cannot be rendered here",
        "apt-get install chromium",
    )


def _version_of(path: str) -> str | None:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def check_folder(name: str, folder: Path, setting: str, *, min_free: int = MIN_FREE_BYTES) -> Check:
    """The folder exists or can be made, a file can be written in it, and its disk has room."""
    made = _missing_parents(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".evalkit-doctor-"):
            pass
    except OSError as exc:
        return Check(
            name, False, f"{folder} is not writable ({exc.strerror or exc})", f"choose another with {setting}"
        )
    finally:
        for path in made:  # leave the disk as it was
            _rmdir(path)
    free = shutil.disk_usage(_existing(folder)).free
    detail = f"{folder.absolute()} writable, {free / (1 << 30):.1f} GiB free"
    if free < min_free:
        return Check(name, False, detail, f"free some space or choose another folder with {setting}")
    return Check(name, True, detail)


def _missing_parents(folder: Path) -> list[Path]:
    """The folders `mkdir(parents=True)` would create, deepest first."""
    made = []
    path = folder.absolute()
    while not path.exists() and path != path.parent:
        made.append(path)
        path = path.parent
    return made


def _existing(folder: Path) -> Path:
    path = folder.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def check_catalog_cache(now: float | None = None) -> Check:
    """The router's catalog cached by `evalkit models`: present and younger than its 24 h lifetime."""
    from evalkit.client import Endpoint
    from evalkit.client.catalog import CACHE_TTL_S, cache_path

    path = cache_path(Endpoint.from_env(required=False))
    try:
        fetched_at = float(json.loads(path.read_text(encoding="utf-8"))["fetched_at"])
    except FileNotFoundError:
        return Check("catalog cache", True, "none yet: the first run or `evalkit models` fetches it")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Check("catalog cache", False, f"{path} is unreadable ({exc})", f"delete {path}")
    age_h = ((time.time() if now is None else now) - fetched_at) / 3600
    if age_h * 3600 > CACHE_TTL_S:
        return Check(
            "catalog cache",
            False,
            f"{age_h:.0f} h old (stale after {CACHE_TTL_S / 3600:.0f} h): offline runs fall back to bundled prices",
            "evalkit models --refresh",
        )
    return Check("catalog cache", True, f"{age_h:.1f} h old")


# --------------------------------------------------------------------------------------------
# Output


def format_local(checks: Sequence[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = ["this machine:"]
    for c in checks:
        mark = "ok      " if c.ok else "DEGRADED"
        lines.append(f"  {mark}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"  {'':8}  {'':<{width}}  fix: {c.fix}")
    return "\n".join(lines)


_MARKS = {"conforms": "conforms", "differs": "DIFFERS ", "not_seen": "not seen"}


def format_live(report: LiveReport) -> str:
    from evalkit.client.dialect import QUIRKS

    width = max(len(q.name) for q in QUIRKS)
    lines = [f"the router at {report.base_url}, model {report.model}:"]
    for quirk in QUIRKS:
        finding = report.findings[quirk.name]
        lines.append(f"  {_MARKS[finding.status]}  {quirk.name:<{width}}  {finding.detail}")
    lines += [f"  skipped: {reason}" for reason in report.skipped]
    estimated = report.spent_estimated_rub
    lines.append(
        f"spent {report.spent_rub:.6f} ₽ of a {report.budget_rub:g} ₽ budget"
        + (f" ({estimated:.6f} ₽ of it estimated: the router did not report a cost)" if estimated else "")
    )
    return "\n".join(lines)


def write_json(path: Path, checks: Sequence[Check], live: LiveReport | None, secret: str = "") -> None:
    """The conformance report a user can attach to a bug report; `secret` (the key) never appears in it."""
    from importlib import metadata

    try:
        openai_version = metadata.version("openai")
    except metadata.PackageNotFoundError:
        openai_version = None
    payload = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "openai": openai_version,
        "local": [vars(c) for c in checks],
        "live": live.to_json() if live is not None else None,
    }
    text = json.dumps(payload, ensure_ascii=False, indent=1)
    if secret:
        text = text.replace(secret, "***")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def scrub(text: str, secret: str) -> str:
    """`text` without the key (routers sometimes echo what they were sent)."""
    return text.replace(secret, "***") if secret else text
