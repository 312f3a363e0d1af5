"""Image preparation speed: MATH-Vision's 304 JPEGs cold and cached, and generating the visual suite.

python bench/bench_images.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from evalkit.task.images import ImageCache, prepare_image
from evalkit.task.spec import ImageOptions
from evalkit.visual import generate


def bench_prepare(files: list[Path], options: ImageOptions) -> str:
    cache = ImageCache()
    start = time.perf_counter()
    prepared = [prepare_image(f, options, where="bench", cache=cache) for f in files]
    cold = (time.perf_counter() - start) / len(files)
    start = time.perf_counter()
    for _ in range(3):
        for f in files:
            prepare_image(f, options, where="bench", cache=cache)
    warm = (time.perf_counter() - start) / (3 * len(files))
    resized = sum(p.width != p.source_width for p in prepared)
    return (
        f"| {options.max_side} | {cold * 1e3:.1f} | {warm * 1e6:.0f} | {resized}/{len(files)} "
        f"| {cache.size_bytes / 1e6:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    files = sorted((args.data / "math_vision" / "images").glob("*.jpg"))
    print("| max_side | cold ms/image | cached µs/image | resized | cache MB |\n|---|---|---|---|---|")
    for side in (1568, 768):
        print(bench_prepare(files, ImageOptions(max_side=side)))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows = generate(0, out_dir=out)
        first = time.perf_counter() - start
        start = time.perf_counter()
        generate(0, out_dir=out)
        again = time.perf_counter() - start
    print(
        f"\nvisual suite: {len(rows)} items generated in {first:.2f} s, regenerated over the cache in {again:.2f} s"
    )


if __name__ == "__main__":
    main()
