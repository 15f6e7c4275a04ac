"""Spot price → retail buy and sell prices.

A tariff is either parts, ``(spot × multiplier + fixed_eur_per_kwh) × (1 + vat_pct/100)``, or a
formula string in the variable ``price`` (the spot price, EUR/kWh), e.g.
``"(price * 1.21) + 0.15"`` or ``"max(price, 0) * 0.9"``.

Formulas are parsed with :mod:`ast` and evaluated by walking a whitelist of node types
(numbers, ``price``, ``+ - * /``, unary minus, parentheses, ``min``/``max``/``abs``); nothing
is ever passed to ``eval``. They are vectorised over numpy arrays.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_FORMULA_LENGTH = 300
_VARIABLES = ("price",)
_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "min": lambda *a: np.minimum.reduce(np.broadcast_arrays(*a)),
    "max": lambda *a: np.maximum.reduce(np.broadcast_arrays(*a)),
    "abs": np.abs,
}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
}


class TariffFormulaError(ValueError):
    """A tariff formula is not acceptable; ``expected``/``got`` feed a ConfigProblem."""

    def __init__(self, expected: str, got: str):
        self.expected = expected
        self.got = got
        super().__init__(f"expected {expected}, got {got}")


_EXPECTED = ("a formula in 'price' using numbers, + - * /, parentheses and min/max/abs, "
             "e.g. \"(price * 1.21) + 0.15\"")


def _check(node: ast.AST, text: str) -> None:
    def bad(what: str) -> TariffFormulaError:
        return TariffFormulaError(_EXPECTED, f"{text!r} ({what})")

    if isinstance(node, ast.Expression):
        _check(node.body, text)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise bad(f"constant {node.value!r} is not a number")
    elif isinstance(node, ast.Name):
        if node.id not in _VARIABLES:
            raise bad(f"unknown name {node.id!r}; the only variable is 'price'")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise bad(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, text)
        _check(node.right, text)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise bad(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, text)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise bad("only min, max and abs may be called")
        if node.keywords or not node.args:
            raise bad(f"{node.func.id}() takes positional arguments only")
        if node.func.id == "abs" and len(node.args) != 1:
            raise bad("abs() takes one argument")
        for arg in node.args:
            _check(arg, text)
    else:
        raise bad(f"{type(node).__name__} is not allowed")


def _evaluate(node: ast.AST, price: np.ndarray) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, price)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return price
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, price), _evaluate(node.right, price))
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, price)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*(_evaluate(a, price) for a in node.args))
    raise AssertionError(f"unchecked node {node!r}")  # _check() rejects everything else


def compile_formula(text: str) -> Callable[[np.ndarray], np.ndarray]:
    """Parse and check a tariff formula; return a vectorised function of the spot price.

    Raises
    ------
    TariffFormulaError
        When the text is too long, not an expression, uses anything outside the whitelist, or
        does not yield finite numbers (e.g. division by zero).
    """
    if len(text) > MAX_FORMULA_LENGTH:
        raise TariffFormulaError(f"a formula of at most {MAX_FORMULA_LENGTH} characters",
                                 f"{len(text)} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise TariffFormulaError(_EXPECTED, f"{text!r} (syntax error at column "
                                 f"{exc.offset})") from None
    _check(tree, text)

    def apply(price: np.ndarray) -> np.ndarray:
        price = np.asarray(price, dtype=float)
        with np.errstate(all="ignore"):
            out = np.broadcast_to(np.asarray(_evaluate(tree, price), dtype=float), price.shape)
        return np.array(out, dtype=float)

    probe = apply(np.array([-0.5, -0.1, 0.0, 0.1, 0.3, 1.0]))
    if not np.all(np.isfinite(probe)):
        raise TariffFormulaError(_EXPECTED, f"{text!r} (does not give finite prices, e.g. "
                                 "division by zero)")
    return apply


def compile_tariff(spec: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A vectorised spot→retail function from a ``TariffParts`` or a formula string."""
    if isinstance(spec, str):
        return compile_formula(spec)
    multiplier = float(spec.multiplier)
    fixed = float(spec.fixed_eur_per_kwh)
    vat = 1.0 + float(spec.vat_pct) / 100.0

    def apply(price: np.ndarray) -> np.ndarray:
        return (np.asarray(price, dtype=float) * multiplier + fixed) * vat

    return apply
