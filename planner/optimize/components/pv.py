"""PV: the forecast is a limit, not a must — any of it may be curtailed."""

from __future__ import annotations

from typing import Any

from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, Flow, put


class Pv(Component):
    """Used PV (supplies the bus) = forecast ⊙ x with x in [0, 1], a :class:`Flow` whose
    limit is the forecast. Curtailing, ``pv − pv_used``, costs the grid hurdle like grid
    exchange does (docs/architecture.md, 23): ``Δt Σ h·pv·(1 − x)``, with ``h·pv`` one
    Parameter (DPP)."""

    def __init__(self, name: str = "pv"):
        super().__init__(name)

    def build(self, n: int, dt_h: float) -> None:
        """The used-PV flow and the curtailment hurdle."""
        super().build(n, dt_h)
        self.used = Flow(f"{self.name}_used", n)
        self.hurdle_pv = cp.Parameter(n, nonneg=True, name=f"{self.name}_hurdle")
        self.bus_kw = self.used.kw
        self.cost = dt_h * (cp.sum(self.hurdle_pv) - self.hurdle_pv @ self.used.x)
        self.flows = [self.used]

    def set_inputs(self, ctx: Context) -> None:
        """The forecast as the limit."""
        self.used.set_limit(ctx.pv_kw)
        put(self.hurdle_pv, ctx.hurdle_eur_per_kwh * ctx.pv_kw)

    def outputs(self) -> dict[str, Any]:
        """``<name>_used_kw``."""
        return {f"{self.name}_used_kw": self.used.value}
