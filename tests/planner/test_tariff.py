"""Tariff formulas: safe, whitelisted, vectorised."""

from __future__ import annotations

import numpy as np
import pytest

from planner.config import TariffParts
from planner.core.tariff import TariffFormulaError, compile_formula, compile_tariff


@pytest.mark.parametrize(("text", "price", "expected"), [
    ("(price * 1.21) + 0.15", 0.1, 0.1 * 1.21 + 0.15),
    ("price", -0.5, -0.5),
    ("-price + 1", 0.25, 0.75),
    ("max(price, 0) * 0.9", -0.2, 0.0),
    ("min(price, 0.3, 0.2)", 0.5, 0.2),
    ("abs(price) / 2", -0.4, 0.2),
    ("+price", 0.3, 0.3),
])
def test_formula_values(text, price, expected):
    assert compile_formula(text)(np.array([price]))[0] == pytest.approx(expected)


def test_formula_is_vectorised():
    out = compile_formula("price * 2 + 0.1")(np.array([0.0, 0.1, -0.1]))
    np.testing.assert_allclose(out, [0.1, 0.3, -0.1])
    const = compile_formula("0.3")(np.array([0.0, 1.0]))
    np.testing.assert_allclose(const, [0.3, 0.3])


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo pwned')", "price.__class__", "[price]", "price if 1 else 0",
    "lambda: 1", "price ** 2", "price % 2", "open('x')", "price < 1", "'a'", "True",
    "max(price, key=abs)", "abs(price, 1)", "x" * 400, "price; 1",
])
def test_unsafe_or_unsupported_formulas_are_rejected(text):
    with pytest.raises(TariffFormulaError):
        compile_formula(text)


def test_parts():
    fn = compile_tariff(TariffParts(multiplier=1.0, fixed_eur_per_kwh=0.15, vat_pct=21))
    assert fn(np.array([0.1]))[0] == pytest.approx((0.1 + 0.15) * 1.21)
