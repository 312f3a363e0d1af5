"""Fonts for the generated suite: find a font file that really covers a script, or say why not.

A font is used for a language only when its cmap has every character of that language's words
(otherwise Pillow draws boxes, "tofu"). Arabic, Devanagari and Thai also need Pillow's raqm layout
(HarfBuzz shaping): without it Arabic letters come out isolated and unjoined, and Indic/Thai marks
are misplaced, so those languages are skipped rather than rendered wrong.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

# Preferred files per script, best first. All are free fonts from common distro packages
# (fonts-dejavu-core, fonts-noto-core, fonts-liberation, fonts-thai-tlwg, fonts-lohit-deva).
CANDIDATES: dict[str, tuple[str, ...]] = {
    "latin": ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf"),
    "cyrillic": ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf"),
    "arabic": ("NotoSansArabic-Regular.ttf", "NotoNaskhArabic-Regular.ttf", "DejaVuSans.ttf"),
    "devanagari": ("NotoSansDevanagari-Regular.ttf", "Lohit-Devanagari.ttf", "gargi.ttf"),
    "thai": ("NotoSansThai-Regular.ttf", "NotoSerifThai-Regular.ttf", "Loma.ttf", "Garuda.ttf"),
}
BOLD = {"DejaVuSans.ttf": "DejaVuSans-Bold.ttf"}
NEEDS_SHAPING = frozenset({"arabic", "devanagari", "thai"})
SCRIPTS: dict[str, str] = {
    "ar": "arabic", "hi": "devanagari", "th": "thai", "ru": "cyrillic",
    **{lang: "latin" for lang in ("en", "fr", "de", "id", "it", "pt", "es", "tl", "vi")},
}  # fmt: skip
PACKAGE_HINT = "apt-get install fonts-noto-core (and Pillow built with raqm/libraqm for shaping)"


def font_dirs() -> list[Path]:
    """Where fonts are looked for: $EVALKIT_FONT_DIR, the system and user font folders, and
    matplotlib's bundled DejaVu (always present, so Latin and Cyrillic never depend on the system)."""
    dirs = [Path(p) for p in os.environ.get("EVALKIT_FONT_DIR", "").split(os.pathsep) if p]
    dirs += [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts"]
    dirs += [Path.home() / ".fonts", Path("/Library/Fonts"), Path("C:/Windows/Fonts")]
    spec = importlib.util.find_spec("matplotlib")
    for location in (spec and spec.submodule_search_locations) or []:
        dirs.append(Path(location) / "mpl-data" / "fonts" / "ttf")
    return [d for d in dirs if d.is_dir()]


def shaping_available() -> bool:
    from PIL import features

    return bool(features.check("raqm"))


@dataclass
class FontBook:
    """Font files found on this machine, indexed by file name (first found wins)."""

    dirs: list[Path] = field(default_factory=font_dirs)
    _cmaps: dict[Path, set[int]] = field(default_factory=dict, repr=False)

    @cached_property
    def files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for directory in self.dirs:
            for path in sorted(directory.rglob("*.tt[fc]")):
                found.setdefault(path.name, path)
        return found

    def for_text(self, language: str, texts: Iterable[str]) -> tuple[Path | None, str]:
        """The best font covering every character of `texts` in `language`, or (None, the reason)."""
        script = SCRIPTS.get(language, "latin")
        if script in NEEDS_SHAPING and not shaping_available():
            return None, f"Pillow has no raqm text shaping, needed for {script} ({PACKAGE_HINT})"
        needed = {ord(ch) for text in texts for ch in text if not ch.isspace()}
        for name in CANDIDATES[script]:
            path = self.files.get(name)
            if path is not None and needed <= self.cmap(path):
                return path, name
        tried = ", ".join(CANDIDATES[script])
        return None, f"no installed font covers the {script} text (tried {tried}; {PACKAGE_HINT})"

    def ui(self, bold: bool = False) -> Path:
        """The Latin font for chart labels and questions drawn in images."""
        path, _ = self.for_text("en", ["ABCXYZ0123456789"])
        if path is None:
            raise RuntimeError("no Latin font found (matplotlib's DejaVuSans should always be there)")
        bold_path = self.files.get(BOLD.get(path.name, ""))
        return bold_path if bold and bold_path else path

    def cmap(self, path: Path) -> set[int]:
        """The code points a font file has glyphs for (read once per book)."""
        if path not in self._cmaps:
            from fontTools.ttLib import TTFont

            with TTFont(str(path), lazy=True, fontNumber=0) as font:
                self._cmaps[path] = set(font.getBestCmap() or {})
        return self._cmaps[path]
