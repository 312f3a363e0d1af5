"""Script-aware token estimate: how many tokens a BPE tokenizer of a modern LLM spends on a text.

Tokenizers trained mostly on English text spend about one token per 4 ASCII characters, more on
Cyrillic, Greek and accented Latin, about one per 2 characters of Arabic, Hebrew, Thai and Indic
scripts, and about one per CJK character. We count characters per script (from UTF-8/UTF-16 byte
lengths and two regex passes, all at C speed, since this runs on every prompt) and add up.

The simulator bills with this count; the runner's budget uses it as an upper-bound basis (times a
margin), so it errs slightly high rather than low.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from evalkit.client.messages import message_text

# Characters per token by script. Byte lengths in UTF-8 split the text into ASCII (1 byte), the
# alphabetic scripts of 2 bytes (Latin Extended, Cyrillic, Greek, Hebrew, Arabic), the 3-byte scripts
# (Indic, Thai, CJK, typographic punctuation) and 4-byte emoji; two regex passes then single out
# Cyrillic and CJK, whose rates differ from their byte group's.
_ASCII = 4.0
_TWO_BYTE = 2.0
_CYRILLIC = 2.7
_THREE_BYTE = 1.9
_CJK = 1.0
_EMOJI_TOKENS = 2.0
_CYRILLIC_RE = re.compile("[\u0400-\u052f]+")
_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+")
MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat template adds around each message (role header and separators)."""
REPLY_PRIMING_TOKENS = 3
"""Tokens that open the assistant's reply."""


def estimate_tokens(text: str) -> int:
    """Estimated token count of `text` (0 for the empty string, else at least 1)."""
    if not text:
        return 0
    if text.isascii():
        return max(1, math.ceil(len(text) / _ASCII))
    chars = len(text)
    one = len(text.encode("ascii", "ignore"))
    four = len(text.encode("utf-16-le", "surrogatepass")) // 2 - chars
    utf8 = len(text.encode("utf-8", "surrogatepass"))
    three = utf8 - 2 * chars + one - 2 * four  # from chars = 1+2+3+4 and utf8 = 1*one + 2*two + ...
    two = chars - one - three - four
    cyrillic = sum(map(len, _CYRILLIC_RE.findall(text))) if two else 0
    cjk = sum(map(len, _CJK_RE.findall(text))) if three else 0
    tokens = (
        one / _ASCII
        + cyrillic / _CYRILLIC
        + (two - cyrillic) / _TWO_BYTE
        + cjk / _CJK
        + (three - cjk) / _THREE_BYTE
        + four * _EMOJI_TOKENS
    )
    return max(1, math.ceil(tokens))


def estimate_message_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of chat messages: text parts plus a small per-message overhead.

    Images are not counted here; routers bill them per image (see the price card)."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(message_text(message))
    return total


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` whose estimate is at most `max_tokens` tokens."""
    if max_tokens <= 0:
        return ""
    if estimate_tokens(text) <= max_tokens:
        return text
    low, high = 0, len(text)  # estimate(text[:low]) <= max_tokens < estimate(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        if estimate_tokens(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle
    return text[:low]
