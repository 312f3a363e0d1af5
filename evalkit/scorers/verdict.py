"""The `verdict` scorer: is a judge model's verdict the one a person gave? For tasks whose model is a
judge (`format: judge_items`): the output is read strictly as a verdict (`judge_prompt.parse_verdict`),
and scores 1 when it equals the label (`target`). A reply that is no verdict raises, so the run records
that sample as an error, never as a disagreement."""

from __future__ import annotations

import json

from evalkit.scorers import scorer
from evalkit.scorers.base import Score, Scorer
from evalkit.scorers.judge_prompt import GRADES, ReplyFormat, parse_verdict
from evalkit.task.sample import Sample


@scorer("verdict")
class VerdictMatch(Scorer):
    def __init__(self, reply_format: ReplyFormat = "json") -> None:
        if reply_format not in ("json", "line"):
            raise TypeError(f"reply_format must be json or line, not {reply_format!r}")
        self.reply_format = reply_format

    def __call__(self, output: str, sample: Sample) -> Score:
        verdict = parse_verdict(output, GRADES, self.reply_format)  # VerdictError: the sample's error
        agrees = verdict.verdict in {t.strip().casefold() for t in sample.target}
        return Score(float(agrees), verdict.verdict, verdict.reason[:300])

    def gold_output(self, target: str) -> str:
        """A judge's reply giving `target` as its verdict (what `validate` checks the labels with)."""
        if self.reply_format == "line":
            return f"As labelled.\nVERDICT: {target.upper()}"
        return json.dumps({"reason": "As labelled.", "verdict": target})
