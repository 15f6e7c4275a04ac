"""Device components of the optimisation (one class per device; see :mod:`.base`)."""

from planner.optimize.components.base import (
    EXCLUSIVE_TOL_KW,
    Component,
    Context,
    Exclusive,
    Flow,
    SlotLimits,
    put,
    values,
)
from planner.optimize.components.battery import Battery
from planner.optimize.components.grid import Grid
from planner.optimize.components.load import FixedLoad
from planner.optimize.components.pv import Pv

__all__ = ["EXCLUSIVE_TOL_KW", "Battery", "Component", "Context", "Exclusive", "FixedLoad",
           "Flow", "Grid", "Pv", "SlotLimits", "put", "values"]
