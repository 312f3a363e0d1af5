"""Find the program in a model's answer: fenced blocks, prose around code, a body vs a full function.

    extract_code(output, entry_point="add", prompt=humaneval_prompt)
    -> Extracted(code="def add(a, b):\n    return a + b\n", mode="full")

Only parsing happens here (`ast.parse`/`compile` never run the code). Rules, in order:

1. Fenced blocks (```python, ```py, ``` or an unclosed last fence) win over the bare text. Among
   several, the one defining the entry point is taken, with earlier blocks that only hold helpers
   (imports, functions, classes, constants) put in front; blocks in another language are ignored.
   Without an entry point the longest Python block is taken.
2. Without fences, prose before the first code line and after the last one is dropped.
3. `mode` is "full" when the code defines the entry point at top level, else "completion" (the body
   of the prompt's function, HumanEval style). A completion gets its indentation repaired (tabs,
   an unindented first line or an unindented body) so that prompt + body compiles.
4. In full mode, top-level usage code (asserts, bare calls, `if __name__ == "__main__":` blocks) is
   removed so that the model's own examples cannot fail the run.
"""

from __future__ import annotations

import ast
import re
import textwrap
import threading
import warnings
from dataclasses import dataclass
from typing import Literal

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}
_CODE_START = re.compile(r"^(\s*)(def |async def |class |import |from \S+ import |@|[A-Za-z_]\w* *=[^=])")
_PROSE = re.compile(r"^[A-Z][^=()\[\]{}:#]*[.!?:]?$|^(This|The|Here|Note|Explanation|Output)\b")


@dataclass(frozen=True)
class Extracted:
    """The program text found in an output and whether it is a whole function or a body."""

    code: str
    mode: Literal["full", "completion"]


def extract_code(output: str, *, entry_point: str | None = None, prompt: str | None = None) -> Extracted:
    """The code in `output`; `entry_point` picks among blocks, `prompt` checks completions compile."""
    text = output.replace("\r\n", "\n")
    blocks = _python_blocks(text)
    code = _choose_block(blocks, entry_point) if blocks else _strip_prose(text)
    if not prompt or (entry_point and _defines(code, entry_point)):
        return Extracted(_drop_usage(_expand_tabs(code), entry_point), "full")
    return Extracted(_repair_body(code, prompt), "completion")


def _python_blocks(text: str) -> list[str]:
    blocks = []
    for match in _FENCE.finditer(text):
        tag, body = match.group(1).lower(), match.group(2)
        if tag in _PYTHON_TAGS and body.strip():
            blocks.append(body.rstrip() + "\n")
    return blocks


def _choose_block(blocks: list[str], entry_point: str | None) -> str:
    defining = [i for i, block in enumerate(blocks) if entry_point and _defines(block, entry_point)]
    if not defining:
        return max(blocks, key=len)
    chosen = defining[-1]  # a later block is usually the corrected version
    helpers = [b for b in blocks[:chosen] if _only_definitions(b) and not _defines(b, entry_point or "")]
    return "\n".join([*helpers, blocks[chosen]])


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


# CPython 3.11 (< 3.11.8) keeps the AST conversion's recursion depth in shared state: two threads
# parsing at once (the runner scores in threads) can fail with "SystemError: AST constructor
# recursion depth mismatch". Every `ast.parse` of evalkit's process takes this lock.
PARSING = threading.Lock()


def _parse(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings(), PARSING:
            warnings.simplefilter("ignore")  # invalid escape sequences in model code are not our concern
            return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _only_definitions(code: str) -> bool:
    tree = _parse(code)
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign)
    return tree is not None and all(isinstance(node, allowed) for node in tree.body)


def _strip_prose(text: str) -> str:
    """Bare text: keep from the first line that starts code to the last line that is not prose."""
    lines = text.split("\n")
    first = next((line for line in lines if line.strip()), "")
    if first[:1].isspace():
        return text.strip("\n") + "\n"  # starts indented: a function body (HumanEval completion)
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return text.strip("\n") + "\n"  # nothing recognisable as a code start: leave it to the run
    end = len(lines)
    while end > start + 1 and (not lines[end - 1].strip() or _is_prose(lines[end - 1])):
        end -= 1
    code = "\n".join(lines[start:end]) + "\n"
    while end > start + 1 and _parse(code) is None and _is_prose(lines[end - 1]):
        end -= 1
        code = "\n".join(lines[start:end]) + "\n"
    return code


def _is_prose(line: str) -> bool:
    stripped = line.strip()
    if not stripped or line[:1].isspace() or stripped.startswith("#"):
        return False
    return bool(_PROSE.match(stripped)) and _parse(stripped) is None


def _expand_tabs(code: str) -> str:
    return "\n".join(_expand_leading_tabs(line) for line in code.split("\n"))


def _expand_leading_tabs(line: str) -> str:
    indent = len(line) - len(line.lstrip(" \t"))
    return line[:indent].replace("\t", "    ") + line[indent:]


def _repair_body(code: str, prompt: str) -> str:
    """A function body that compiles after `prompt`; the first candidate that does, else the body as is."""
    body = _expand_tabs(code).strip("\n")
    lines = body.split("\n")
    dedented = textwrap.dedent(body)
    first_only = "    " + lines[0].lstrip() + ("\n" + "\n".join(lines[1:]) if len(lines) > 1 else "")
    indented = textwrap.indent(dedented, "    ")
    # a body must be indented under the signature; an unindented one would compile as module code
    candidates = [body, indented, first_only] if body[:1].isspace() else [first_only, indented]
    for candidate in candidates:
        if _compiles(prompt + candidate + "\n"):
            return candidate + "\n"
    return candidates[0] + "\n"


def _compiles(code: str) -> bool:
    """Whether `code` compiles (catches `return` outside a function, which ast.parse accepts). Never runs it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<answer>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def _drop_usage(code: str, entry_point: str | None) -> str:
    """Remove top-level asserts, prints, bare calls of the entry point and `if __name__ == ...` blocks."""
    tree = _parse(code)
    if tree is None:
        return code
    lines = code.split("\n")
    for node in reversed(tree.body):
        if _is_usage(node, entry_point) and node.end_lineno is not None:
            del lines[node.lineno - 1 : node.end_lineno]
    return "\n".join(lines).rstrip("\n") + "\n"


def _is_usage(node: ast.stmt, entry_point: str | None) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return isinstance(func, ast.Name) and func.id in {"print", "pprint", "main", entry_point}
    if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
        names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
        return names == ["__name__"]
    return False
