"""Bar and line charts with exact answers: read a value (levels 1-3), or name the largest bar.

Level 1 prints the values on the chart, level 2 puts values on gridlines, level 3 needs interpolation
between sparse gridlines (the relaxed 5% tolerance applies) or comparing many bars or two series.
"""

from __future__ import annotations

import math
import random

from PIL import ImageDraw

from evalkit.visual.draw import canvas, centred_text, font
from evalkit.visual.fonts import FontBook
from evalkit.visual.item import Item

CATEGORIES = ("Alpha", "Beta", "Gamma", "Delta", "Omega", "Sigma", "Kappa", "Theta", "Lambda")
BAR_TITLES = ("Units sold by team", "Orders by region", "Visitors by site", "Score by group")
LINE_TITLES = ("Yearly revenue", "Members per year", "Annual output", "Yearly rainfall")
SERIES = (("Sales", (30, 90, 200)), ("Costs", (235, 120, 20)))
STEPS = {1: 20, 2: 10, 3: 50}
WIDTH, HEIGHT = 560, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 535, 60, 335


def bar_chart(rng: random.Random, level: int, fonts: FontBook) -> Item:
    n = {1: rng.randint(3, 4), 2: rng.randint(4, 6), 3: rng.randint(5, 7)}[level]
    names = rng.sample(CATEGORIES, n)
    values, step = _values(rng, level, n)
    ask_max = level == 3 and rng.random() < 0.5
    if ask_max:
        top = max(range(n), key=values.__getitem__)
        values[top] = max(values) + rng.randint(15, 25)  # a clear winner: no ties, no squinting
    image, draw, label_font = _axes(rng.choice(BAR_TITLES), max(values), step, fonts)
    slot = (RIGHT - LEFT) / n
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        x0, x1 = LEFT + slot * (i + 0.2), LEFT + slot * (i + 0.8)
        y = _y(value, max(values), step)
        draw.rectangle((x0, y, x1, BOTTOM), fill=(70, 130, 180), outline=(30, 60, 90))
        centred_text(draw, (x0 - 10, BOTTOM + 6, x1 + 10, BOTTOM + 30), name, label_font)
        if level == 1:
            centred_text(draw, (x0, y - 24, x1, y - 4), str(value), label_font)
    if ask_max:
        winner = names[values.index(max(values))]
        question = "Which category has the highest bar? Answer with the category name."
        return Item(image, question, [winner], "text", extra={"chart": "bar"})
    pick = rng.randrange(n)
    question = f'What is the value of the bar labelled "{names[pick]}"? Answer with a number.'
    return Item(image, question, [str(values[pick])], "number", extra={"chart": "bar"})


def line_chart(rng: random.Random, level: int, fonts: FontBook) -> Item:
    n = {1: 5, 2: 7, 3: 8}[level]
    start = rng.randint(2008, 2016)
    years = list(range(start, start + n))
    series = [_values(rng, level, n)[0] for _ in range(2 if level == 3 else 1)]
    step = STEPS[level]
    top_value = max(max(s) for s in series)
    image, draw, label_font = _axes(rng.choice(LINE_TITLES), top_value, step, fonts)
    xs = [LEFT + (RIGHT - LEFT) * (i + 0.5) / n for i in range(n)]
    for year, x in zip(years, xs, strict=True):
        draw.line((x, BOTTOM, x, BOTTOM + 5), fill=(0, 0, 0))
        centred_text(draw, (x - 30, BOTTOM + 6, x + 30, BOTTOM + 30), str(year), label_font)
    for (_, colour), values in zip(SERIES, series, strict=False):
        points = [(x, _y(v, top_value, step)) for x, v in zip(xs, values, strict=True)]
        draw.line(points, fill=colour, width=3)
        for x, y in points:
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        if level == 1:
            for i, ((x, y), value) in enumerate(zip(points, values, strict=True)):
                centred_text(draw, _label_box(x, y, values, i), str(value), label_font)
    pick = rng.randrange(n)
    if level == 3:
        _legend(draw, label_font)
        which = rng.randrange(2)
        question = f'What is the value of "{SERIES[which][0]}" in {years[pick]}? Answer with a number.'
        return Item(image, question, [str(series[which][pick])], "number", extra={"chart": "line"})
    question = f"What is the value in {years[pick]}? Answer with a number."
    return Item(image, question, [str(series[0][pick])], "number", extra={"chart": "line"})


def _label_box(x: float, y: float, values: list[int], i: int) -> tuple[float, float, float, float]:
    """Above the point, or below it at a dip, where a label above would sit on the line."""
    neighbours = [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]
    dip = values[i] < min(neighbours)
    return (x - 20, y + 8, x + 20, y + 26) if dip else (x - 20, y - 26, x + 20, y - 8)


def _values(rng: random.Random, level: int, n: int) -> tuple[list[int], int]:
    """Values and the gridline step: round values on a fine grid at level 1-2, any integer at level 3."""
    if level == 1:
        return [rng.randint(1, 10) * 10 for _ in range(n)], STEPS[1]
    if level == 2:
        return [rng.randint(1, 19) * 5 for _ in range(n)], STEPS[2]
    return [rng.randint(20, 190) for _ in range(n)], STEPS[3]


def _scale_top(top_value: int, step: int) -> int:
    return step * max(1, math.ceil((top_value + step * 0.25) / step))


def _y(value: float, top_value: int, step: int) -> float:
    return BOTTOM - (BOTTOM - TOP) * value / _scale_top(top_value, step)


def _axes(title: str, top_value: int, step: int, fonts: FontBook) -> tuple:
    image = canvas(WIDTH, HEIGHT)
    draw = ImageDraw.Draw(image)
    label_font = font(fonts.ui(), 15)
    centred_text(draw, (0, 10, WIDTH, 40), title, font(fonts.ui(bold=True), 19))
    for tick in range(0, _scale_top(top_value, step) + 1, step):
        y = _y(tick, top_value, step)
        draw.line((LEFT, y, RIGHT, y), fill=(215, 215, 215))
        draw.line((LEFT - 5, y, LEFT, y), fill=(0, 0, 0))
        centred_text(draw, (LEFT - 60, y - 10, LEFT - 8, y + 10), str(tick), label_font)
    draw.line((LEFT, TOP - 10, LEFT, BOTTOM), fill=(0, 0, 0), width=2)
    draw.line((LEFT, BOTTOM, RIGHT, BOTTOM), fill=(0, 0, 0), width=2)
    return image, draw, label_font


def _legend(draw: ImageDraw.ImageDraw, label_font: object) -> None:
    x = RIGHT - 190
    for i, (name, colour) in enumerate(SERIES):
        x += i * 95
        y = TOP - 12
        draw.line((x, y, x + 24, y), fill=colour, width=3)
        centred_text(draw, (x + 28, y - 9, x + 90, y + 9), name, label_font)  # type: ignore[arg-type]
