"""schedule.json marks a slot whose car is charged from PV (devices.ev.mode: solar), so the
executor follows the PV surplus in it (executor/evse/base.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from planner.plan.build import ev_solar


def _sol(imp, dis, pv):
    return SimpleNamespace(grid_import_kw=np.array(imp), battery_discharge_kw=np.array(dis),
                           pv_used_kw=np.array(pv))


def test_solar_only_when_the_car_is_charged_from_pv():
    sol = _sol([0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [8.0, 8.0, 8.0, 0.0])
    assert ev_solar(sol, 0, 5.0)  # PV covers it, nothing imported, battery not discharging
    assert not ev_solar(sol, 1, 5.0)  # part from the grid
    assert not ev_solar(sol, 2, 5.0)  # the home battery feeds it
    assert not ev_solar(sol, 3, 5.0)  # no PV
    assert not ev_solar(sol, 0, 0.0)  # not charging
