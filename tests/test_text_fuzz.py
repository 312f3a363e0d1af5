"""Any text a router returns goes the whole path without raising and is recorded losslessly.

Hypothesis draws text from every Unicode category, surrogates included, plus a list of known troublemakers
(lone and split surrogate halves, NUL, RTL marks, combining marks, ZWJ sequences, line separators).
The path: the SDK's stream through our client parsing (over real HTTP, pairs split across chunks),
the journal, the response cache, every scorer, `load_results`, the HTML report and the widgets. What
was paid is recorded (one request per sample), and a resume never pays again.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evalkit
from evalkit.cli.commands import main
from evalkit.common.text import encodable, join_pairs, json_line
from evalkit.report import write_report
from evalkit.runner.cache import ResponseCache
from evalkit.runner.journal import Journal, iter_records
from evalkit.scorers import get_scorer, scorer_names
from evalkit.scorers.judge_prompt import VerdictError
from evalkit.task.spec import Sample, Task
from evalkit.widgets import describe_html, sample_explorer
from tests.text_router import MODEL, TextRouter, pieces

TROUBLE = [
    "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00", "\x00", "\x1b", "\r", "\u2028", "\u2029",
    "\u202e", "\u200f", "\u061c", "\u0301", "\u0651", "\u20dd", "\u200d", "\ufeff", "\ufffd", "\uffff",
    "😀", "👩‍👩‍👧", "🇷🇺", "Ё", "ё̈", "ﷺ", "\\", '"', "\\u0000", "</pre>", "<script>", "&amp;",
]  # fmt: skip
# pieces, not single characters: some troublemakers are sequences (ZWJ emoji, an escaped NUL, tags)
TEXTS = st.lists(st.one_of(st.characters(exclude_categories=()), st.sampled_from(TROUBLE)), max_size=120).map(
    "".join
)
SCORER_PARAMS = {"regex": {"pattern": r"(\w+)"}, "code": None}
# derandomized: the same examples on every run, so CI never flakes on a new draw
HEAVY = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
LIGHT = settings(max_examples=150, deadline=None, derandomize=True)


def _sample(text: str = "x") -> Sample:
    return Sample(id="s1", input="q", target=[text or "x", "42"], choices=["alpha", text or "beta"],
                  language="ru", metadata={"answer_type": "number"})  # fmt: skip


# ---- the pieces ---------------------------------------------------------------------------------


@given(TEXTS, st.integers(1, 9))
@LIGHT
def test_a_text_cut_anywhere_rejoins_and_writes_as_json_that_reads_back_equal(text, every):
    joined = join_pairs("".join(pieces(text, every)))
    assert joined == join_pairs(text)
    line = json_line({"output": joined})
    line.encode("utf-8")  # never raises
    assert "\n" not in line
    assert json.loads(line)["output"] == joined
    assert encodable(text).encode("utf-8").decode("utf-8") == encodable(text)


@given(TEXTS)
@settings(LIGHT, max_examples=60)
def test_the_journal_and_the_cache_keep_any_text(text):
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal.create(Path(folder) / "run")
        journal.write_manifest({"run_id": "run", "note": text})
        journal.open()
        call = {"output": text, "cost_rub": 0.5, "error": None, "error_message": text}
        asyncio.run(journal.append({"kind": "response", "key": ["t", "m", text, 0], "call": call}))
        asyncio.run(
            journal.append({"kind": "sample", "key": ["t", "m", text, 0], "output": text, "score": 1.0})
        )
        journal.close()
        journal.release()
        state = Journal.open_existing(Path(folder) / "run").read_state()
        assert state.done == {("t", "m", join_pairs(text), 0)} and not state.dropped_partial_line
        assert [r["output"] for r in iter_records(Path(folder) / "run")] == [join_pairs(text)]
        assert json.loads((Path(folder) / "run" / "manifest.json").read_text("utf-8"))["note"] == join_pairs(
            text
        )
        cache = ResponseCache(Path(folder) / "cache.sqlite")
        cache.put("k", call)
        assert cache.get("k")["output"] == join_pairs(text)
        cache.close()


@given(TEXTS, TEXTS)
@LIGHT
def test_every_scorer_but_code_takes_any_output_and_any_target(output, target):
    sample = _sample(target)
    for name in scorer_names():
        if name in ("code", "judge"):  # the sandbox is tested below; the judge scores only inside a run
            continue
        scorer = get_scorer(name, SCORER_PARAMS.get(name))
        try:
            score = scorer(output, sample)
        except VerdictError:  # `verdict`: a reply that is no verdict must be the sample's error, not a 0
            assert name == "verdict"
            continue
        assert 0.0 <= score.value <= 1.0, name


@pytest.mark.parametrize(
    ("output", "passed"),
    [
        ("\ud800", 0.0),
        ("```python\ndef f():\n    return '\ud83d'\n```", 1.0),  # runs, with the half shown as U+FFFD
        ("a\x00b", 0.0),
        ("\u202e" * 3, 0.0),
    ],
)
def test_the_code_scorer_takes_odd_text_without_raising(output, passed):
    scorer = get_scorer("code")
    sample = Sample(id="c1", fields={"prompt": "", "test": "assert f() is not None", "entry_point": "f"})
    try:
        score = scorer(output, sample)
    finally:
        scorer.close()
    assert score.value == passed
    json_line(score.explanation).encode("utf-8")


# ---- the whole path, over HTTP -------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_router():
    with pytest.MonkeyPatch.context() as patch, TextRouter() as router:
        patch.setenv("ROUTERAI_API_KEY", "sk-text-router-0000")
        yield router


def _task(replies: dict[str, str], name: str = "texts") -> Task:
    samples = [Sample(id=f"s{i}", input=prompt, target=["42"]) for i, prompt in enumerate(replies)]
    return Task(name=name, family="qa", samples=samples, scorer="exact", generation={"max_tokens": 64})


def _run_texts(
    router: TextRouter, texts: list[str], out: Path, *, stream: bool, tag: str
) -> tuple[Task, Any]:
    replies = {f"{tag} prompt {i}": text for i, text in enumerate(texts)}
    router.replies.update(replies)
    task = _task(replies, name=f"texts_{tag}")
    result = evalkit.run([task], [MODEL], base_url=router.base_url, out=str(out), stream=stream,
                         progress=False, concurrency=4, cache=False)  # fmt: skip
    return task, result


def _check_recorded(router: TextRouter, task: Task, result: Any, texts: list[str]) -> None:
    assert result.status == "completed", result.message
    recorded = {r["sample_id"]: r["output"] for r in iter_records(result.path)}
    df = result.df.set_index("sample_id")
    for sample, text in zip(task.samples, texts, strict=True):
        assert recorded[sample.id] == join_pairs(text)  # the journal is lossless
        assert df.loc[sample.id, "output"] == encodable(text)  # the DataFrame holds UTF-8 strings
        assert router.requests[sample.input] == 1  # paid once, recorded once
    assert df.error.isna().all()


@given(st.lists(TEXTS, min_size=1, max_size=4), st.booleans())
@HEAVY
def test_any_text_through_the_sdk_is_recorded_losslessly_and_a_resume_pays_nothing(
    text_router, texts, stream
):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        tag = f"{len(text_router.requests)}"
        task, result = _run_texts(text_router, texts, out, stream=stream, tag=tag)
        _check_recorded(text_router, task, result, texts)
        before = text_router.requests.total()
        resumed = evalkit.run([task], [MODEL], base_url=text_router.base_url, out=str(out), resume=result.run_id,
                              progress=False)  # fmt: skip
        assert resumed.status == "completed" and text_router.requests.total() == before
        frame = evalkit.load_results([result.path])
        write_report(
            frame, out / "report.html", manifests=[json.loads((result.path / "manifest.json").read_text())]
        )
        (out / "report.html").read_text(encoding="utf-8")
        explorer = sample_explorer(frame)
        for sample_id in list(explorer.sample.options)[:4]:
            explorer.sample.value = sample_id[1] if isinstance(sample_id, tuple) else sample_id
            (explorer.view_a.value + explorer.prompt.value).encode("utf-8")


def test_ten_megabytes_of_odd_text_and_split_pairs_survive_the_cli_and_a_resume(
    text_router, tmp_path, monkeypatch, capsys
):
    big = ("Ёлка 😀\u202eשלום\u0301 \x00 " * 400_000)[: 10 * 2**20] + "\ud800 end"
    texts = [big, "\ud83d\ude00 split pair", "lone \udfff here", "NUL\x00inside", "\u200f\u202bمرحبا\u202c"]
    task, result = _run_texts(text_router, texts, tmp_path, stream=True, tag="big")
    _check_recorded(text_router, task, result, texts)
    assert result.df.set_index("sample_id").loc["s1", "output"] == "😀 split pair"  # rejoined
    before = text_router.requests.total()
    resumed = evalkit.run([task], [MODEL], base_url=text_router.base_url, out=str(tmp_path),
                          resume=result.run_id, progress=False)  # fmt: skip
    assert resumed.status == "completed" and text_router.requests.total() == before
    assert main(["show", result.run_id, "--out", str(tmp_path)]) == 0
    report = tmp_path / "report.html"
    assert main(["report", result.run_id, "--results", str(tmp_path), "--html", str(report)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert "\ufffd" in report.read_text(encoding="utf-8")  # the lone surrogate is shown, as U+FFFD


def test_the_live_monitor_takes_odd_text():
    from evalkit.runner.progress import ProgressSnapshot

    html = describe_html(
        ProgressSnapshot(total=3, done=1, status="running", backing_off="\ud800 \x00 \u202e")
    )
    html.encode("utf-8")
