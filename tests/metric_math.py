"""CloudWatch metric math, the part main.tf's alarms use, on one window's values.

No CloudWatch runs here, so this stands in for it: an expression as main.tf writes it is parsed
(its syntax is a subset of Python's expressions) and evaluated with each metric's statistic for
the window (``values``: id → number; an id left out has no data). Functions: IF, FILL, LOG
(natural, as in metric math). Anything else is refused, so an expression using a function this
does not know fails loudly rather than being guessed at.
"""

from __future__ import annotations

import ast
import math
import operator

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_COMPARE = {ast.GtE: operator.ge, ast.Gt: operator.gt, ast.LtE: operator.le, ast.Lt: operator.lt}


class Unsupported(ValueError):
    """Syntax or a function that metric math as used here does not have."""


def evaluate(expression: str, values: dict[str, float], expressions: dict[str, str] | None = None) -> float | None:
    """The expression's value for one window; None when a metric it needs has no data. Other
    expressions of the same alarm (``expressions``: id → text) are evaluated where referenced."""
    expressions = expressions or {}

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in expressions:
                return evaluate(expressions[node.id], values, expressions)
            return values.get(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = value(node.operand)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            return None if left is None or right is None else _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            left, right = value(node.left), value(node.comparators[0])
            return None if left is None or right is None else float(_COMPARE[type(node.ops[0])](left, right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return call(node.func.id, node.args)
        raise Unsupported(f"not metric math as main.tf uses it: {ast.dump(node)[:200]}")

    def call(name, args):
        if name == "FILL" and len(args) == 2:
            filled = value(args[0])
            return value(args[1]) if filled is None else filled
        if name == "LOG" and len(args) == 1:
            inner = value(args[0])
            return None if inner is None else math.log(inner)
        if name == "IF" and len(args) == 3:
            condition = value(args[0])
            if condition is None:
                return None
            return value(args[1]) if condition else value(args[2])
        raise Unsupported(f"function {name} with {len(args)} arguments")

    return value(ast.parse(expression, mode="eval").body)
