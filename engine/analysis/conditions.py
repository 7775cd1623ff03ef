"""The condition language of analysis metrics: ``result < 0.05``, safely evaluated.

Only comparisons of ``result`` with numbers, joined by and/or/not, are allowed; the
expression is parsed with :mod:`ast` and walked, never passed to ``eval``.
"""

from __future__ import annotations

import ast
from typing import Annotated, Any

from pydantic import AfterValidator

_ALLOWED_NODES = (
    ast.Expression,
    ast.Compare,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
)


def parse_condition(text: str) -> ast.Expression:
    """Parse a condition such as ``result < 0.05`` into a vetted syntax tree.

    Only comparisons of ``result`` with numbers, joined by and/or/not, are allowed.
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        msg = f"condition {text!r} does not parse: {exc.msg}"
        raise ValueError(msg) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            msg = f"condition {text!r} may only compare `result` with numbers (found {type(node).__name__})"
            raise ValueError(msg)
        if isinstance(node, ast.Name) and node.id != "result":
            msg = f"condition {text!r} names {node.id!r}; only `result` is known"
            raise ValueError(msg)
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            msg = f"condition {text!r} compares with {node.value!r}; only numbers are allowed"
            raise ValueError(msg)
    return tree


def evaluate_condition(text: str, result: float) -> bool:
    """Evaluate a condition accepted by :func:`parse_condition` for one value."""
    return bool(_eval(parse_condition(text).body, result))


def _eval(node: ast.AST, result: float) -> Any:  # noqa: PLR0911 - one branch per node kind
    match node:
        case ast.Constant(value=v):
            return v
        case ast.Name():
            return result
        case ast.UnaryOp(op=ast.USub(), operand=o):
            return -_eval(o, result)
        case ast.UnaryOp(op=ast.Not(), operand=o):
            return not _eval(o, result)
        case ast.BoolOp(op=ast.And(), values=vs):
            return all(_eval(v, result) for v in vs)
        case ast.BoolOp(op=ast.Or(), values=vs):
            return any(_eval(v, result) for v in vs)
        case ast.Compare(left=left, ops=ops, comparators=rights):
            lhs = _eval(left, result)
            for op, right in zip(ops, rights, strict=True):
                rhs = _eval(right, result)
                if not _COMPARE[type(op)](lhs, rhs):
                    return False
                lhs = rhs
            return True
    msg = f"unsupported node {type(node).__name__}"
    raise ValueError(msg)


_COMPARE = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def _valid_condition(text: str | None) -> str | None:
    if text is not None:
        parse_condition(text)
    return text


Condition = Annotated[str | None, AfterValidator(_valid_condition)]
