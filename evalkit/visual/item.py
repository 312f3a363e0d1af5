"""One generated item before it is written: the picture, the question and the exact answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

AnswerType = Literal["number", "text", "choice"]


@dataclass
class Item:
    """image: the rendered picture; targets: every accepted answer (aliases after the canonical one)."""

    image: Image.Image
    question: str
    targets: list[str]
    answer_type: AnswerType
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
