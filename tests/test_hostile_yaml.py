"""Hostile task files: an alias bomb, deep nesting and a recursive alias each get one error line naming
the file and the line, from `validate` and from `run`, before anything is paid; plain anchors still work."""

from __future__ import annotations

import pytest

from evalkit.cli.commands import main
from evalkit.task.spec import load_task
from evalkit.task.yaml_load import MAX_DEPTH

HEAD = "name: hostile\nfamily: qa\nscorer: exact\nsamples:\n"


def _laughs(levels: int = 9) -> str:
    """The classic "billion laughs": 10**levels strings from a few hundred bytes."""
    lines = ["  - id: s1\n    input: hi\n    target: x\n    metadata:\n      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]  # fmt: skip
    for i in range(1, levels + 1):
        lines.append(f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n")
    return HEAD + "".join(lines)


HOSTILE = {
    "alias_bomb": (_laughs(), "alias bomb", 14),  # l5, the first to pass a million
    "deep_nesting": (
        HEAD
        + "  - id: s1\n    input: hi\n    target: x\n    metadata: {deep: "
        + "[" * 5000
        + "]" * 5000
        + "}\n",
        f"nested deeper than {MAX_DEPTH} levels",
        8,
    ),  # fmt: skip
    "recursive_alias": (
        HEAD + "  - id: s1\n    input: hi\n    target: x\n    metadata: &m {self: *m}\n",
        "refers to a collection that contains it",
        8,
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_task_file_gets_one_error_naming_file_and_line(tmp_path, capsys, case):
    text, problem, line = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    for argv in (["validate", str(path)], ["run", str(path), "-m", "sim/small-fast", "--sim", "--out",
                                             str(tmp_path / "results"), "-q"]):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"evalkit: error: {path}: ") and problem in lines[0]
        assert f"(line {line})" in lines[0]
    assert not (tmp_path / "results").exists()


def test_plain_anchors_and_aliases_still_load(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        HEAD + "  - {id: a, input: hi, target: x, metadata: &shared {subject: maths, level: [1, 2]}}\n"
        "  - {id: b, input: ho, target: y, metadata: *shared}\n",
        encoding="utf-8",
    )
    samples = load_task(path).load_samples(None)
    assert [s.metadata for s in samples] == [{"subject": "maths", "level": [1, 2]}] * 2
