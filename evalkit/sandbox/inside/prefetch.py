"""Which calls of the function under test a HumanEval-style test will make, known before it runs.

A test of the form `def check(candidate): assert candidate(<literals>) == …` followed by
`check(<entry point>)` makes its calls in an order fixed by its text. The judge sends them to the
program process in one batch; the program process runs them in that order, one after another, and
streams each result back; the judge still evaluates every assert itself, in order, and stops at the
first failure, which ends the sample there (later results are never looked at, and a later call
that loops does not turn the failure into a timeout). This saves one round trip between the two
processes per call.

Only tests where this cannot change what the program sees are batched: every statement of `check`
is an `assert`, every call of the parameter has literal arguments and sits where it is always
evaluated, exactly once, in left-to-right order (no `and`/`or`, conditional expressions, chained
comparisons, comprehensions, lambdas, dict or set displays, f-strings), and nothing else in the
test or the prompt can reach the program. Anything else runs call by call.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

# expression nodes whose children Python evaluates exactly once, in field order
_STRAIGHT = (
    ast.Call, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant, ast.Name, ast.Attribute,
    ast.Subscript, ast.Tuple, ast.List, ast.Slice, ast.keyword, ast.Load,
    ast.operator, ast.unaryop, ast.cmpop,
)  # fmt: skip


def planned_calls(test: str, prelude: str, entry_point: str, local: dict[str, bool]) -> list[Any] | None:
    """The literal (args, kwargs) of each call in evaluation order, or None when not batchable.
    `local` names the judge's namespace, each with whether the judge owns its value (a proxy of the
    program's does not): names the assertions use must be the judge's own."""
    try:
        tree, prompt = ast.parse(test), ast.parse(prelude)
    except SyntaxError:
        return None
    return plan(tree, prompt, entry_point, local)


def plan(tree: ast.Module, prompt: ast.Module, entry_point: str, local: dict[str, bool]) -> list[Any] | None:
    """`planned_calls` for a test and a prompt already parsed."""
    found = analyse(tree, prompt, entry_point)
    if found is None or not owns_all(found[1], local):
        return None
    return found[0]


def owns_all(names: Any, local: dict[str, bool]) -> bool:
    """Every name is the judge's own in `local` (its namespace: name -> owned), or a builtin it did not shadow."""
    return all(_judge_owns(str(name), local) for name in names)


def analyse(tree: ast.Module, prompt: ast.Module, entry_point: str) -> tuple[list[Any], set[str]] | None:
    """What needs no namespace: the literal calls in evaluation order, and the names the asserts
    read besides the parameter (`plan` holds only if each is the judge's own); None when the test's
    shape is not batchable."""
    if any(isinstance(n, ast.Name) and n.id == entry_point for n in ast.walk(prompt)):
        return None  # a prompt helper would call the program
    *before, check, last = tree.body if len(tree.body) >= 2 else (None, None, None)
    if not (_is_check(check) and _calls_check(last, check, entry_point)):
        return None
    if any(not _inert(stmt) for stmt in before):
        return None
    param = check.args.args[0].arg
    calls: list[Any] = []
    needs: set[str] = set()
    for stmt in check.body:
        if isinstance(stmt, ast.Pass) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        ):
            continue
        if not isinstance(stmt, ast.Assert) or not _collect(stmt.test, param, needs, calls):
            return None
        if stmt.msg is not None and any(isinstance(n, ast.Call) for n in ast.walk(stmt.msg)):
            return None
    return (calls, needs) if calls else None


def _is_check(node: Any) -> bool:
    return (
        isinstance(node, ast.FunctionDef)
        and not node.decorator_list
        and len(node.args.args) == 1
        and not (node.args.vararg or node.args.kwarg or node.args.kwonlyargs or node.args.posonlyargs)
        and not node.args.defaults
    )


def _calls_check(node: Any, check: Any, entry_point: str) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == check.name
        and len(node.value.args) == 1
        and not node.value.keywords
        and isinstance(node.value.args[0], ast.Name)
        and node.value.args[0].id == entry_point
    )


def _inert(stmt: ast.stmt) -> bool:
    """A top-level statement that cannot call anything (e.g. HumanEval's `METADATA = {...}`)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(stmt, (ast.Assign, ast.Expr)):
        return all(not isinstance(n, (ast.Call, ast.Name, ast.Attribute, ast.Subscript)) or
                   (isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)) for n in ast.walk(stmt))  # fmt: skip
    return False


def _collect(node: ast.AST, param: str, needs: set[str], calls: list[Any]) -> bool:
    """Post-order, field order: the evaluation order for the node types in _STRAIGHT."""
    if not isinstance(node, _STRAIGHT):
        return False
    if isinstance(node, ast.Compare) and len(node.comparators) != 1:
        return False  # `a < b < c` evaluates c only if a < b
    if isinstance(node, ast.Name):
        if node.id == param:
            return False  # the parameter only as the function of a call: never passed on
        needs.add(node.id)  # must be the judge's own (checked against its namespace)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == param:
        literal = _literal_arguments(node)
        if literal is None:
            return False
        calls.append(literal)
        return True
    if isinstance(node, ast.Call) and not isinstance(node.func, (ast.Name, ast.Attribute)):
        return False
    return all(_collect(child, param, needs, calls) for child in ast.iter_child_nodes(node))


def free_names(*trees: ast.AST) -> list[str]:
    """Names the test code reads that it does not get from builtins: the program may define them."""
    names = {node.id for tree in trees for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return sorted(n for n in names if not hasattr(builtins, n))


def _judge_owns(name: str, local: dict[str, bool]) -> bool:
    if name in local:
        return local[name]
    return hasattr(builtins, name)


def _literal_arguments(call: ast.Call) -> Any:
    try:
        args = [ast.literal_eval(a) for a in call.args if not isinstance(a, ast.Starred)]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if len(args) != len(call.args) or len(kwargs) != len(call.keywords):
        return None
    return args, kwargs
