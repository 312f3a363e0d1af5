"""Table-driven tests of code extraction from model output."""

from __future__ import annotations

import pytest

from evalkit.scorers.code_extract import extract_code

PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'
FULL = "def add(a, b):\n    return a + b\n"

CASES = [
    # (name, output, entry_point, prompt, expected code, expected mode)
    ("python fence", f"Here it is:\n```python\n{FULL}```\nDone.", "add", PROMPT, FULL, "full"),
    ("py fence", f"```py\n{FULL}```", "add", PROMPT, FULL, "full"),
    ("bare fence", f"```\n{FULL}```", "add", PROMPT, FULL, "full"),
    ("unclosed fence", f"```python\n{FULL}", "add", PROMPT, FULL, "full"),
    (
        "no fence, prose around",
        f"Sure! Here is the function.\n\n{FULL}\nThis adds a and b.",
        "add",
        PROMPT,
        FULL,
        "full",
    ),
    (
        "several blocks: the one defining the entry point, helpers kept",
        "```python\nimport math\n\ndef helper(x):\n    return x\n```\nThen:\n```python\n"
        "def add(a, b):\n    return helper(a) + b\n```\nUsage:\n```python\nprint(add(1, 2))\n```",
        "add",
        PROMPT,
        "import math\n\ndef helper(x):\n    return x\n\ndef add(a, b):\n    return helper(a) + b\n",
        "full",
    ),
    (
        "non-python blocks ignored",
        f"```bash\npip install x\n```\n```python\n{FULL}```",
        "add",
        PROMPT,
        FULL,
        "full",
    ),
    ("body completion, indented", "    return a + b\n", "add", PROMPT, "    return a + b\n", "completion"),
    ("body without indentation", "return a + b", "add", PROMPT, "    return a + b\n", "completion"),
    (
        "first line unindented (stripped response)",
        "total = a + b\n    return total\n",
        "add",
        PROMPT,
        "    total = a + b\n    return total\n",
        "completion",
    ),
    (
        "tabs in a body",
        "\tif a:\n\t\treturn a + b\n\treturn b\n",
        "add",
        PROMPT,
        "    if a:\n        return a + b\n    return b\n",
        "completion",
    ),
    (
        "body starting with a block, blank line inside",
        "    if not a:\n        return b\n\n    total = a + b\n    return total\n",
        "add",
        PROMPT,
        "    if not a:\n        return b\n\n    total = a + b\n    return total\n",
        "completion",
    ),
    (
        "body in a fence",
        "```python\n    return a + b\n```",
        "add",
        PROMPT,
        "    return a + b\n",
        "completion",
    ),
    (
        "usage code and __main__ block removed",
        f"{FULL}\nprint(add(1, 2))\nassert add(1, 1) == 3\nif __name__ == '__main__':\n    add(1, 2)\n",
        "add",
        PROMPT,
        FULL,
        "full",
    ),
    ("no prompt: always a full program (MBPP)", "```python\nx = 1\n```", "add", None, "x = 1\n", "full"),
    (
        "async def counts as a definition",
        "```python\nasync def add(a, b):\n    return a\n```",
        "add",
        PROMPT,
        "async def add(a, b):\n    return a\n",
        "full",
    ),
    (
        "CRLF line endings",
        "```python\r\ndef add(a, b):\r\n    return a + b\r\n```",
        "add",
        PROMPT,
        FULL,
        "full",
    ),
]


@pytest.mark.parametrize(
    ("name", "output", "entry", "prompt", "code", "mode"), CASES, ids=[c[0] for c in CASES]
)
def test_extraction(name: str, output: str, entry: str, prompt: str | None, code: str, mode: str):
    extracted = extract_code(output, entry_point=entry, prompt=prompt)
    assert extracted.code == code
    assert extracted.mode == mode


def test_later_corrected_block_wins():
    output = "```python\ndef add(a, b):\n    return a - b\n```\nOops, fixed:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert extract_code(output, entry_point="add", prompt=PROMPT).code == FULL


@pytest.mark.parametrize(
    "output", ["", "   ", "I cannot help with that.", "```python\n```", "\x00\x01", "(" * 5000]
)
def test_garbage_never_raises(output: str):
    extracted = extract_code(output, entry_point="add", prompt=PROMPT)
    assert isinstance(extracted.code, str)
