"""Widgets driven headless: the run monitor's throttling and text, the explorer's filters and views."""

from __future__ import annotations

import html
import math

import pytest
from PIL import Image
from test_stats import make_results

from evalkit.runner.progress import ProgressSnapshot
from evalkit.widgets import RunMonitor, outcome_of, sample_explorer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_run_monitor_shows_progress_money_errors_and_backoff() -> None:
    clock = FakeClock()
    monitor = RunMonitor(display=False, clock=clock)
    monitor.update(ProgressSnapshot(total=200, done=50, errors=2, score_sum=36.0, scored=48, spent_rub=1.23456,
                                    elapsed_s=10.0, in_flight=7, concurrency=8))  # fmt: skip
    assert (monitor.bar.value, monitor.bar.max) == (50, 200)
    text = monitor.stats.value
    assert "<b>50</b> / 200 samples" in text and "accuracy <b>75.0%</b>" in text
    assert "₽1.2346" in text and "2 errors (4.0%)" in text and "concurrency 8 (7 in flight)" in text
    assert "~30 s left" in text
    assert monitor.notice.value == ""
    clock.now += 1
    monitor.update(ProgressSnapshot(total=200, done=60, concurrency=4, backing_off="rate limited <429>"))
    assert "backing off: rate limited &lt;429&gt;" in monitor.notice.value


def test_run_monitor_throttles_to_five_redraws_a_second_and_close_draws_the_end() -> None:
    clock = FakeClock()
    monitor = RunMonitor(display=False, clock=clock)
    for i in range(100):  # 100 updates over one second
        monitor.update(ProgressSnapshot(total=100, done=i + 1))
        clock.now += 0.01
    assert monitor.redraws <= 5
    assert monitor.bar.value < 100
    monitor.close(ProgressSnapshot(total=100, done=100, status="completed"))
    assert monitor.bar.value == 100 and monitor.bar.bar_style == "success"
    failed = RunMonitor(display=False, clock=clock)
    failed.close(ProgressSnapshot(total=10, done=3, errors=3, status="out_of_credit"))
    assert failed.bar.bar_style == "danger" and "out_of_credit" in failed.notice.value


def test_outcome_of() -> None:
    assert outcome_of({"error": "timeout", "score": math.nan}) == "error"
    assert outcome_of({"error": None, "score": 1.0}) == "correct"
    assert outcome_of({"error": None, "score": 0.4}) == "wrong"


@pytest.fixture
def results(tmp_path):
    df = make_results(n=30, languages=("en", "ru", "th"), error_rate=0.1, seed=5, tasks=("qa", "vision"))
    picture = tmp_path / "cat.png"
    Image.new("RGB", (32, 20), "orange").save(picture)
    df["image_refs"] = [[{"ref": str(picture), "sha256": "x", "width": 32, "height": 20}]] * len(df)
    df.loc[0, "image_refs"] = [[{"ref": str(tmp_path / "gone.png"), "sha256": "y", "width": 1, "height": 1}]]
    df.loc[0, "prompt"] = "What is <b>2+2</b>?"
    return df


def test_explorer_filters_by_task_language_and_outcome(results) -> None:
    explorer = sample_explorer(results, model_a="big/large", model_b="cheap/small")
    assert explorer.task.value == "qa"
    assert list(explorer.language.options) == ["(all)", "en", "ru", "th"]
    assert len(explorer.sample.options) == 30
    explorer.language.value = "ru"
    assert len(explorer.sample.options) == 10
    assert all(label.split(" · ")[1] == "ru" for label, _ in explorer.sample.options)
    explorer.outcome.value = "error"
    rows = results[
        (results["task"] == "qa") & (results["model"] == "big/large") & (results["language"] == "ru")
    ]
    expected = sorted(rows.loc[rows["error"].notna(), "sample_id"])
    assert sorted(sample_id for sample_id, _ in explorer.matching()) == expected
    if expected:
        assert "error" in explorer.view_a.value and "read timed out" in explorer.view_a.value
    explorer.task.value = "vision"
    assert explorer.language.value == "(all)"


def test_explorer_side_by_side_and_disagreements(results) -> None:
    explorer = sample_explorer(results, model_a="big/large", model_b="cheap/small")
    explorer.outcome.value = "A right, B wrong"
    qa = results[results["task"] == "qa"].set_index(["model", "sample_id"])
    for sample_id, _ in explorer.matching():
        assert qa.loc[("big/large", sample_id), "score"] == 1.0
        assert qa.loc[("cheap/small", sample_id), "score"] == 0.0
    assert explorer.matching(), "the synthetic data has disagreements"
    first = explorer.sample.value[0]
    assert "big/large" in explorer.view_a.value and "correct" in explorer.view_a.value
    assert "cheap/small" in explorer.view_b.value and "wrong" in explorer.view_b.value
    cost = qa.loc[("big/large", first), "cost_rub"]
    assert f"₽{cost:.6f} (router)" in explorer.view_a.value
    before = explorer.sample.value
    explorer.next.click()
    assert explorer.sample.value != before or len(explorer.sample.options) == 1
    explorer.model_b.value = "(none)"
    assert explorer.view_b.value == ""


def test_explorer_shows_prompt_escaped_and_images(results) -> None:
    explorer = sample_explorer(results, model_a="cheap/small")  # row 0: qa, cheap/small, s0
    explorer.sample.value = ("s0", 0)
    assert "What is &lt;b&gt;2+2&lt;/b&gt;?" in explorer.prompt.value
    assert "image not available here" in explorer.images.children[0].value
    explorer.sample.value = ("s1", 0)
    image = explorer.images.children[0]
    assert bytes(image.value).startswith(b"\x89PNG") and image.width == "32"
    explorer.outcome.value = "wrong"
    explorer.language.value = "th"
    assert all(outcome == "wrong" for outcome in _outcomes(explorer, results))


def _outcomes(explorer, results):
    rows = results[(results["task"] == explorer.task.value) & (results["model"] == explorer.model_a.value)]
    rows = rows.set_index("sample_id")
    return [outcome_of(rows.loc[sample_id]) for sample_id, _ in explorer.matching()]


def test_explorer_rejects_empty_results() -> None:
    with pytest.raises(ValueError, match="empty"):
        sample_explorer(make_results(n=1).iloc[:0])


def test_the_explorer_folds_thinking_away_and_marks_a_truncated_answer(results) -> None:
    data = results.copy()
    data["reasoning"] = None
    data["reasoning_tokens"] = None
    data["truncated"] = False
    first = data.index[
        (data["task"] == "qa") & (data["model"] == "cheap/small") & (data["sample_id"] == "s0")
    ][0]
    data.loc[first, ["reasoning", "reasoning_tokens", "truncated"]] = ["<b>maybe 5</b>", 42, True]
    explorer = sample_explorer(data, model_a="cheap/small")
    explorer.sample.value = ("s0", 0)
    view = explorer.view_a.value
    assert "<details><summary><b>thinking</b> (42 tokens, billed as output, not scored)" in view
    assert "&lt;b&gt;maybe 5&lt;/b&gt;" in view and "(truncated at max_tokens)" in view
    explorer.sample.value = ("s1", 0)
    assert "thinking" not in explorer.view_a.value


def test_the_explorer_shows_each_judge_verdict_its_reason_and_the_judges_money_apart(
    tmp_path, monkeypatch
) -> None:
    """A judged run on the simulator (a 70 %-accurate judge, three replicates, so its verdicts on one
    answer sometimes differ): each vote is listed with its reason, "judges split" finds exactly the
    answers whose votes differ, and the judge's ₽ is shown apart from the model's."""
    from reliability_helpers import KEY
    from test_judge_run import _task

    import evalkit
    from evalkit import sim
    from evalkit.sim.judge import JudgeProfile
    from evalkit.sim.profiles import JUDGE

    shaky = JUDGE.model_copy(update={"id": "sim/judge-shaky", "judge": JudgeProfile(accuracy=0.7)})
    task = _task(tmp_path / "task", ["sim/judge-shaky"], replicates=3)
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    with sim.serve(tasks=[str(task)], models=["sim/small-fast", shaky], latency_scale=0) as server:
        result = evalkit.run(
            [str(task)],
            ["sim/small-fast"],
            base_url=server.base_url,
            out=str(tmp_path / "runs"),
            progress=False,
        )
    df = result.df
    split = df[df["judge_votes"].map(lambda votes: len({v["value"] for v in votes}) > 1)]
    assert 0 < len(split) < len(df), "the shaky judge should disagree with itself on some answers"
    explorer = sample_explorer(df)
    explorer.outcome.value = "judges split"
    assert sorted(explorer.matching()) == sorted(zip(split["sample_id"], split["epoch"], strict=True))
    row = split.iloc[0]
    explorer.sample.value = (row["sample_id"], row["epoch"])
    view = explorer.view_a.value
    assert "judges split" in view and view.count("<td>sim/judge-shaky</td>") == 3
    for vote in row["judge_votes"]:
        assert html.escape(vote["reason"]) in view
    assert f"judge ₽{row['cost_rub_judge']:.6f} (3 calls" in view
    assert f"₽{row['cost_rub']:.6f} (router) + judge" in view
