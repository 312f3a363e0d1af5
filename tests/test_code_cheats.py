"""Programs written to forge a pass: each must fail, on both launchers, through the code scorer.

The sample is HumanEval-style: a wrong answer to `add` that tries to make the tests pass anyway."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalkit.sandbox import host
from evalkit.scorers.code import CodeExecution
from evalkit.task.spec import Sample

REPO = Path(__file__).resolve().parent.parent
LAUNCHERS = ["zygote", "exec"] if host._probe().launcher == "zygote" else ["exec"]
SAMPLE = Sample(
    id="cheat",
    fields={
        "prompt": 'def add(a, b):\n    """The sum of a and b."""\n',
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n\n"
        "check(add)\n",
        "entry_point": "add",
        "solution": "def add(a, b):\n    return a + b\n",
    },
)
DATA_FILE = REPO / "tasks" / "data" / "builtin_code.jsonl"

CHEATS = {
    "1 call the harness's reporting function up the stack": """
        import sys
        def add(a, b):
            return 0
        frame = sys._getframe()
        while frame is not None:
            for name, value in list(frame.f_globals.items()) + list(frame.f_locals.items()):
                if callable(value) and name in ("report", "finish", "send"):
                    try:
                        value("ok")
                    except BaseException:
                        pass
            frame = frame.f_back
        """,
    "2 find the nonce or the verdict channel and write the success line": """
        import gc, os
        def add(a, b):
            return 0
        for obj in gc.get_objects():
            if isinstance(obj, dict) and "nonce" in obj:
                for fd in range(3, 32):
                    try:
                        os.write(fd, (str(obj["nonce"]) + " ok").encode())
                    except OSError:
                        pass
        for fd in range(3, 32):
            try:
                os.write(fd, b"ok")
            except OSError:
                pass
        """,
    "3 patch what the harness uses to report and exit": """
        import os, sys
        def add(a, b):
            return 0
        real_write = os.write
        os.write = lambda fd, data: real_write(fd, b"ok")
        os._exit = lambda code: None
        sys.exit = lambda *a: None
        """,
    "4 a trace hook that turns a failed assert into success": """
        import sys, os
        def add(a, b):
            return 0
        def tracer(frame, event, arg):
            if event == "exception" and arg[0] is AssertionError:
                for fd in range(3, 32):
                    try:
                        os.write(fd, b"ok")
                    except OSError:
                        pass
                os._exit(0)
            return tracer
        sys.settrace(tracer)
        sys.setprofile(lambda *a: None)
        """,
    "5a an object whose __eq__ is always True": """
        class Anything:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
        def add(a, b):
            return Anything()
        """,
    "5b a str subclass that equals everything": """
        class S(str):
            def __eq__(self, other):
                return True
            __hash__ = str.__hash__
        def add(a, b):
            return S("x")
        """,
    "5c an int subclass that equals everything": """
        class I(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def add(a, b):
            return I(0)
        """,
    "5d a list subclass that equals everything": """
        class L(list):
            def __eq__(self, other):
                return True
        def add(a, b):
            return L()
        """,
    "5e patch int.__eq__ through the type's dict": """
        import ctypes, gc
        def add(a, b):
            return 0
        try:
            d = gc.get_referents(int.__dict__)[0]
            d["__eq__"] = lambda self, other: True
            ctypes.pythonapi.PyType_Modified(ctypes.py_object(int))
        except Exception:
            pass
        """,
    "6 read the hidden tests from the program's own file": """
        import os, re, glob
        def add(a, b):
            return ANSWERS.get((a, b), 0)
        ANSWERS = {}
        for path in ["program.py", "test.py", "judge.json"] + glob.glob("/tmp/**/*", recursive=True):
            try:
                text = open(path).read()
            except OSError:
                continue
            for a, b, c in re.findall(r"candidate\\((-?\\d+), (-?\\d+)\\) == (-?\\d+)", text):
                ANSWERS[(int(a), int(b))] = int(c)
        assert ANSWERS == {}, "found the tests"
        """,
    "7 copy the reference solution from the task's data file": f"""
        import json
        def add(a, b):
            return 0
        try:
            rows = [json.loads(line) for line in open({str(DATA_FILE)!r})]
        except OSError:
            rows = []
        assert rows == [], "read the task data"
        """,
    "8 redefine the prompt's helpers and builtins the tests use": """
        import builtins
        builtins.AssertionError = type("Quiet", (Exception,), {})
        def add(a, b):
            return 0
        def check(candidate):
            pass
        """,
    "9 return a generator, then exit on the first call": """
        import os
        def add(a, b):
            os._exit(0)
        """,
    "10 kill the judge": """
        import os, signal
        def add(a, b):
            for pid in [1, os.getppid(), -1]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            return 0
        """,
}


# Cheats that need a test of a certain shape: (cheating program, honest program, test of `f`).
# The honest program proves the test can pass, so the cheat's failure is the judge's doing.
SHAPED_CHEATS = {
    "an object whose __contains__ is always True": (
        "class C:\n    def __contains__(self, item):\n        return True\n\ndef f(a, b):\n    return C()\n",
        "def f(a, b):\n    return [a + b]\n",
        "assert 5 in f(2, 3)\nassert 0 in f(-1, 1)\n",
    ),
    "a generator whose __contains__ lies": (
        "class G:\n    def __iter__(self):\n        return iter([0])\n    def __contains__(self, item):\n"
        "        return True\n\ndef f(a, b):\n    return G()\n",
        "def f(a, b):\n    return iter([a + b])\n",
        "assert 5 in f(2, 3)\n",
    ),
    "StopIteration ends the test's own loop early": (
        "def f(a, b):\n    raise StopIteration\n",
        "def f(a, b):\n    return a + b\n",
        "assert all(map(lambda p: f(*p[0]) == p[1], [((2, 3), 5), ((1, 1), 2)]))\n"
        "for ok in map(lambda p: f(*p) == sum(p), [(2, 3)]):\n    assert ok\n",
    ),
    "an exception whose message is 'ok'": (
        "class E(Exception):\n    def __str__(self):\n        return 'ok'\n\ndef f(a, b):\n    raise E()\n",
        "def f(a, b):\n    return a + b\n",
        "assert f(2, 3) == 5\n",
    ),
    "patch the builtins the judge might share": (
        "import builtins\nbuiltins.len = lambda x: 1\nbuiltins.isinstance = lambda *a: True\n"
        "def f(a, b):\n    return 'x'\n",
        "def f(a, b):\n    return [a + b]\n",
        "r = f(2, 3)\nassert isinstance(r, list) and len(r) == 1\n",
    ),
    "nan, which equals nothing": (
        "def f(a, b):\n    return float('nan')\n",
        "def f(a, b):\n    return a + b\n",
        "assert f(2, 3) == 5\n",
    ),
    "a list nested 9 000 deep": (
        "def f(a, b):\n    x = []\n    for _ in range(9000):\n        x = [x]\n    return x\n",
        "def f(a, b):\n    return a + b\n",
        "assert f(2, 3) == 5\n",
    ),
    "a raw frame of JSON nested 100 000 deep": (
        "import os, struct\ndef f(a, b):\n    body = b'{\"op\":\"reply\",\"value\":' + b'[' * 100000 + b']' * 100000"
        " + b'}'\n    os.write(3, struct.pack('>I', len(body)) + body)\n",
        "def f(a, b):\n    return a + b\n",
        "assert f(2, 3) == 5\n",
    ),
    "a raw reply that mutates what it was not given": (
        "import json, os, struct\ndef f(xs):\n"
        "    after = [[1, {'list': [0]}], [-2, {'list': [0]}], ['expected', {'list': [0]}]]\n"
        "    body = json.dumps({'op': 'reply', 'value': 0, 'after': after}).encode()\n"
        "    os.write(3, struct.pack('>I', len(body)) + body)\n",
        "def f(xs):\n    return sum(xs)\n",
        "expected = [5]\nassert f([2, 3]) == expected[0]\n",
    ),
    "a string larger than a frame": (
        "def f(a, b):\n    return 'x' * (70 << 20)\n",
        "def f(a, b):\n    return a + b\n",
        "assert f(2, 3) == 5\n",
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPED_CHEATS))
def test_every_cheat_on_a_test_of_its_shape_fails(scorer: CodeExecution, name: str):
    cheat, honest, test = SHAPED_CHEATS[name]
    sample = Sample(id="shaped", fields={"prompt": "", "test": test, "entry_point": "f"})
    assert scorer("```python\n" + honest + "```", sample).value == 1.0
    score = scorer("```python\n" + cheat + "```", sample)
    assert score.value == 0.0, f"{name}: {score.explanation}"


def test_a_test_that_swallows_every_exception_still_fails_when_the_program_dies(scorer: CodeExecution):
    sample = Sample(
        id="swallow",
        fields={"prompt": "", "entry_point": "f", "test": "try:\n    assert f() == 1\nexcept:\n    pass\n"},
    )
    assert scorer("```python\ndef f():\n    return 1\n```", sample).value == 1.0
    died = scorer("```python\nimport os\ndef f():\n    os._exit(0)\n```", sample)
    assert died.value == 0.0 and "exited" in died.explanation, died.explanation
    garbage = scorer("```python\nimport os\ndef f():\n    os.write(3, b'\\0\\0\\0\\2[]')\n```", sample)
    assert garbage.value == 0.0, garbage.explanation


@pytest.fixture(scope="module", params=LAUNCHERS)
def scorer(request: pytest.FixtureRequest):
    scorer = CodeExecution(timeout_s=5, workers=2)
    scorer._sandbox = host.Sandbox(scorer.limits, workers=2, launcher=request.param)
    yield scorer
    scorer.close()


def test_the_honest_solution_passes(scorer: CodeExecution):
    score = scorer(SAMPLE.fields["solution"], SAMPLE)
    assert score.value == 1.0, score.explanation
    assert score.metrics["forgeable"] == (0.0 if host._probe().isolated else 1.0)


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_every_cheat_fails(scorer: CodeExecution, name: str):
    score = scorer("```python\n" + textwrap.dedent(CHEATS[name]) + "```", SAMPLE)
    assert score.value == 0.0, f"{name}: {score.explanation}"
    assert score.metrics["pass"] == 0.0


def test_a_not_plain_return_value_is_explained(scorer: CodeExecution):
    score = scorer(
        "```python\n" + textwrap.dedent(CHEATS["5b a str subclass that equals everything"]) + "```", SAMPLE
    )
    assert "not plain data" in score.explanation and ".S" in score.explanation


EDGE = {
    "callables as arguments": (
        "def apply(f, xs):\n    return [f(x) for x in xs]\n",
        "assert apply(lambda x: x * 2, [1, 2]) == [2, 4]\nassert apply(str.upper, ['a']) == ['A']\n",
        "apply",
    ),
    "in-place mutation": (
        "def sort_in_place(xs, d):\n    xs.sort()\n    d['k'] = 1\n",
        "xs = [3, 1, 2]\nd = {}\nassert sort_in_place(xs, d) is None\nassert xs == [1, 2, 3] and d == {'k': 1}\n"
        "ys, e = [2, 1], {}\nsort_in_place(d=e, xs=ys)\nassert ys == [1, 2] and e == {'k': 1}\n",
        "sort_in_place",
    ),
    "generators": (
        "def gen(n):\n    for i in range(n):\n        yield i * i\n\ndef naturals():\n    i = 0\n    while True:\n"
        "        yield i\n        i += 1\n",
        "assert list(gen(4)) == [0, 1, 4, 9]\nit = naturals()\nassert next(it) == 0 and next(it) == 1\n"
        "assert sum(x for x, _ in zip(naturals(), range(5))) == 10\n",
        "gen",
    ),
    "printed output": (
        "def hello(name):\n    print('hello', name)\n",
        "import contextlib, io\nbuf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    hello('x')\n"
        "assert buf.getvalue() == 'hello x\\n'\n",
        "hello",
    ),
    "objects built by the test from the program's class (MBPP test_setup_code)": (
        "class Node:\n    def __init__(self, v):\n        self.v = v\n        self.left = None\n\n"
        "def depth(n):\n    return 0 if n is None else 1 + depth(n.left)\n",
        "root = Node(1)\nroot.left = Node(2)\nassert root.left.v == 2\nassert depth(root) == 2\n",
        "depth",
    ),
    "truth and membership of a program object (asked again after each change)": (
        "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n"
        "        self.items.append(x)\n    def __len__(self):\n        return len(self.items)\n"
        "    def __iter__(self):\n        return iter(self.items)\n",
        "s = Stack()\nassert not s and 1 not in s\ns.push(1)\nassert s and 1 in s and 2 not in s\n",
        "Stack",
    ),
    "a call that prints a lot, many times (more than our output file may hold)": (
        "def f(i):\n    print('x' * 1_000_000)\n    return i\n",
        "for i in range(40):\n    assert f(i) == i\n"
        "import contextlib, io\nbuf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    f(0)\n"
        "assert len(buf.getvalue()) == 1_000_001\n",
        "f",
    ),
    "standard containers, exact floats, big ints, bytes, sets": (
        "import collections\ndef f():\n    return (collections.Counter('aab'), 0.1 + 0.2, 2**200, b'\\x00', {1}, "
        "frozenset(), None, 1j, collections.OrderedDict(a=1))\n",
        "import collections\nc, x, big, b, s, fs, n, z, od = f()\nassert c == collections.Counter({'a': 2, 'b': 1})\n"
        "assert x == 0.30000000000000004 and big == 2**200 and b == b'\\x00' and s == {1} and fs == frozenset()\n"
        "assert n is None and z == 1j and od == {'a': 1} and type(c) is collections.Counter\n",
        "f",
    ),
}


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_cases_are_judged_like_in_process(scorer: CodeExecution, name: str):
    code, test, entry_point = EDGE[name]
    sample = Sample(id=name, fields={"prompt": "", "test": test, "entry_point": entry_point})
    score = scorer("```python\n" + code + "```", sample)
    assert score.value == 1.0, score.explanation
    wrong = scorer("```python\n" + code + f"\n{entry_point} = lambda *a, **k: None\n```", sample)
    assert wrong.value == 0.0


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_simulated_model_that_answers_with_cheats_scores_zero_end_to_end(
    tmp_path: Path, monkeypatch, launcher
):
    import evalkit
    from evalkit import sim
    from evalkit.sim.profiles import CHEATER
    from evalkit.task.spec import ScorerSpec, resolve_task

    monkeypatch.setenv("ROUTERAI_API_KEY", "sk-test-cheats")
    task = resolve_task("builtin_code")
    task.scorer = ScorerSpec(name="code", params={**task.scorer.params, "launcher": launcher})
    with sim.serve(tasks=[task], models=[CHEATER], latency_scale=0, api_key="sk-test-cheats") as server:
        result = evalkit.run(
            [task], [CHEATER.id], base_url=server.base_url, out=str(tmp_path), progress=False, limit=14
        )
    df = result.df
    assert len(df) == 14 and df.error.isna().all()
    assert (df.score == 0).all(), df[df.score > 0][["sample_id", "explanation"]]
    assert df.explanation.str.startswith(("fail", "timeout", "crash")).all()
    assert (df.score_forgeable == (0.0 if host._probe().isolated else 1.0)).all()
    assert evalkit.summarize(df)["n_forgeable"].tolist() == [0 if host._probe().isolated else 14]


# ---- batched calls (evalkit/sandbox/inside/prefetch.py) ---------------------------------------------


def _he(test_body: str, entry_point: str = "f") -> Sample:
    test = (
        "def check(candidate):\n"
        + textwrap.indent(textwrap.dedent(test_body), "    ")
        + f"\n\ncheck({entry_point})\n"
    )
    return Sample(id="batch", fields={"prompt": "", "test": test, "entry_point": entry_point})


def test_batched_calls_keep_their_order_and_the_programs_state(scorer: CodeExecution):
    code = "```python\nseen = []\ndef f(x):\n    seen.append(x)\n    print('call', x)\n    return len(seen) * 100 + x\n```"
    sample = _he("assert candidate(1) == 101\nassert candidate(5) == 205\nassert abs(candidate(-1)) == 299\n")
    assert scorer(code, sample).value == 1.0
    assert scorer(code, _he("assert candidate(5) == 105\nassert candidate(1) == 201\n")).value == 1.0
    assert scorer(code, _he("assert candidate(1) == 101\nassert candidate(5) == 105\n")).value == 0.0


def test_a_failed_assert_ends_the_sample_even_if_a_later_batched_call_never_returns(scorer: CodeExecution):
    code = "```python\ndef f(x):\n    while x == 3:\n        pass\n    return 0\n```"
    score = scorer(code, _he("assert candidate(1) == 1\nassert candidate(3) == 3\n"))
    assert score.value == 0.0 and score.explanation.startswith("fail: AssertionError"), score.explanation
    assert score.metrics["timeout"] == 0.0


def test_an_exception_in_a_batched_call_is_the_tests_failure(scorer: CodeExecution):
    code = "```python\ndef f(x):\n    if x == 2:\n        raise ValueError('two')\n    return x\n```"
    score = scorer(
        code, _he("assert candidate(1) == 1\nassert candidate(2) == 2\nassert candidate(3) == 3\n")
    )
    assert score.explanation == "fail: ValueError: two"


@pytest.mark.parametrize(
    ("body", "batched"),
    [
        (
            "assert candidate(1) == 1\nassert candidate([1, 2], k=3) == [2]\n",
            [([1], {}), ([[1, 2]], {"k": 3})],
        ),
        ("assert abs(candidate(2) - 1.5) < 1e-6\n", [([2], {})]),
        ("assert candidate(1) == 1 or candidate(2) == 2\n", None),  # the second call is conditional
        ("assert candidate(1) < candidate(2) < candidate(3)\n", None),  # chained: short-circuits
        ("assert [candidate(i) for i in range(3)] == [0, 1, 2]\n", None),
        ("x = 1\nassert candidate(x) == 1\n", None),  # not an assert, not literal
        ("assert callable(candidate)\n", None),  # the function is passed on
        ("assert candidate(1) == 1, candidate(2)\n", None),  # the message runs only on failure
        ("assert candidate(1) == 1 if True else 0\n", None),
    ],
)
def test_only_calls_whose_order_is_fixed_by_the_text_are_batched(body: str, batched):
    from evalkit.sandbox.inside import prefetch

    test = _he(body).fields["test"]
    assert prefetch.planned_calls(test, "", "f", {}) == (
        [(args, kwargs) for args, kwargs in batched] if batched else None
    )
    assert prefetch.planned_calls(test, "def g():\n    return f(1)\n", "f", {}) is None  # prompt calls it


def test_a_batch_sent_before_the_program_loads_is_harmless_when_loading_fails(scorer: CodeExecution):
    sample = _he("assert candidate(1) == 1\nassert candidate(2) == 2\n")
    missing = scorer("```python\ndef g(x):\n    return x\n```", sample)
    assert missing.explanation.startswith("fail: NameError"), missing.explanation
    broken = scorer("```python\ndef f(x):\n    return x\nraise RuntimeError('at import')\n```", sample)
    assert broken.explanation == "fail: RuntimeError: at import"
    assert scorer("```python\ndef f(x):\n    return x\n```", sample).value == 1.0


def test_the_samples_of_one_problem_share_its_analysis_and_keep_their_own_verdicts(scorer: CodeExecution):
    """pass@k: k answers to one problem; the tests are analysed once, each answer judged by itself."""
    host._analysed.cache_clear()
    sample = _he("assert candidate(1) == 1\nassert candidate(2) == 2\n")
    right, wrong = "```python\ndef f(x):\n    return x\n```", "```python\ndef f(x):\n    return 1\n```"
    values = [scorer(answer, sample).value for answer in (right, wrong, right, wrong)]
    assert values == [1.0, 0.0, 1.0, 0.0]
    info = host._analysed.cache_info()
    assert (info.misses, info.hits) == (1, 3)


def _judges_own_plan(test: str, prelude: str, entry_point: str) -> tuple[object, object]:
    """The calls the judge would batch by itself, and those it batches from our side's analysis."""
    import builtins

    from evalkit.sandbox.inside import judge, prefetch

    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    exec(compile(prelude, "prelude.py", "exec"), namespace)
    owned = {k: True for k in namespace if k != entry_point}  # the judge's own: nothing is a proxy yet
    own = prefetch.planned_calls(test, prelude, entry_point, owned)
    analysis = host._analysis(host.Job("", tests=test, prelude=prelude, entry_point=entry_point))
    assert analysis is not None
    sent = None
    if analysis["calls"] and prefetch.owns_all(analysis["needs"], owned):
        sent = [judge._literal(call) for call in analysis["calls"]]
    own = [(list(args), dict(kwargs)) for args, kwargs in own] if own else None
    return repr(own), repr(sent)


@pytest.mark.parametrize(
    ("prelude", "body"),
    [
        ("", "    assert candidate({'a', 'b'}, b'x', 1.5, -0.0, 10**30, k=(1, 2j)) == 1\n"),
        ("def helper(x):\n    return x\n", "    assert helper(candidate(1)) == 1\n"),  # the prompt's own
        ("", "    assert helper(candidate(1)) == 1\n"),  # not the judge's: maybe the program's
        ("import math\n", "    assert math.isclose(candidate(1), 1.0)\n"),
        ("", "    assert abs(candidate(1) - 1) < 1e-6\n"),
    ],
)
def test_our_side_plans_exactly_the_calls_the_judge_would(prelude: str, body: str):
    test = f"def check(candidate):\n{body}\ncheck(f)\n"
    own, sent = _judges_own_plan(test, prelude, "f")
    assert own == sent


def test_our_side_plans_exactly_the_calls_the_judge_would_on_humaneval_and_mbpp(shared_data: Path):
    from evalkit.sources import humaneval, mbpp

    rows = list(humaneval.read(shared_data / "humaneval" / "HumanEval.jsonl.gz"))
    rows += list(mbpp.read(shared_data / "mbpp" / "mbpp.jsonl", split="all", challenge_tests=True))
    batched = 0
    for row in rows:
        prelude = row.get("setup", "") + row.get("prompt", "")
        own, sent = _judges_own_plan(row["test"], prelude, row["entry_point"])
        assert own == sent, row["id"]
        batched += sent != "None"
    assert batched >= 143  # HumanEval's


def test_a_name_the_program_owns_in_the_judges_namespace_is_not_batched():
    from evalkit.sandbox.inside import prefetch

    test = _he("assert normalise(candidate(1)) == 1\n").fields["test"]
    assert prefetch.planned_calls(test, "", "f", {"normalise": True}) == [([1], {})]
    # a proxy of the program's (or a builtin it shadows) could run the program out of order
    assert prefetch.planned_calls(test, "", "f", {"normalise": False}) is None
    assert prefetch.planned_calls(test.replace("normalise", "abs"), "", "f", {"abs": False}) is None
