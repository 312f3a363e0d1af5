"""What a simulated model writes for a sample: right or wrong, in the form the task's scorer expects.

The caller decides *whether* the answer is right (from the model's profile); this module decides
*what* the text is, deterministically for a given `random.Random`.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from evalkit.client.tokens import estimate_tokens, truncate_to_tokens
from evalkit.task.languages import answer_word
from evalkit.task.spec import Sample, ScorerSpec, Task

_REASONING: dict[str, tuple[str, ...]] = {
    "en": (
        "Let me work through this step by step.",
        "The problem gives {nums}.",
        "Checking the result once more.",
    ),
    "ru": ("Решим задачу по шагам.", "В условии даны {nums}.", "Проверим результат ещё раз."),
    "de": (
        "Gehen wir Schritt für Schritt vor.",
        "Gegeben sind {nums}.",
        "Ich prüfe das Ergebnis noch einmal.",
    ),
    "fr": (
        "Procédons étape par étape.",
        "L'énoncé donne {nums}.",
        "Je vérifie le résultat une fois de plus.",
    ),
    "es": ("Resolvamos paso a paso.", "El problema da {nums}.", "Compruebo el resultado una vez más."),
    "it": (
        "Procediamo passo dopo passo.",
        "Il problema fornisce {nums}.",
        "Controllo di nuovo il risultato.",
    ),
    "pt": ("Vamos resolver passo a passo.", "O problema dá {nums}.", "Verificando o resultado mais uma vez."),
    "id": (
        "Mari kita selesaikan langkah demi langkah.",
        "Soal memberikan {nums}.",
        "Periksa hasilnya sekali lagi.",
    ),
    "tl": ("Lutasin natin ito nang hakbang-hakbang.", "Ibinigay ang {nums}.", "Suriin muli ang sagot."),
    "vi": ("Hãy giải từng bước.", "Đề bài cho {nums}.", "Kiểm tra lại kết quả một lần nữa."),
    "ar": ("لنحل المسألة خطوة بخطوة.", "المعطيات هي {nums}.", "لنتحقق من النتيجة مرة أخرى."),
    "hi": ("आइए इसे चरण दर चरण हल करें।", "प्रश्न में {nums} दिए गए हैं।", "परिणाम को एक बार फिर जाँचते हैं।"),
    "th": ("มาแก้ปัญหาทีละขั้นตอนกัน", "โจทย์ให้ {nums}", "ตรวจสอบคำตอบอีกครั้ง"),
    "zh": ("让我们一步一步地解决这个问题。", "题目给出了 {nums}。", "再检查一遍结果。"),
    "ja": ("順を追って解いてみましょう。", "問題文には {nums} があります。", "結果をもう一度確認します。"),
    "bn": ("আসুন ধাপে ধাপে সমাধান করি।", "প্রশ্নে দেওয়া আছে {nums}।", "ফলাফলটি আবার যাচাই করি।"),
    "sw": ("Tutatue hatua kwa hatua.", "Swali linatoa {nums}.", "Tuhakiki jibu tena."),
    "te": ("దశలవారీగా పరిష్కరిద్దాం.", "ప్రశ్నలో {nums} ఇవ్వబడ్డాయి.", "ఫలితాన్ని మళ్లీ తనిఖీ చేద్దాం."),
}
# Thousands separators a model writing in that language may use.
_THOUSANDS: dict[str, str] = {
    "de": ".",
    "es": ".",
    "it": ".",
    "pt": ".",
    "id": ".",
    "ru": "\u00a0",
    "fr": "\u202f",
}
_DECIMAL_COMMA = {"de", "es", "it", "pt", "id", "ru", "fr", "vi", "tr"}
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"\w[\w'’-]*")
_NO_SPACES = {"th", "zh", "ja", "km", "lo", "my"}


@dataclass(frozen=True)
class Item:
    """A sample as the simulator knows it: where it came from and what else its task holds."""

    task: Task
    sample: Sample
    family: str
    scorer: str | None
    other_targets: Sequence[str]

    @cached_property
    def numbers(self) -> list[str]:
        """The first few numbers in the sample's text fields (quoted by the reasoning)."""
        text = " ".join(str(v) for v in self.sample.fields.values() if isinstance(v, str))
        return _NUMBER.findall(text)[:3]


def scorer_name(task: Task) -> str | None:
    return task.scorer.name if isinstance(task.scorer, ScorerSpec) else None


def compose(item: Item, correct: bool, rng: random.Random, verbosity: int, style: str = "") -> str:
    """The model's full reply to `item`; `style` opens a free-form (judged) answer."""
    scorer = item.scorer
    if scorer == "judge":
        return _free_form(item, correct, rng, verbosity, style)
    if scorer == "numeric":
        return _numeric(item, correct, rng, verbosity)
    if scorer == "choice":
        return _choice(item, correct, rng, verbosity)
    if scorer == "extractive":
        return _extractive(item, correct, rng)
    if scorer == "code" or item.family == "code":
        return _code(item, correct, rng)
    return _value(item, correct, rng, verbosity)


_THOUGHTS = (
    "Hmm, let me reconsider the question from the start.",
    "Подожди, проверю это ещё раз по-русски.",
    "换个角度再想一想。",
    "لحظة، سأراجع الخطوات مرة أخرى.",
    "Wait, is that really right? Let me check each step.",
)


def thinking(item: Item | None, correct: bool, rng: random.Random, tokens: int) -> str:
    """About `tokens` tokens of hidden thought, in several languages, that first tries the opposite
    answer: a decoy a scorer would take if the thought ever reached it."""
    if item is None:
        lines = ["The user wrote something I do not recognise; I will reply plainly."]
    else:
        lines = [compose(item, not correct, rng, 0), *_REASONING.get(item.sample.language or "en", ())]
    text = "\n".join(lines)
    while estimate_tokens(text) < tokens:
        text += "\n" + _THOUGHTS[rng.randrange(len(_THOUGHTS))]
    return truncate_to_tokens(text, max(tokens, 1))


def generic_reply(model_id: str, prompt_text: str) -> str:
    """The reply to a prompt that matches no known sample."""
    words = prompt_text.split()
    topic = " ".join(words[:8]) + (" ..." if len(words) > 8 else "")
    return f"(simulated reply from {model_id}) I have read your message about: {topic}"


def _reasoning(item: Item, verbosity: int) -> str:
    """`verbosity` sentences of reasoning in the sample's language, quoting the numbers it was given."""
    first, given, check = _REASONING.get(item.sample.language or "en", _REASONING["en"])
    numbers = item.numbers
    sentences = [first, given.format(nums=", ".join(numbers)), check] if numbers else [first, check]
    return "\n".join((sentences * 3)[: max(1, verbosity)])


def _numeric(item: Item, correct: bool, rng: random.Random, verbosity: int) -> str:
    target = item.sample.target[0] if item.sample.target else "0"
    value = _parse_number(target)
    if value is None:
        shown = target if correct else _other_value(item, rng)
    else:
        shown = _format_number(value if correct else _wrong_number(value, rng), item.sample.language, rng)
    return f"{_reasoning(item, verbosity)}\n{answer_word(item.sample.language)}: {shown}"


def _parse_number(text: str) -> float | None:
    cleaned = text.strip().replace(",", "").replace("\u00a0", "").replace(" ", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


def _wrong_number(value: float, rng: random.Random) -> float:
    options = [value + 1, value - 1, value * 2, value + rng.randint(2, 12), round(value / 2)]
    wrong = [o for o in options if o != value]
    return rng.choice(wrong)


def _format_number(value: float, language: str | None, rng: random.Random) -> str:
    integral = float(value).is_integer()
    text = f"{int(value)}" if integral else f"{value:.2f}".rstrip("0")
    if rng.random() >= 0.25 or language not in _THOUSANDS:  # usually plain digits, as prompts ask
        return text
    whole, _, fraction = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups = [digits[max(0, i - 3) : i] for i in range(len(digits), 0, -3)][::-1]
    whole = sign + _THOUSANDS[language].join(groups)
    if not fraction:
        return whole
    return f"{whole}{',' if language in _DECIMAL_COMMA else '.'}{fraction}"


def _choice(item: Item, correct: bool, rng: random.Random, verbosity: int) -> str:
    sample = item.sample
    letters = string.ascii_uppercase[: len(sample.choices) if sample.choices else 5]
    right = _correct_letter(sample, letters)
    letter = right if correct else rng.choice([c for c in letters if c != right] or ["Z"])
    return f"{_reasoning(item, verbosity)}\n{answer_word(sample.language)}: {letter}"


def _correct_letter(sample: Sample, letters: str) -> str:
    target = sample.target[0].strip() if sample.target else "A"
    if len(target) == 1 and target.upper() in string.ascii_uppercase:
        return target.upper()
    for letter, choice in zip(letters, sample.choices or [], strict=False):
        if choice.strip() == target:
            return letter
    if target.isdigit() and 0 <= int(target) < len(letters):  # a 0-based index column
        return letters[int(target)]
    return letters[0]


def _extractive(item: Item, correct: bool, rng: random.Random) -> str:
    target = item.sample.target[0] if item.sample.target else ""
    span = target
    if not correct:
        context = item.sample.fields.get("context")
        if not isinstance(context, str):
            context = max((v for v in item.sample.fields.values() if isinstance(v, str)), key=len, default="")
        span = _other_span(context, target, item.sample.language, rng) or _other_value(item, rng)
    return f"{answer_word(item.sample.language)}: {span}" if wants_answer_line(item) else span


def _other_span(context: str, target: str, language: str | None, rng: random.Random) -> str | None:
    """A span of the context of about the target's size that does not overlap the answer."""
    for _ in range(16):
        if language in _NO_SPACES:
            size = max(2, len(target))
            if len(context) <= size:
                return None
            start = rng.randrange(len(context) - size)
            span = context[start : start + size].strip()
        else:
            words = list(_WORD.finditer(context))
            size = max(1, min(4, len(target.split())))
            if len(words) <= size:
                return None
            start = rng.randrange(len(words) - size)
            span = context[words[start].start() : words[start + size - 1].end()]
            span = re.split(r"[.!?;:]\s", span)[0]  # a span of one sentence
        if span and not _overlaps(span, target, language):
            return span
    return None


def _overlaps(span: str, target: str, language: str | None) -> bool:
    """Whether a wrong span shares words (character pairs, for scripts without spaces) with the answer,
    which would earn it partial credit."""
    if language in _NO_SPACES:
        pairs = {target[i : i + 2] for i in range(len(target) - 1)} or {target}
        return any(span[i : i + 2] in pairs for i in range(max(1, len(span) - 1)))
    words = {w.casefold() for w in _WORD.findall(target)}
    return any(w.casefold() in words for w in _WORD.findall(span))


def _value(item: Item, correct: bool, rng: random.Random, verbosity: int = 0) -> str:
    target = item.sample.target[0] if item.sample.target else ""
    value = target if correct else _other_value(item, rng)
    if not wants_answer_line(item):
        return value
    return f"{_reasoning(item, verbosity)}\n{answer_word(item.sample.language)}: {value}"


def _free_form(item: Item, correct: bool, rng: random.Random, verbosity: int, style: str) -> str:
    """A judged answer: the reference (or the sample's `distractor`, another sample's reference) with
    0 to 2 × verbosity sentences of padding around it, so length says nothing about correctness."""
    distractor = item.sample.fields.get("distractor")
    if correct:
        core = item.sample.target[0] if item.sample.target else ""
    else:
        core = distractor if isinstance(distractor, str) and distractor else _other_value(item, rng)
    first, _given, check = _REASONING.get(item.sample.language or "en", _REASONING["en"])
    padding = [rng.choice((first, check)) for _ in range(rng.randint(0, 2 * verbosity))]
    cut = rng.randint(0, len(padding))
    return style + " ".join([*padding[:cut], core, *padding[cut:]])


def wants_answer_line(item: Item) -> bool:
    """Whether the prompt asks for a final "<answer word>:" line (in the sample's language or English)."""
    system, user, variables = item.task.prompt.for_language(item.sample.language)
    text = " ".join([system or "", user, *variables.values()])
    return any(f"{word}:" in text for word in {answer_word(item.sample.language), "Answer"})


def _other_value(item: Item, rng: random.Random) -> str:
    """A plausible wrong value: another sample's answer from the same task, or a perturbed target."""
    targets = set(item.sample.target)
    for _ in range(8):
        if not item.other_targets:
            break
        candidate = rng.choice(item.other_targets)
        if candidate not in targets:
            return candidate
    target = item.sample.target[0] if item.sample.target else ""
    number = _parse_number(target)
    if number is not None:
        return _format_number(_wrong_number(number, rng), None, rng)
    return f"not {target}" if target else "I don't know."


def _code(item: Item, correct: bool, rng: random.Random) -> str:
    solution = _solution(item.sample)
    if solution is None:
        return _value(item, correct, rng)
    if not correct:
        solution = break_code(solution, rng)
    return f"Here is the implementation:\n\n```python\n{solution.rstrip()}\n```"


# Wrong programs that try to make their tests pass anyway (docs/sandbox.md lists the classes).
_CHEATS: tuple[str, ...] = (
    "import sys\ndef {f}(*args, **kwargs):\n    return 0\nframe = sys._getframe()\nwhile frame is not None:\n"
    "    for name in ('report', 'finish'):\n        if callable(frame.f_globals.get(name)):\n"
    "            frame.f_globals[name]('ok')\n    frame = frame.f_back\n",
    "import gc, os\ndef {f}(*args, **kwargs):\n    return 0\nfor fd in range(3, 32):\n    try:\n"
    "        os.write(fd, b'ok')\n    except OSError:\n        pass\nos._exit(0)\n",
    "import os, sys\ndef {f}(*args, **kwargs):\n    return 0\nos._exit = lambda code: None\n"
    "sys.exit = lambda *a: None\n",
    "import os, sys\ndef {f}(*args, **kwargs):\n    return 0\ndef tracer(frame, event, arg):\n"
    "    if event == 'exception':\n        os._exit(0)\n    return tracer\nsys.settrace(tracer)\n",
    "class Anything(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
    "def {f}(*args, **kwargs):\n    return Anything()\n",
    "import re\ndef {f}(*args, **kwargs):\n    return ANSWERS.get(repr(args))\nANSWERS = {{}}\n"
    "for path in ('program.py', 'test.py', 'judge.json'):\n    try:\n"
    "        for call, value in re.findall(r'{f}\\((.*?)\\) == (.*)', open(path).read()):\n"
    "            ANSWERS[repr(eval('(' + call + ',)'))] = eval(value)\n    except Exception:\n        pass\n",
    "import glob, json\ndef {f}(*args, **kwargs):\n    return 0\n"
    "for path in glob.glob('{data}/*.jsonl'):\n    for line in open(path):\n"
    "        row = json.loads(line)\n        if row.get('entry_point') == '{f}':\n"
    "            exec(row['solution'], globals())\n",
)


def cheating_program(item: Item, rng: random.Random) -> str:
    """A wrong answer that tries to forge a pass (one of the cheat classes, chosen by `rng`)."""
    entry_point = str(item.sample.fields.get("entry_point") or "solution")
    data = Path(__file__).resolve().parents[2] / "tasks" / "data"  # this project's task files
    return f"```python\n{rng.choice(_CHEATS).format(f=entry_point, data=data)}```"


def _solution(sample: Sample) -> str | None:
    fields = sample.fields
    if isinstance(fields.get("canonical_solution"), str):  # HumanEval: signature + docstring, then the body
        return str(fields.get("prompt", "")) + fields["canonical_solution"]
    for name in ("code", "solution"):
        if isinstance(fields.get(name), str):
            return fields[name].replace("\r\n", "\n")
    return None


_MUTATIONS: tuple[tuple[str, str], ...] = (
    (r"<=", "<"),
    (r">=", ">"),
    (r"(?<![<>=!])<(?![<=])", "<="),
    (r"(?<![<>=!-])>(?![>=])", ">="),
    (r"\+ 1\b", "+ 2"),
    (r"- 1\b", "- 2"),
    (r"==", "!="),
    (r"\bTrue\b", "False"),
    (r"\bsorted\((\w+)\)", r"sorted(\1, reverse=True)"),
    (r"\[1:\]", "[2:]"),
    (r"range\((\w+)\)", r"range(\1 - 1)"),
)
_RETURN = re.compile(r"^(\s*)return (.+)$", re.MULTILINE)


def break_code(code: str, rng: random.Random) -> str:
    """A subtly wrong variant of working code (a flipped comparison, an off-by-one, a wrong return);
    always valid Python when the input was."""
    order = list(range(len(_MUTATIONS)))
    rng.shuffle(order)
    for index in order:
        pattern, replacement = _MUTATIONS[index]
        matches = list(re.finditer(pattern, code))
        if matches:
            match = rng.choice(matches)
            replaced = re.sub(pattern, replacement, match.group(0), count=1)
            return code[: match.start()] + replaced + code[match.end() :]
    returns = list(_RETURN.finditer(code))
    if returns:
        match = returns[-1]
        return code[: match.start()] + f"{match.group(1)}return None" + code[match.end() :]
    return code + "\nassert False, 'unfinished'\n"
