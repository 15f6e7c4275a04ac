"""The household load that must be served: a forecast, with unserved load as a costly slack."""

from __future__ import annotations

from typing import Any

from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, put, values


class FixedLoad(Component):
    """Draws the load forecast from the bus. What the other components cannot supply is
    *unserved* (a slack at ``unserved_penalty_eur_per_kwh``), so a plan always exists and
    reports it as a violation."""

    def __init__(self, name: str = "load"):
        super().__init__(name)

    def build(self, n: int, dt_h: float) -> None:
        """The load Parameter and the unserved-load slack."""
        super().build(n, dt_h)
        self.load = cp.Parameter(n, name=f"{self.name}_kw")
        self.penalty = cp.Parameter(nonneg=True, name=f"{self.name}_unserved_penalty")
        self.unserved = cp.Variable(n, bounds=[0, None], name=f"{self.name}_unserved_kw")
        self.bus_kw = self.unserved - self.load
        self.cost = dt_h * self.penalty * cp.sum(self.unserved)

    def set_inputs(self, ctx: Context) -> None:
        """The forecast and the site's unserved-load penalty."""
        put(self.load, ctx.load_kw)
        put(self.penalty, ctx.site.unserved_penalty_eur_per_kwh)

    def outputs(self) -> dict[str, Any]:
        """``<name>_unserved_kw``."""
        return {f"{self.name}_unserved_kw": values(self.unserved)}
