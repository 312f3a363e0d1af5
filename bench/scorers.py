"""Scorer speed: outputs/s of the numeric and extractive (F1) scorers on 100k model outputs.

Outputs are generated deterministically in the shapes real models write: a short answer with an
answer phrase in one of several languages, and a ~1.4k-character chain of thought that ends with an
answer phrase (numeric also without one: the last-number fallback). Half are correct. One process,
scorers built once (as a run does), median of `--repeats` passes over the same outputs.

    python bench/scorers.py [-n 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

from evalkit.scorers import get_scorer
from evalkit.task.spec import Sample

PHRASES = {
    "en": "The answer is {}.",
    "ru": "Ответ: {}.",
    "de": "Die Antwort lautet {}.",
    "fr": "La réponse est {}.",
    "es": "La respuesta es {}.",
    "zh": "答案是 {}。",
    "th": "คำตอบคือ {}",
}
WORDS = [
    "so",
    "we",
    "add",
    "the",
    "two",
    "amounts",
    "then",
    "subtract",
    "what",
    "was",
    "spent",
    "and",
    "divide",
    "by",
    "the",
    "number",
    "of",
    "days",
]
ENTITIES = ["Denver Broncos", "Santa Clara", "Levi's Stadium", "the Golden Gate", "1879", "Nikola Tesla"]


def reasoning(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS) if rng.random() < 0.85 else str(rng.randint(1, 999)))
    return " ".join(words) + ". "


def numeric_cases(n: int, shape: str, rng: random.Random) -> list[tuple[str, Sample]]:
    cases = []
    for i in range(n):
        language = rng.choice(list(PHRASES))
        target = rng.randint(1, 100_000)
        answer = target if rng.random() < 0.5 else target + rng.randint(1, 9)
        text = f"{answer:,}" if answer > 9999 and language == "en" else str(answer)
        if shape == "short":
            output = "Let me compute. " + PHRASES[language].format(text)
        elif shape == "cot":
            output = reasoning(rng, 1400) + PHRASES[language].format(text)
        else:  # no answer phrase: the scorer falls back to the last number
            output = reasoning(rng, 1400) + f"So it is {text}"
        cases.append((output, Sample(id=str(i), input="q", target=str(target), language=language)))
    return cases


def extractive_cases(n: int, shape: str, rng: random.Random) -> list[tuple[str, Sample]]:
    cases = []
    for i in range(n):
        target = rng.choice(ENTITIES)
        answer = target if rng.random() < 0.5 else rng.choice(ENTITIES)
        output = (
            f"The answer is {answer}." if shape == "short" else reasoning(rng, 1400) + f"Answer: {answer}"
        )
        cases.append((output, Sample(id=str(i), input="q", target=[target, f"the {target}"], language="en")))
    return cases


def rate(scorer: Callable, cases: list[tuple[str, Sample]], repeats: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for output, sample in cases:
            scorer(output, sample)
        rates.append(len(cases) / (time.perf_counter() - started))
    return statistics.median(rates), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}, n={args.n}, median of {args.repeats}"
    )
    print("| scorer | outputs | outputs/s (median) | runs | µs/output |")
    print("|---|---|---|---|---|")
    grid = [
        ("numeric", "short", numeric_cases),
        ("numeric", "cot", numeric_cases),
        ("numeric", "cot-no-phrase", numeric_cases),
        ("extractive", "short", extractive_cases),
        ("extractive", "cot", extractive_cases),
    ]
    for name, shape, make in grid:
        cases = make(args.n, shape, random.Random(0))
        median, rates = rate(get_scorer(name), cases, args.repeats)
        runs = ", ".join(f"{r / 1000:.1f}k" for r in rates)
        print(f"| {name} | {shape} | {median:,.0f} | {runs} | {1e6 / median:.1f} |", flush=True)


if __name__ == "__main__":
    main()
