"""The built-in visual suite: generated images with exact answers, deterministic from a seed.

    rows = generate(seed=0)   # list of dicts: id, question, answer (list), answer_type, kind, level,
                              # language, image (PNG path in the cache), image_sha256, font

Kinds: bar_chart and line_chart (read a value or name the largest bar), counting (shapes), colour,
position (left/right, above/below, grid neighbour), and text (read a word or phrase in each of the
13 core languages; the question is in English and the answer is the text in its own script). Every
kind has levels 1-3. The same seed gives byte-identical PNGs on the same Pillow and font files; the
font used is recorded per text item. A language whose script has no covering font (or needs shaping
that Pillow lacks) is skipped with a `FontWarning`.

Images are written once under `<cache>/visual_suite/v<VERSION>/<seed>/` (`EVALKIT_CACHE_DIR`, else
`~/.cache/evalkit`), atomically, so parallel runs can share them.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.task.languages import CORE_LANGUAGES, NAMES

if TYPE_CHECKING:
    from evalkit.visual.fonts import FontBook

VERSION = 1
DEFAULT_COUNTS: dict[str, int] = {
    "bar_chart": 33,
    "line_chart": 33,
    "counting": 33,
    "colour": 27,
    "position": 27,
}
DEFAULT_TEXT_PER_LANGUAGE = 6


class FontWarning(UserWarning):
    """A language's text items were skipped because no suitable font (or text shaping) is available."""


def generators() -> dict[str, Callable[..., Any]]:
    """Item makers by kind: (rng, level, fonts) -> Item."""
    from evalkit.visual import charts, scenes

    return {
        "bar_chart": charts.bar_chart,
        "line_chart": charts.line_chart,
        "counting": scenes.counting,
        "colour": scenes.colour,
        "position": scenes.position,
    }


def suite_dir(seed: int) -> Path:
    from evalkit.client.catalog import cache_dir

    return cache_dir() / "visual_suite" / f"v{VERSION}" / str(seed)


def generate(
    seed: int = 0,
    *,
    out_dir: str | Path | None = None,
    counts: Mapping[str, int] | None = None,
    text_per_language: int = DEFAULT_TEXT_PER_LANGUAGE,
    languages: Iterable[str] = CORE_LANGUAGES,
    fonts: FontBook | None = None,
) -> list[dict[str, Any]]:
    """Generate (or reuse) the suite's images and return one row per item; levels cycle 1, 2, 3.

    fonts: where to find fonts (default: the system's, see `evalkit.visual.fonts.font_dirs`).
    """
    from evalkit.visual.fonts import FontBook

    fonts = fonts or FontBook()
    out = Path(out_dir) if out_dir is not None else suite_dir(seed)
    makers = generators()
    counts = DEFAULT_COUNTS if counts is None else counts
    unknown = set(counts) - set(makers)
    if unknown:
        raise ValueError(f"unknown visual suite kinds {sorted(unknown)}; known: {sorted(makers)}")
    rows = []
    for kind, count in counts.items():
        for index in range(count):
            level = index % 3 + 1
            item = makers[kind](_rng(seed, kind, index), level, fonts)
            rows.append(_row(item, f"{kind}/{index:03d}", kind, level, out))
    rows += _text_rows(seed, fonts, out, languages, text_per_language)
    return rows


def _text_rows(
    seed: int, fonts: FontBook, out: Path, languages: Iterable[str], per_language: int
) -> list[dict[str, Any]]:
    from evalkit.visual.text import WORDS, text_reading

    rows = []
    for language in languages:
        if language not in WORDS:
            raise ValueError(f"no words for language {language!r}; known: {', '.join(sorted(WORDS))}")
        font_path, reason = fonts.for_text(language, WORDS[language])
        if font_path is None:
            name = NAMES.get(language, language)
            warnings.warn(f"visual suite: skipping the {name} ({language}) text items: {reason}", FontWarning,
                          stacklevel=3)  # fmt: skip
            continue
        for index in range(per_language):
            level = index % 3 + 1
            item = text_reading(_rng(seed, f"text/{language}", index), level, language, font_path)
            rows.append(_row(item, f"text/{language}/{index:03d}", "text", level, out))
    return rows


def _rng(seed: int, kind: str, index: int) -> random.Random:
    """One generator per item, so an item does not change when counts or other kinds change."""
    return random.Random(f"evalkit-visual:{VERSION}:{seed}:{kind}:{index}")


def _row(item: Any, item_id: str, kind: str, level: int, out: Path) -> dict[str, Any]:
    from evalkit.visual.draw import png_bytes

    data = png_bytes(item.image)
    path = out / f"{item_id.replace('/', '_')}.png"
    _write_once(path, data)
    return {
        "id": item_id,
        "question": item.question,
        "answer": list(item.targets),
        "answer_type": item.answer_type,
        "kind": kind,
        "level": level,
        "language": item.language,
        "image": str(path),
        "image_sha256": hashlib.sha256(data).hexdigest(),
        "font": item.extra.get("font"),
    }


def _write_once(path: Path, data: bytes) -> None:
    """Write unless the same bytes are there; via a temporary file so readers never see half a PNG."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
