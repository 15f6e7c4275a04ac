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

    Carbon (optional, ``ctx.extra["grid"]``: ``co2_g_per_kwh`` per slot and the weight
    ``co2_eur_per_kg``): the import cost per kWh gets ``+ g/kWh / 1000 × weight``, folded into
    the same import-cost Parameter (still DPP, no new term); without it nothing changes.
    """

    def __init__(self, max_import_kw: float, max_export_kw: float, name: str = "grid"):
        super().__init__(name)
        self.max_import_kw, self.max_export_kw = max_import_kw, max_export_kw
        self.buy = self.sell = np.zeros(0)
        self.co2_g_per_kwh: np.ndarray | None = None

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
        carbon = ctx.extra.get(self.name) or {}
        self.co2_g_per_kwh = carbon.get("co2_g_per_kwh")
        import_eur_per_kwh = self.buy + ctx.hurdle_eur_per_kwh
        if self.co2_g_per_kwh is not None and carbon.get("co2_eur_per_kg", 0.0) > 0:
            import_eur_per_kwh = import_eur_per_kwh + (
                np.asarray(self.co2_g_per_kwh, dtype=float) / 1000.0 * carbon["co2_eur_per_kg"])
        put(self.imp_cost, import_eur_per_kwh * self.imp.scale.value)
        put(self.exp_cost, (ctx.hurdle_eur_per_kwh - self.sell) * self.exp.scale.value)

    def outputs(self) -> dict[str, Any]:
        """``<name>_import_kw``, ``<name>_export_kw`` and the bill ``<name>_energy_cost_eur``
        = Δt Σ (buy·import − sell·export) (no hurdle); with a carbon input also
        ``<name>_co2_kg`` = Δt Σ import · g/kWh / 1000."""
        imp, exp = self.imp.value, self.exp.value
        out = {f"{self.name}_import_kw": imp, f"{self.name}_export_kw": exp,
               f"{self.name}_energy_cost_eur": float(self.dt_h * (self.buy @ imp
                                                                  - self.sell @ exp))}
        if self.co2_g_per_kwh is not None:
            out[f"{self.name}_co2_kg"] = float(self.dt_h * (np.asarray(self.co2_g_per_kwh)
                                                            @ imp) / 1000.0)
        return out
