"""Sample: one item to evaluate, as readers build it and scorers see it.

Below the task, the readers and the scorers alike: each imports it, it imports none of them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalkit.task.targets import cell_text, choice_letter


class Sample(BaseModel):
    """One item to evaluate.

    fields: the template variables (every column of the source row); `input` is a shorthand for
        fields["input"], which the default user template `{input}` shows.
    target: the acceptable answers (several for aliases); empty when the scorer needs none.
    choices: the options of a multiple-choice item, in order (A, B, C, ...).
    images: image references (path, URL, bytes, PIL image) sent with the user turn.
    metadata: values kept in the results (answer type, subject, cluster id, ...).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    id: str
    input: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    target: list[str] = Field(default_factory=list)
    choices: list[str] | None = None
    language: str | None = None
    images: list[Any] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _integer_labels(cls, data: Any) -> Any:
        """`Sample(target=1, choices=[...])` means option B (a 0-based index), as in hub datasets."""
        if isinstance(data, dict) and data.get("choices") and data.get("target") is not None:
            target = data["target"]
            items = target if isinstance(target, (list, tuple)) else [target]
            if any(isinstance(t, int) and not isinstance(t, bool) for t in items):
                data = {
                    **data,
                    "target": [
                        choice_letter(t, data["choices"], reading="index") if isinstance(t, int) else t
                        for t in items
                    ],
                }
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_str(cls, value: Any) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("a sample needs an id")
        return str(value)

    @field_validator("language", mode="before")
    @classmethod
    def _language_code(cls, value: Any) -> str | None:
        """ " RU " is "ru" and "PT-BR" is "pt-BR": one language, one prompt variant, one group in reports."""
        if value is None or (isinstance(value, float) and value != value):
            return None
        text = str(value).strip()
        if not text:
            return None
        head = re.match(r"[A-Za-z]+", text)
        return head.group(0).lower() + text[head.end() :] if head else text

    @field_validator("target", mode="before")
    @classmethod
    def _target_as_list(cls, value: Any) -> list[str]:
        if value is None:
            return []
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if any(v is None or v != v for v in values):  # None or NaN must never become the text "None"
            raise ValueError(f"a target is null: {value!r} (use target=None for no target)")
        return [cell_text(v) for v in values]

    @model_validator(mode="after")
    def _input_in_fields(self) -> Sample:
        if self.input is not None and "input" not in self.fields:
            self.fields["input"] = self.input
        return self

    def template_vars(self) -> dict[str, Any]:
        """Variables a prompt template may use: every field plus `choices` as a lettered list."""
        variables = dict(self.fields)
        if self.choices is not None:
            variables["choices"] = format_choices(self.choices)
        variables.setdefault("language", self.language or "")
        return variables


def format_choices(choices: Sequence[str]) -> str:
    return "\n".join(f"{string.ascii_uppercase[i]}. {choice}" for i, choice in enumerate(choices))


def language_key(language: str | None) -> str:
    """ "pt-BR" -> "pt", "zh_cn" -> "zh", None -> ""."""
    return (language or "").split("-")[0].split("_")[0].lower()
