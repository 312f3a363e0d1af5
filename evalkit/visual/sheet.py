"""A contact sheet of generated items with their questions and answers, to check them by eye.

python -m evalkit.visual.sheet docs/vision_contact_sheet.png [--seed 0] [--items 24]
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from evalkit.visual.draw import font, png_bytes
from evalkit.visual.fonts import FontBook

CELL_W, CELL_H, CAPTION_H = 300, 215, 70


def pick(rows: Sequence[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """A spread: each kind at levels 1, 2, 3, then text items cycling through languages and levels."""
    chosen: list[dict[str, Any]] = []
    for kind in dict.fromkeys(row["kind"] for row in rows if row["kind"] != "text"):
        items = [row for row in rows if row["kind"] == kind]
        chosen += [next(r for r in items[4:] + items if r["level"] == level) for level in (1, 2, 3)]
    texts = [row for row in rows if row["kind"] == "text"]
    languages = list(dict.fromkeys(row["language"] for row in texts))
    for i, language in enumerate(languages[: max(0, count - len(chosen))]):
        chosen.append(next(r for r in texts if r["language"] == language and r["level"] == i % 3 + 1))
    return chosen[:count]


def contact_sheet(rows: Sequence[dict[str, Any]], columns: int = 4) -> Image.Image:
    fonts = FontBook()
    caption = font(fonts.ui(), 11)
    answer_font = _answer_font(fonts)
    lines = (len(rows) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * CELL_W, lines * (CELL_H + CAPTION_H)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        x, y = (i % columns) * CELL_W, (i // columns) * (CELL_H + CAPTION_H)
        with Image.open(row["image"]) as image:
            thumb = image.convert("RGB")
        thumb.thumbnail((CELL_W - 10, CELL_H - 10))
        sheet.paste(thumb, (x + 5, y + 5))
        question = textwrap.shorten(f"{row['id']} L{row['level']}: {row['question']}", 150)
        draw.multiline_text((x + 5, y + CELL_H), textwrap.fill(question, 52), font=caption, fill=(60, 60, 60))
        face = answer_font.get(row.get("language")) or caption
        draw.text((x + 5, y + CELL_H + 48), "=", font=caption, fill=(180, 0, 0))
        draw.text((x + 18, y + CELL_H + 46), row["answer"][0], font=face, fill=(180, 0, 0))
        draw.rectangle((x, y, x + CELL_W - 1, y + CELL_H + CAPTION_H - 1), outline=(200, 200, 200))
    return sheet


def _answer_font(fonts: FontBook) -> dict[str | None, Any]:
    from evalkit.visual.text import WORDS

    faces: dict[str | None, Any] = {}
    for language, words in WORDS.items():
        path, _ = fonts.for_text(language, words)
        if path is not None:
            faces[language] = font(path, 14)
    return faces


def main(argv: Sequence[str] | None = None) -> None:
    from evalkit.visual import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--items", type=int, default=24)
    args = parser.parse_args(argv)
    rows = pick(generate(args.seed), args.items)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png_bytes(contact_sheet(rows)))
    print(f"wrote {args.out} ({len(rows)} items)")


if __name__ == "__main__":
    main()
