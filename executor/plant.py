"""The home's physics on the AC bus for one interval: the one implementation.

Battery + inverter + house: PV, a load, a battery with AC-side power limits, charge and
discharge efficiencies and SoC limits, and a grid connection with import and export limits
(0 in an outage; no export when it is switched off or the sell price is negative). Standard
library and scalars only, so the executor's simulated plant (``executor.drivers.simulated``,
stepped every ≤ 10 s in W and %), the backtest (``planner.evaluate.physics.step``, per slot or
per minute) and the planner's baselines (``planner.plan.baselines``, over a plan's slots) all
run the same code.

:func:`step` runs one interval of ``dt_h`` hours. All powers are AC side in kW, ``P`` =
battery power (+ discharge, − charge), ``need = load − pv_used``::

    grid = need − P − unserved          (> 0 import, < 0 export; never both)
    soc' = soc + (eta_c·charge − discharge/eta_d)·dt

The battery command (``battery_kw``, or ``grid_kw``: hold the grid there, the battery takes
``need − grid_kw``) is clamped to the power limits and to what the SoC allows (hard
``[min_kwh, max_kwh]``, widened to the current SoC when it is outside: never drain or fill
further). When the grid cannot take the rest the battery deviates from the command the way a
backup/ESS inverter does: it discharges more to cover the load (what it cannot cover is
*unserved*) or charges more from surplus PV (what it cannot take is curtailed). PV is also
curtailed to ``pv_cap_kw`` when asked, unless the load needs it. Energy is conserved exactly::

    (pv + import + unserved)·dt = (load + export + curtailed)·dt + Δsoc + losses
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Limits(Protocol):
    """What :func:`step` reads of a site (:class:`PlantLimits`, or the backtest's ``Home``)."""

    min_kwh: float
    max_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    max_import_kw: float
    max_export_kw: float


@dataclass(frozen=True)
class PlantLimits:
    """Battery and grid limits of one site (energies in kWh, powers in kW, AC side)."""

    min_kwh: float
    max_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    max_import_kw: float = math.inf
    #: 0 when export is switched off
    max_export_kw: float = math.inf


class Flows(NamedTuple):
    """One interval's mean flows [kW] and the stored energy at its end [kWh]."""

    grid_import_kw: float
    grid_export_kw: float
    battery_charge_kw: float
    battery_discharge_kw: float
    pv_used_kw: float
    unserved_kw: float
    soc_kwh: float


def step(limits: Limits, soc_kwh: float, dt_h: float, pv_kw: float, load_kw: float,
         battery_kw: float = 0.0, pv_cap_kw: float = math.inf, grid_ok: bool = True,
         export_ok: bool = True, grid_kw: float | None = None) -> Flows:
    """Run one interval: the battery follows its command as far as the physics allow.

    Parameters
    ----------
    limits
        Battery and grid limits (:class:`Limits`).
    soc_kwh
        Stored energy at the start. [kWh]
    dt_h
        Length of the interval. [h]
    pv_kw, load_kw
        Actual PV and load over the interval (>= 0). [kW]
    battery_kw
        Wanted battery power, + discharge / − charge. [kW]
    pv_cap_kw
        Use at most this much PV (``inf``: no curtailment wanted) unless the load needs it.
    grid_ok
        False during an outage: no import, no export (islanded).
    export_ok
        False when nothing may be exported (e.g. a negative sell price): PV is curtailed.
    grid_kw
        When given, the inverter holds the grid here instead (+ import, − export): the battery
        is asked for ``load − pv_used − grid_kw`` and ``battery_kw`` is ignored.
    """
    eta_c, eta_d = limits.charge_efficiency, limits.discharge_efficiency
    floor = min(limits.min_kwh, soc_kwh)
    ceiling = max(limits.max_kwh, soc_kwh)
    dis_max = min(limits.max_discharge_kw, max(soc_kwh - floor, 0.0) * eta_d / dt_h)
    ch_max = min(limits.max_charge_kw, max(ceiling - soc_kwh, 0.0) / (eta_c * dt_h))
    imp_max = limits.max_import_kw if grid_ok else 0.0
    exp_max = limits.max_export_kw if (grid_ok and export_ok) else 0.0
    pv_used = min(pv_kw, pv_cap_kw) if pv_cap_kw < pv_kw else pv_kw
    unserved = 0.0
    need = load_kw - pv_used
    if grid_kw is not None:
        battery_kw = need - grid_kw
    if need - imp_max > dis_max and pv_used < pv_kw:  # curtailing would leave load unserved
        pv_used = min(pv_kw, pv_used + (need - imp_max - dis_max))
        need = load_kw - pv_used
    if need - imp_max > dis_max:  # short even with the battery at full discharge
        power = dis_max
    elif need + exp_max < -ch_max:  # surplus the grid and the battery cannot take
        power = -ch_max
        pv_used = max(0.0, pv_used + need + exp_max + ch_max)
        need = load_kw - pv_used
    else:
        power = min(max(battery_kw, -ch_max, need - imp_max), dis_max, need + exp_max)
    grid = need - power
    if grid > imp_max:  # what neither the grid nor the battery can supply
        unserved = grid - imp_max
        grid = imp_max
    elif grid < -exp_max:  # rounding only: the limits hold exactly
        grid = -exp_max
    imp = grid if grid > 0.0 else 0.0
    exp = -grid if grid < 0.0 else 0.0
    ch = -power if power < 0.0 else 0.0
    dis = power if power > 0.0 else 0.0
    soc = soc_kwh + (eta_c * ch - dis / eta_d) * dt_h
    soc = min(max(soc, floor), ceiling)  # rounding only: the clamps above keep it inside
    return Flows(imp, exp, ch, dis, pv_used, unserved, soc)


def self_consumption_kw(net_load_kw: float, soc_kwh: float, reserve_kwh: float,
                        discharge_efficiency: float, dt_h: float) -> float:
    """The battery command of plain self-consumption (what an inverter does by itself).

    The battery takes the net load ``load − pv`` (+ discharge to cover it, − charge from the
    surplus) but discharges no deeper than ``reserve_kwh`` over the interval; :func:`step`
    applies the power and SoC limits. [kW]
    """
    if net_load_kw > 0.0:
        return min(net_load_kw, max(soc_kwh - reserve_kwh, 0.0) * discharge_efficiency / dt_h)
    return net_load_kw
