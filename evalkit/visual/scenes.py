"""Scenes of simple shapes: counting, naming a colour, and relative position, at three levels."""

from __future__ import annotations

import random

from PIL import ImageDraw

from evalkit.visual.draw import COLOUR_ALIASES, COLOURS, PLURALS, SHAPES, Blob, canvas, draw_blob, scatter
from evalkit.visual.fonts import FontBook
from evalkit.visual.item import Item

WIDTH, HEIGHT = 480, 360
# Colours that stay distinct from each other at small sizes (pink/orange/red and brown/black are not).
DISTINCT = ("red", "green", "blue", "yellow", "purple", "black")


def counting(rng: random.Random, level: int, fonts: FontBook) -> Item:
    """How many <kind>s (level 1: only that kind; 2: among other kinds; 3: <colour> <kind>s among look-alikes)."""
    kind = rng.choice(SHAPES)
    others = [k for k in SHAPES if k != kind]
    if level == 1:
        count = rng.randint(2, 6)
        colour = rng.choice(DISTINCT)
        specs = [(kind, colour, 34.0) for _ in range(count)]
        question = f"How many {PLURALS[kind]} are in the image? Answer with a number."
    elif level == 2:
        count = rng.randint(3, 9)
        specs = [(kind, rng.choice(DISTINCT), 26.0) for _ in range(count)]
        specs += [(rng.choice(others), rng.choice(DISTINCT), 26.0) for _ in range(rng.randint(3, 6))]
        question = f"How many {PLURALS[kind]} are in the image? Answer with a number."
    else:
        colour, other_colour = rng.sample(DISTINCT, 2)
        count = rng.randint(4, 12)
        specs = [(kind, colour, 20.0) for _ in range(count)]
        specs += [(kind, other_colour, 20.0) for _ in range(rng.randint(2, 5))]
        specs += [(rng.choice(others), colour, 20.0) for _ in range(rng.randint(2, 5))]
        question = f"How many {colour} {PLURALS[kind]} are in the image? Answer with a number."
    rng.shuffle(specs)
    image = _scene(scatter(rng, specs, WIDTH, HEIGHT))
    return Item(image, question, [str(count)], "number")


def colour(rng: random.Random, level: int, fonts: FontBook) -> Item:
    """What colour is the shape (level 1: alone; 2: among other kinds; 3: the largest of its kind)."""
    kind = rng.choice(SHAPES)
    colours = rng.sample(list(COLOURS), 4)
    if level == 1:
        specs = [(kind, colours[0], 80.0)]
        question = "What colour is the shape in the image? Answer with one colour name."
    elif level == 2:
        others = [k for k in SHAPES if k != kind]
        specs = [(kind, colours[0], 45.0), (others[0], colours[1], 45.0), (others[1], colours[2], 45.0)]
        question = f"What colour is the {kind}? Answer with one colour name."
    else:
        specs = [(kind, colours[0], 60.0), (kind, colours[1], 34.0), (kind, colours[2], 22.0)]
        specs += [(rng.choice(SHAPES), colours[3], 28.0) for _ in range(2)]
        question = f"What colour is the largest {kind}? Answer with one colour name."
    blobs = scatter(rng, specs, WIDTH, HEIGHT, margin=14)
    answer = colours[0]
    return Item(_scene(blobs), question, [answer, *COLOUR_ALIASES.get(answer, ())], "text")


def position(rng: random.Random, level: int, fonts: FontBook) -> Item:
    """Left/right of (level 1), above/below among distractors (2), the neighbour in a 3x3 grid (3)."""
    if level == 3:
        return _grid_neighbour(rng)
    (kind_a, kind_b), (colour_a, colour_b) = rng.sample(SHAPES, 2), rng.sample(DISTINCT, 2)
    first_is_before = rng.random() < 0.5
    near, far = rng.uniform(0.15, 0.35), rng.uniform(0.65, 0.85)
    a_at, b_at = (near, far) if first_is_before else (far, near)
    if level == 1:
        blobs = [Blob(kind_a, colour_a, a_at * WIDTH, rng.uniform(0.3, 0.7) * HEIGHT, 40),
                 Blob(kind_b, colour_b, b_at * WIDTH, rng.uniform(0.3, 0.7) * HEIGHT, 40)]  # fmt: skip
        relation = ("left", "right")
        question = f"Is the {colour_a} {kind_a} to the left or to the right of the {colour_b} {kind_b}? "
        question += "Answer with one word: left or right."
    else:
        blobs = [Blob(kind_a, colour_a, rng.uniform(0.2, 0.8) * WIDTH, a_at * HEIGHT, 30),
                 Blob(kind_b, colour_b, rng.uniform(0.2, 0.8) * WIDTH, b_at * HEIGHT, 30)]  # fmt: skip
        blobs += _distractors(rng, blobs, {(kind_a, colour_a), (kind_b, colour_b)})
        relation = ("above", "below")
        question = f"Is the {colour_a} {kind_a} above or below the {colour_b} {kind_b}? "
        question += "Answer with one word: above or below."
    answer = relation[0] if first_is_before else relation[1]
    return Item(_scene(blobs), question, [answer], "text")


def _grid_neighbour(rng: random.Random) -> Item:
    combos = [(kind, colour) for kind in SHAPES for colour in DISTINCT]
    cells = rng.sample(combos, 9)
    blobs = [
        Blob(kind, colour, WIDTH * (0.2 + 0.3 * (i % 3)), HEIGHT * (0.2 + 0.3 * (i // 3)), 30)
        for i, (kind, colour) in enumerate(cells)
    ]
    moves = {
        "to the right of": (1, 0),
        "to the left of": (-1, 0),
        "directly above": (0, -1),
        "directly below": (0, 1),
    }
    while True:
        i = rng.randrange(9)
        phrase = rng.choice(sorted(moves))
        dx, dy = moves[phrase]
        col, row = i % 3 + dx, i // 3 + dy
        if 0 <= col < 3 and 0 <= row < 3:
            break
    kind, colour = cells[i]
    other_kind, other_colour = cells[row * 3 + col]
    question = (
        f"Which shape is {phrase} the {colour} {kind}? Answer with its colour and shape, for example "
        '"red circle".'
    )
    answer = f"{other_colour} {other_kind}"
    return Item(_scene(blobs), question, [answer, f"the {answer}", f"a {answer}"], "text")


def _distractors(rng: random.Random, fixed: list[Blob], taken: set[tuple[str, str]]) -> list[Blob]:
    free = [(k, c) for k in SHAPES for c in DISTINCT if (k, c) not in taken]
    specs = [(k, c, 22.0) for k, c in rng.sample(free, 2)]
    for _ in range(100):
        extra = scatter(rng, specs, WIDTH, HEIGHT, margin=10)
        if all(((e.x - f.x) ** 2 + (e.y - f.y) ** 2) ** 0.5 > e.r + f.r + 10 for e in extra for f in fixed):
            return extra
    return []


def _scene(blobs: list[Blob]) -> object:
    image = canvas(WIDTH, HEIGHT, (250, 250, 245))
    draw = ImageDraw.Draw(image)
    for blob in blobs:
        draw_blob(draw, blob)
    return image
