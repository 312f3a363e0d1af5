"""Drawing primitives shared by the generated items: colours, shapes, text, deterministic PNG bytes."""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# Colours a person names the same way; the aliases are accepted answers too.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 150, 50),
    "blue": (30, 80, 220),
    "yellow": (240, 200, 0),
    "orange": (245, 125, 0),
    "purple": (130, 50, 180),
    "pink": (245, 120, 190),
    "brown": (125, 75, 30),
    "black": (20, 20, 20),
    "gray": (140, 140, 140),
}
COLOUR_ALIASES: dict[str, tuple[str, ...]] = {"gray": ("grey",), "purple": ("violet",)}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}


@dataclass(frozen=True)
class Blob:
    """A shape placed on a canvas: kind, colour name, centre and radius (half the side for squares)."""

    kind: str
    colour: str
    x: float
    y: float
    r: float


def canvas(width: int, height: int, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    return Image.new("RGB", (width, height), background)


def draw_blob(draw: ImageDraw.ImageDraw, blob: Blob) -> None:
    fill, x, y, r = COLOURS[blob.colour], blob.x, blob.y, blob.r
    outline = (0, 0, 0) if blob.colour != "black" else (90, 90, 90)
    if blob.kind == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=outline, width=2)
    elif blob.kind == "square":
        side = r * 0.85
        draw.rectangle((x - side, y - side, x + side, y + side), fill=fill, outline=outline, width=2)
    else:
        points = [
            (x + r * math.cos(a), y + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
        draw.polygon(points, fill=fill, outline=outline, width=2)


def scatter(
    rng: random.Random, specs: list[tuple[str, str, float]], width: int, height: int, margin: float = 8
) -> list[Blob]:
    """Place (kind, colour, radius) shapes at random without overlap; retries with a new layout."""
    for _ in range(200):
        placed: list[Blob] = []
        for kind, colour, r in specs:
            for _ in range(300):
                x = rng.uniform(r + margin, width - r - margin)
                y = rng.uniform(r + margin, height - r - margin)
                if all(math.hypot(x - b.x, y - b.y) > r + b.r + margin for b in placed):
                    placed.append(Blob(kind, colour, x, y, r))
                    break
            else:
                break
        if len(placed) == len(specs):
            return placed
    raise RuntimeError(f"cannot place {len(specs)} shapes on a {width}x{height} canvas")


def font(path: Path, size: int, language: str | None = None) -> ImageFont.FreeTypeFont:
    from PIL import features

    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=engine)


def centred_text(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    text: str,
    face: ImageFont.FreeTypeFont,
    fill: tuple[int, int, int] = (0, 0, 0),
    language: str | None = None,
) -> None:
    """Draw `text` centred in `box` (left, top, right, bottom), shaped for `language`."""
    kwargs = {"language": language} if language and face.layout_engine == ImageFont.Layout.RAQM else {}
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face, **kwargs)
    x = (box[0] + box[2]) / 2 - (left + right) / 2
    y = (box[1] + box[3]) / 2 - (top + bottom) / 2
    draw.text((x, y), text, font=face, fill=fill, **kwargs)


def text_width(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont) -> float:
    left, _, right, _ = draw.textbbox((0, 0), text, font=face)
    return right - left


def png_bytes(image: Image.Image) -> bytes:
    """PNG with no metadata (no time, no software tag): the same pixels give the same bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
