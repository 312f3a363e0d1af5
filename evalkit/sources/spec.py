"""What a task says about its data: where it comes from (`Source`) and which column is what (`FieldMap`).

Here, in the readers' package, so that reading needs nothing of the task module above it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Source(BaseModel):
    """Where samples come from: a Hugging Face dataset, a local file, or both (local wins if present).

    `{language}` in `path` or `config` expands over `languages`, adding a `language` column.
    """

    model_config = ConfigDict(extra="forbid")

    hub: str | None = None
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    path: str | None = None
    format: str | None = None
    languages: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_somewhere(self) -> Source:
        if not self.hub and not self.path:
            raise ValueError("a source needs `hub` (a dataset id) or `path` (a local file)")
        return self


class FieldMap(BaseModel):
    """Which source column feeds which Sample attribute. Every column is also a template variable."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    input: str | None = None
    target: str | list[str] | None = "target"
    target_separator: str | None = Field(default=None, min_length=1)
    target_json_lists: bool = True
    choices: str | list[str] | None = None
    choice_target: Literal["auto", "index", "letter", "cyrillic", "text"] = "auto"
    index_base: Literal[0, 1] = 0
    language: str | None = "language"
    images: str | None = None
    metadata: list[str] = Field(default_factory=list)


class DataSpec(Protocol):
    """What loading samples needs of a task: its name, source, field map and file."""

    name: str
    source: Source | None
    fields: FieldMap
    file: str | None

    @property
    def where(self) -> str: ...
