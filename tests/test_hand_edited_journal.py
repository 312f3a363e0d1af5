"""A samples.jsonl edited by hand: the resume never drops paid responses or counts a ₽ twice.

Only the last line may be cut short (a crash, a power loss). A bad line with records after it, or a
sample of another run, is refused with one line before anything is sent; an exact duplicate counts once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.cli.commands import main
from evalkit.common.errors import ConfigError

RUN = dict(sim=True, limit=6, progress=False, cache=False)


def _first_run(tmp_path: Path) -> Path:
    result = evalkit.run(["builtin_qa"], ["sim/small-fast"], run_id="edited", out=str(tmp_path), **RUN)
    assert result.status == "completed"
    return result.path


def _lines(directory: Path) -> list[bytes]:
    return (directory / "samples.jsonl").read_bytes().splitlines(keepends=True)


def _manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def test_a_cut_line_in_the_middle_is_refused_and_nothing_after_it_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _first_run(tmp_path)
    lines = _lines(directory)
    edited = b"".join([*lines[:2], lines[2][:50] + b"\n", *lines[3:]])
    (directory / "samples.jsonl").write_bytes(edited)
    before = _manifest(directory)
    code = main(["run", "--resume", "edited", "--out", str(tmp_path), "--quiet", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "samples.jsonl: line 3 is not a complete record" in err
    assert (directory / "samples.jsonl").read_bytes() == edited  # the paid lines after it are all kept
    assert _manifest(directory) == before  # nothing was sent, nothing rewritten


def test_a_sample_line_of_another_run_is_refused(tmp_path: Path) -> None:
    directory = _first_run(tmp_path)
    lines = _lines(directory)
    foreign = json.loads(lines[1]) | {"run_id": "some-other-run", "score": 1.0}
    (directory / "samples.jsonl").write_bytes(b"".join(lines) + json.dumps(foreign).encode() + b"\n")
    with pytest.raises(ConfigError, match="line 13 is a sample of another run"):
        evalkit.run([], [], resume="edited", out=str(tmp_path), progress=False, cache=False)


def test_a_duplicated_line_counts_once_in_the_spend_and_sends_nothing(tmp_path: Path) -> None:
    directory = _first_run(tmp_path)
    lines = _lines(directory)
    billed = sum(json.loads(line)["call"]["cost_rub"] for line in lines if b'"kind":"response"' in line)
    (directory / "samples.jsonl").write_bytes(b"".join([*lines[:4], lines[2], lines[3], *lines[4:]]))
    resumed = evalkit.run([], [], resume="edited", out=str(tmp_path), progress=False, cache=False)
    manifest = _manifest(directory)
    assert resumed.status == "completed"
    assert manifest["invocations"][-1]["sent"] == 0
    assert manifest["totals"]["spent_rub"] == pytest.approx(billed, rel=1e-12)
    assert len(resumed.df) == 6


def test_a_line_whose_key_is_malformed_is_refused_not_a_traceback(tmp_path: Path) -> None:
    directory = _first_run(tmp_path)
    lines = _lines(directory)
    broken = json.loads(lines[0]) | {"key": ["builtin_qa", "sim/small-fast"]}
    (directory / "samples.jsonl").write_bytes(json.dumps(broken).encode() + b"\n" + b"".join(lines[1:]))
    with pytest.raises(ConfigError, match="line 1 is not a complete record"):
        evalkit.run([], [], resume="edited", out=str(tmp_path), progress=False, cache=False)


def test_a_new_run_on_a_folder_whose_manifest_was_removed_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _first_run(tmp_path)
    (directory / "manifest.json").unlink()
    kept = (directory / "samples.jsonl").read_bytes()
    code = main(["run", "builtin_qa", "-m", "sim/small-fast", "-n", "6", "--sim", "--sim-latency-scale", "0", "--out", str(tmp_path)]
                + ["--run-id", "edited", "--quiet", "--no-cache"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "samples.jsonl holds results but manifest.json is missing" in err
    assert (directory / "samples.jsonl").read_bytes() == kept  # nothing paid twice, nothing appended
    assert not (directory / "manifest.json").exists()


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda m: m["config"].update(concurrency=-1), "config.concurrency: Input should be greater"),
        (lambda m: m.pop("config"), "missing 'config'"),
        (lambda m: m.pop("tasks"), "missing 'tasks'"),
        (lambda m: m.update(invocations="x"), "invocations is not a list"),
        (lambda m: m.update(tasks=[1]), "cannot be read back"),
        (lambda m: m.clear() or m.update(x=1), "missing 'config'"),
    ],
)
def test_a_damaged_manifest_is_one_clear_error_on_resume(
    edit: Any, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _first_run(tmp_path)
    manifest = _manifest(directory)
    edit(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    code = main(["run", "--resume", "edited", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "manifest.json: " in err and said in err


def test_a_manifest_that_is_not_an_object_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _first_run(tmp_path)
    (directory / "manifest.json").write_text("[1]", encoding="utf-8")
    assert main(["run", "--resume", "edited", "--out", str(tmp_path), "--quiet"]) == 2
    assert "corrupt manifest: not a JSON object" in capsys.readouterr().err


def _damage_line_3(tmp_path: Path) -> Path:
    directory = _first_run(tmp_path)
    lines = _lines(directory)
    (directory / "samples.jsonl").write_bytes(b"".join([*lines[:2], lines[2][:50] + b"\n", *lines[3:]]))
    return directory


def test_reading_results_past_a_damaged_middle_line_warns_naming_file_and_line(tmp_path: Path) -> None:
    from evalkit.common.errors import EvalkitWarning

    directory = _damage_line_3(tmp_path)
    with pytest.warns(EvalkitWarning, match=r"samples\.jsonl: line\(s\) 3 are not complete records"):
        df = evalkit.load_results(directory)
    assert len(df) >= 5  # every readable sample is still there


def test_a_torn_last_line_is_normal_recovery_and_says_nothing(tmp_path: Path) -> None:
    import warnings

    directory = _first_run(tmp_path)
    with open(directory / "samples.jsonl", "ab") as file:
        file.write(b'{"kind": "sample", "key": ["builtin_qa", "sim/sm')  # a run killed mid-line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(evalkit.load_results(directory)) == 6


def test_show_warns_in_one_line_and_rescore_refuses_a_damaged_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _damage_line_3(tmp_path)
    assert main(["show", "edited", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "evalkit: warning: " in err and "samples.jsonl: line(s) 3" in err and "Traceback" not in err
    assert main(["rescore", "edited", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "line(s) 3 are not complete records" in err and "Nothing was written" in err
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["edited"]  # no new run


def test_show_into_a_closed_pipe_prints_no_traceback(tmp_path: Path) -> None:
    """`evalkit show RUN | head -1`: the reader is gone before the table is written (here it is gone
    before the command starts, so every write meets the closed pipe)."""
    import os
    import subprocess
    import sys

    _first_run(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "evalkit.cli", "show", "edited", "--out", str(tmp_path)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")  # no traceback, no "error: Broken pipe"
