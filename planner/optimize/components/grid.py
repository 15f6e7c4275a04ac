"""The grid connection: import and export with per-slot limits, bought and sold at the tariff."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, Exclusive, Flow, put


class Grid(Component):
    """Import and export (+ import supplies the bus), each a :class:`Flow` bounded by the
    configured maximum (``max_export_kw`` = 0 when export is off) with a per-slot limit
    below it (0 in an outage).

    Cost: ``Δt Σ (buy + h)·imp + (h − sell)·exp`` with ``h`` the grid hurdle. DPP: price ×
    scale × x would multiply two Parameters, so each price × scale is one Parameter.
    Import and export are an :class:`Exclusive` pair, nettable where ``sell <= buy`` (netting
    cannot raise the cost there); only where selling beats buying does the exact re-solve
    need binaries for it.
    """

    def __init__(self, max_import_kw: float, max_export_kw: float, name: str = "grid"):
        super().__init__(name)
        self.max_import_kw, self.max_export_kw = max_import_kw, max_export_kw
        self.buy = self.sell = np.zeros(0)

    def build(self, n: int, dt_h: float) -> None:
        """Two limited flows and their per-slot costs."""
        super().build(n, dt_h)
        self.imp = Flow(f"{self.name}_import", n, self.max_import_kw)
        self.exp = Flow(f"{self.name}_export", n, self.max_export_kw)
        # (buy + hurdle) × import scale and (hurdle − sell) × export scale [EUR/kWh]
        self.imp_cost = cp.Parameter(n, name=f"{self.name}_import_cost")
        self.exp_cost = cp.Parameter(n, name=f"{self.name}_export_cost")
        self.bus_kw = self.imp.kw - self.exp.kw
        self.cost = dt_h * (self.imp_cost @ self.imp.x + self.exp_cost @ self.exp.x)
        self.flows = [self.imp, self.exp]
        self.exclusive = [Exclusive(self.imp, self.exp, lambda: self.sell <= self.buy)]

    def set_inputs(self, ctx: Context) -> None:
        """Limits and prices from the context."""
        self.buy, self.sell = ctx.buy_eur_per_kwh, ctx.sell_eur_per_kwh
        self.imp.set_limit(ctx.import_kw)
        self.exp.set_limit(ctx.export_kw)
        put(self.imp_cost, (self.buy + ctx.hurdle_eur_per_kwh) * self.imp.scale.value)
        put(self.exp_cost, (ctx.hurdle_eur_per_kwh - self.sell) * self.exp.scale.value)

    def outputs(self) -> dict[str, Any]:
        """``<name>_import_kw``, ``<name>_export_kw`` and the bill ``<name>_energy_cost_eur``
        = Δt Σ (buy·import − sell·export) (no hurdle)."""
        imp, exp = self.imp.value, self.exp.value
        return {f"{self.name}_import_kw": imp, f"{self.name}_export_kw": exp,
                f"{self.name}_energy_cost_eur": float(self.dt_h * (self.buy @ imp
                                                                   - self.sell @ exp))}
