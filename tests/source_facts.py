"""Facts about a third-party function's code read from its syntax tree, not its text.

The guards in tests/service/test_bentoml_adapter.py and tests/service/test_server_balance.py check that the
pinned BentoML, circus and uvicorn still do what this project builds on: which call comes
first, with which arguments, inside which handler. Compared as ``ast.unparse`` renders them
(one canonical spelling), a reformatting upstream (line breaks, indentation, quotes, trailing
commas) changes nothing; a changed name, argument or order fails the guard by name.
"""

from __future__ import annotations

import ast
import inspect
import textwrap


def tree(obj) -> ast.AST:
    """The syntax tree of a function, class or module, as its source file has it."""
    return ast.parse(textwrap.dedent(inspect.getsource(obj)))


def _walk_in_order(node: ast.AST) -> list[ast.AST]:
    return sorted((n for n in ast.walk(node) if hasattr(n, "lineno")), key=lambda n: (n.lineno, n.col_offset))


def calls(node: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name`` (as written, e.g. ``load`` or ``socket.socket``), in source order."""
    return [n for n in _walk_in_order(node) if isinstance(n, ast.Call) and ast.unparse(n.func) == name]


def calls_ending(node: ast.AST, suffix: str) -> list[ast.Call]:
    """Calls whose callee, as written, ends with ``suffix`` (``.run``: ``uvicorn.Server(config).run``)."""
    return [n for n in _walk_in_order(node) if isinstance(n, ast.Call) and ast.unparse(n.func).endswith(suffix)]


def call(node: ast.AST, name: str) -> ast.Call:
    found = calls(node, name)
    assert found, f"no call of {name}() any more"
    return found[0]


def keywords(node: ast.Call) -> dict[str, str]:
    """A call's keyword arguments, each value as unparsed source."""
    return {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg}


def position(node: ast.AST) -> tuple[int, int]:
    return node.lineno, node.col_offset


def assigned(node: ast.AST, target: str, name: str) -> ast.Call:
    """The first call of ``name`` whose result is assigned to ``target`` (``svc = load(...)``)."""
    for n in _walk_in_order(node):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and ast.unparse(n.value.func) == name:
            if any(ast.unparse(t) == target for t in n.targets):
                return n.value
    raise AssertionError(f"no {target} = {name}(...) any more")


def functions(node: ast.AST, name: str) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(node) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name]


def handlers(node: ast.AST, exception: str) -> list[ast.ExceptHandler]:
    """``except <exception>`` clauses."""
    return [
        n for n in ast.walk(node) if isinstance(n, ast.ExceptHandler) and n.type and ast.unparse(n.type) == exception
    ]


def source_of(node: ast.AST) -> str:
    return ast.unparse(node)
