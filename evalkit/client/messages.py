"""The parts of a chat message, read in one place: its text parts and its image URLs.

A message's `content` is a string or a list of parts (`{"type": "text", ...}`, `{"type": "image_url",
...}`). Token estimates, token bounds, the simulator's sample lookup and the recorded prompt all read
the text the same way through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text_parts(message: Mapping[str, Any]) -> list[str]:
    """The message's text, part by part (a string content is one part; images are left out)."""
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return []


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message: its text parts joined by newlines."""
    return "\n".join(text_parts(message))


def image_urls(message: Mapping[str, Any]) -> list[str]:
    """The URLs (data URLs included) of the message's image parts, in order."""
    content = message.get("content")
    return [
        str((p.get("image_url") or {}).get("url", ""))
        for p in (content if isinstance(content, list) else [])
        if isinstance(p, dict) and p.get("type") == "image_url"
    ]
