"""TTFT on a vision run: do image preparation and the event loop get in each other's way?

    python bench/vision_ttft.py [-n 48] [--concurrency 16]

Each sample carries its own large photo-like PNG (noise, so it does not compress), which evalkit must
read, downscale and re-encode before sending. Runs on the bundled simulator with its default latency.
Prints one Markdown row: median and p95 TTFT and latency as recorded, and samples/s. Run it with
`PYTHONPATH=<another checkout>` to measure that checkout's evalkit side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import evalkit
from evalkit.task.spec import Sample, Task


def _images(folder: Path, n: int) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 255, size=(1200, 1600, 3), dtype=np.uint8)
        path = folder / f"photo_{i}.png"
        Image.fromarray(pixels).save(path, compress_level=1)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        samples = [
            Sample(id=str(i), input=f"What is in picture {i}?", target="noise", images=[path])
            for i, path in enumerate(_images(folder, args.n))
        ]
        task = Task(name="photos", family="vision", samples=samples, scorer="exact")
        start = time.perf_counter()
        result = evalkit.run(
            [task], ["meta-llama/llama-4-scout"], sim=True, out=str(folder / "results"),
            concurrency=args.concurrency, progress=False, cache=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        df = result.df  # read before the folder goes
    ttft, latency = df.ttft_s.dropna() * 1000, df.latency_s.dropna() * 1000
    print(
        f"| {Path(evalkit.__file__).parent.parent.name} | {args.n} | {args.concurrency} | "
        f"{ttft.median():.0f} | {ttft.quantile(0.95):.0f} | {latency.median():.0f} | "
        f"{latency.quantile(0.95):.0f} | {args.n / wall:.1f} | {int(df.error.notna().sum())} |"
    )


if __name__ == "__main__":
    main()
