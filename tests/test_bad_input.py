"""Bad input: one clear error naming the file, field or sample; no traceback; nothing half-written
that passes for a complete run. Each case goes through the CLI's `main` (in-process, same path as the
`evalkit` command) against the simulator."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from reliability_helpers import KEY, MODEL, write_task

from evalkit import sim
from evalkit.cli.commands import main
from evalkit.runner.journal import read_manifest


@pytest.fixture(scope="module")
def router() -> Iterator[str]:
    with sim.serve(latency_scale=0) as server:
        yield server.base_url


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _vision_task(directory: Path, image: bytes, extra: str = "") -> Path:
    (directory / "pic.png").write_bytes(image)
    (directory / "pics.jsonl").write_text(
        json.dumps({"id": "p1", "question": "How many?", "target": "3", "image": "pic.png"}) + "\n"
    )
    return _yaml(
        directory / "vision.yaml",
        "name: pics\nfamily: vision\nsource: {path: pics.jsonl, format: json}\n"
        "fields: {id: id, target: target, images: image}\nprompt: {user: '{question}'}\n" + extra,
    )


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, "PNG")
    return buffer.getvalue()


Case = Callable[[Path], tuple[list[str], list[str]]]  # tmp -> (argv after `run`, expected fragments)


def malformed_yaml(tmp: Path) -> tuple[list[str], list[str]]:
    task = _yaml(tmp / "broken.yaml", "name: broken\nsamples: [\n  {id: 1, input: x\n")
    return [str(task)], [str(task), "malformed YAML at line"]


def unknown_scorer(tmp: Path) -> tuple[list[str], list[str]]:
    task = write_task(tmp, 3)
    task.write_text(task.read_text().replace("scorer: numeric", "scorer: numerik"))
    return [str(task)], [str(task), "scorer", "numerik"]


def missing_template_variable(tmp: Path) -> tuple[list[str], list[str]]:
    task = write_task(tmp, 3)
    task.write_text(task.read_text().replace("'{question}'", "'{question} {context}'"))
    return [str(task)], [str(task), "{context}", "sample 'q000'"]


def empty_dataset(tmp: Path) -> tuple[list[str], list[str]]:
    task = write_task(tmp, 3)
    (tmp / "arith_local.jsonl").write_text("")
    return [str(task)], [str(task), "empty"]


def invalid_utf8(tmp: Path) -> tuple[list[str], list[str]]:
    task = write_task(tmp, 3)
    data = tmp / "arith_local.jsonl"
    data.write_bytes(data.read_bytes() + b'{"id": "bad", "question": "caf\xe9?", "target": 1}\n')
    return [str(task)], [str(data), "UTF-8", "line 4"]


def unreadable_image(tmp: Path) -> tuple[list[str], list[str]]:
    task = _vision_task(tmp, b"this is not a picture at all")
    return [str(task), "--model", "meta-llama/llama-4-scout"], ["pic.png", "p1"]


def oversized_image(tmp: Path) -> tuple[list[str], list[str]]:
    task = _vision_task(tmp, _png((400, 300)), "images: {max_pixels: 10000}\n")
    return [str(task), "--model", "meta-llama/llama-4-scout"], ["pic.png", "10000"]


def unknown_model(tmp: Path) -> tuple[list[str], list[str]]:
    return [str(write_task(tmp, 3)), "--model", "nobody/no-such-model"], ["nobody/no-such-model"]


def text_model_on_images(tmp: Path) -> tuple[list[str], list[str]]:
    task = _vision_task(tmp, _png((20, 20)))
    return [str(task), "--model", "sim/small-fast"], ["sim/small-fast", "image", "pics"]


def negative_budget(tmp: Path) -> tuple[list[str], list[str]]:
    return [str(write_task(tmp, 3)), "--budget-rub", "-1"], ["budget_rub"]


def zero_concurrency(tmp: Path) -> tuple[list[str], list[str]]:
    return [str(write_task(tmp, 3)), "-c", "0"], ["concurrency"]


def resume_missing_run(tmp: Path) -> tuple[list[str], list[str]]:
    return ["--resume", "20990101-000000-abcdef"], ["no run", "20990101-000000-abcdef"]


CASES: list[Case] = [
    malformed_yaml, unknown_scorer, missing_template_variable, empty_dataset, invalid_utf8,
    unreadable_image, oversized_image, unknown_model, text_model_on_images, negative_budget,
    zero_concurrency, resume_missing_run,
]  # fmt: skip


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_bad_input_gets_one_clear_error(
    case: Case,
    router: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    args, expected = case(tmp_path)
    if "--model" not in args and "--resume" not in args:
        args += ["--model", MODEL]
    out = tmp_path / "results"
    code, stdout, stderr = _cli(["run", *args, "--base-url", router, "--out", str(out), "-q"], capsys)
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(errors) == 1 and stderr.strip() == errors[0], stderr
    for fragment in expected:
        assert fragment in errors[0], f"{fragment!r} missing from: {errors[0]}"
    assert KEY not in stdout + stderr
    for manifest in out.glob("*/manifest.json"):
        status = read_manifest(manifest.parent)["status"]
        assert status != "completed", "a refused run left a results folder that looks complete"


def test_resume_with_a_changed_task_is_refused_with_an_explanation_unless_forced(
    router: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    task = write_task(tmp_path, 4)
    common = ["--base-url", router, "--out", str(tmp_path / "results"), "-q"]
    assert _cli(["run", str(task), "--model", MODEL, "--run-id", "r1", *common], capsys)[0] == 0
    task.write_text(task.read_text().replace("max_tokens: 64", "max_tokens: 65"))
    code, _, stderr = _cli(["run", "--resume", "r1", *common], capsys)
    assert code == 2 and "Traceback" not in stderr
    assert "arith_local" in stderr and "changed" in stderr and "--force" in stderr
    code, stdout, _ = _cli(["run", "--resume", "r1", "--force", *common], capsys)
    assert code == 0 and "run r1: completed" in stdout
