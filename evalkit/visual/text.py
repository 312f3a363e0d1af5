"""Reading short text in 13 languages: one word (level 1), two words (2), three words tilted on a
busy background (3). The question is in English; the answer is the text in its own script."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from evalkit.visual.draw import canvas, centred_text, font, text_width
from evalkit.visual.item import Item

# Twelve everyday nouns per language (water, house, book, sun, tree, bread, school, city, friend,
# flower, river, apple), lower case where the script has case (German nouns keep their capital).
WORDS: dict[str, tuple[str, ...]] = {
    "ar": ("ماء", "بيت", "كتاب", "شمس", "شجرة", "خبز", "مدرسة", "مدينة", "صديق", "زهرة", "نهر", "تفاحة"),
    "en": ("water", "house", "book", "sun", "tree", "bread", "school", "city", "friend", "flower", "river", "apple"),
    "fr": ("eau", "maison", "livre", "soleil", "arbre", "pain", "école", "ville", "ami", "fleur", "rivière", "pomme"),
    "de": ("Wasser", "Haus", "Buch", "Sonne", "Baum", "Brot", "Schule", "Stadt", "Freund", "Blume", "Fluss", "Apfel"),
    "hi": ("पानी", "घर", "किताब", "सूरज", "पेड़", "रोटी", "स्कूल", "शहर", "दोस्त", "फूल", "नदी", "सेब"),
    "id": ("air", "rumah", "buku", "matahari", "pohon", "roti", "sekolah", "kota", "teman", "bunga", "sungai", "apel"),
    "it": ("acqua", "casa", "libro", "sole", "albero", "pane", "scuola", "città", "amico", "fiore", "fiume", "mela"),
    "pt": ("água", "casa", "livro", "sol", "árvore", "pão", "escola", "cidade", "amigo", "flor", "rio", "maçã"),
    "es": ("agua", "casa", "libro", "sol", "árbol", "pan", "escuela", "ciudad", "amigo", "flor", "río", "manzana"),
    "tl": ("tubig", "bahay", "aklat", "araw", "puno", "tinapay", "paaralan", "lungsod", "kaibigan", "bulaklak",
           "ilog", "mansanas"),
    "th": ("น้ำ", "บ้าน", "หนังสือ", "ดวงอาทิตย์", "ต้นไม้", "ขนมปัง", "โรงเรียน", "เมือง", "เพื่อน", "ดอกไม้",
           "แม่น้ำ", "แอปเปิล"),
    "vi": ("nước", "nhà", "sách", "mặt trời", "cây", "bánh mì", "trường học", "thành phố", "bạn", "hoa", "sông",
           "táo"),
    "ru": ("вода", "дом", "книга", "солнце", "дерево", "хлеб", "школа", "город", "друг", "цветок", "река", "яблоко"),
}  # fmt: skip
# Thai does not put spaces between words, so a reading without the spaces is right as well.
NO_SPACE_SCRIPTS = frozenset({"th"})
QUESTION = (
    "What text is written in the image? Copy it exactly as written, in its original script and language "
    "(do not translate or transliterate)."
)
SIZES = {1: 64, 2: 48, 3: 40}


def text_reading(rng: random.Random, level: int, language: str, font_path: Path) -> Item:
    words = rng.sample(WORDS[language], level)
    text = " ".join(words)
    face = font(font_path, SIZES[level])
    width, height = 520, 200
    background = (255, 255, 255) if level == 1 else _pale(rng)
    image = canvas(width, height, background)
    draw = ImageDraw.Draw(image)
    if level == 3:
        _clutter(rng, draw, width, height)
    while text_width(draw, text, face) > width - 40:
        face = font(font_path, face.size - 4)
    colour = (0, 0, 0) if level < 3 else rng.choice([(30, 30, 90), (90, 20, 20), (20, 70, 30)])
    centred_text(draw, (0, 0, width, height), text, face, fill=colour, language=language)
    if level == 3:
        image = image.rotate(rng.uniform(-7, 7), resample=Image.Resampling.BICUBIC, fillcolor=background)
    targets = [text]
    if language in NO_SPACE_SCRIPTS and len(words) > 1:
        targets.append("".join(words))
    return Item(image, QUESTION, targets, "text", language=language, extra={"font": font_path.name})


def _pale(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randint(225, 250), rng.randint(225, 250), rng.randint(225, 250))


def _clutter(rng: random.Random, draw: ImageDraw.ImageDraw, width: int, height: int) -> None:
    for _ in range(14):
        shade = tuple(rng.randint(180, 215) for _ in range(3))
        points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(2)]
        draw.line(points, fill=shade, width=rng.randint(1, 3))  # type: ignore[arg-type]
