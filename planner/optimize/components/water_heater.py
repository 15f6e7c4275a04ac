"""The hot-water heater (``water_heater:``): its daily energy inside its window, planned in the
same problem as the battery.

It is a :class:`~planner.optimize.components.deferrable.DeferrableLoad` named ``water_heater``
whose day is Darkstar's: ``daily_kwh`` (or ``daily_run_h`` × ``power_kw``) per local day,
inside ``window`` plus ``defer_up_to_hours`` after it, for today and ``plan_days_ahead`` more
days (each once its whole period is inside the horizon); the energy already delivered today
(``Context.extra["water_heater"]``, from measurements where the caller has them) is subtracted
at a re-plan. It is a must-run load: missing energy costs the soft-target penalty and is
reported as a violation.

"Hold in cheap windows" and "PV surplus first" are not rules here: the heater takes the
slots where its energy is cheapest — surplus PV that would be exported at the sell price,
then the cheapest imports — and the battery discharges into it only where the energy it
gives up (its value later, after charge and discharge losses and wear) is worth less than the
import it replaces, because both are in one objective (tests/planner/test_water_heater.py).

Not modelled yet: a tank (thermal capacity, standing loss, energy bounds from min/max
temperature, a temperature sensor as state); the daily energy stands for the tank's needs.
"""

from __future__ import annotations

from planner.config.devices import WaterHeaterConfig, parse_window
from planner.optimize.components.deferrable import DeferrableLoad, LoadSpec

__all__ = ["NAME", "WaterHeater", "heater_spec"]

#: the component's name, and its key in schedule.json's ``devices``
NAME = "water_heater"


def heater_spec(cfg: WaterHeaterConfig, tz: str) -> LoadSpec:
    """The spec of the ``water_heater:`` section in timezone ``tz``."""
    start, end = parse_window(cfg.window)
    return LoadSpec(NAME, cfg.power_kw, cfg.energy_kwh, start, end, tz,
                    defer_min=int(round(cfg.defer_up_to_hours * 60)),
                    modulating=cfg.modulating, min_run_h=cfg.min_run_h,
                    value_eur_per_kwh=None, days_ahead=cfg.plan_days_ahead)


class WaterHeater(DeferrableLoad):
    """The heater: a must-run :class:`DeferrableLoad` called ``water_heater``."""

    def __init__(self, spec: LoadSpec):
        if spec.name != NAME:
            raise ValueError(f"the water heater's component is called {NAME!r}, "
                             f"got {spec.name!r}")
        super().__init__(spec)
