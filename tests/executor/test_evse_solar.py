"""PV-surplus following inside a solar slot (devices.ev.mode: solar): the executor, the
simulated plant (executor.plant physics) and the emulated Alfen Eve (a real pymodbus server)
in one loop; the car's draw is part of the plant's load, so the measured grid power closes the
loop as on a real site."""

from __future__ import annotations

from dataclasses import replace

import pytest
from gx_emulator.alfen_modbus import AlfenEve
from gx_emulator.plans import T0, FakeClock, build_plan

from executor import evse
from executor import schedule as sched
from executor.control import Limits
from executor.drivers.base import Measurement
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.evse.base import ChargerConfig, EvFollower, surplus_a
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

LOAD_W = 500.0


def _pv_w(now):
    """8 kW for 5 min, 5 kW for 5 min, then 2 kW (a cloud)."""
    m = (now - T0).total_seconds() / 60 % 15
    return 8000.0 if m < 5 else 5000.0 if m < 10 else 2000.0


def _run(tmp_path, ev_kw: float, mode: str | None = "solar", **options):
    clock = FakeClock(T0)
    with AlfenEve(clock, safe_current_a=6.0, validity_s=60) as eve:
        plant = Plant(100.0, 10.0, clock(), profile=lambda now: (_pv_w(now),
                                                                  LOAD_W + eve.power_w()))
        cfg = evse.validate("alfen", {"host": "127.0.0.1", "port": eve.port, **options}, [])
        follower = EvFollower(evse.create("alfen", cfg, clock=clock), max_plan_age_s=7200.0)
        path = tmp_path / "schedule.json"
        plan = build_plan(T0, 4, 100.0, valid_s=7200)
        entry = {"power_kw": ev_kw, **({"mode": mode} if mode else {})}
        sched.write(str(path), replace(plan, slots=[replace(s, devices={"ev": dict(entry)})
                                                    for s in plan.slots]))
        ex = Executor(SimulatedDriver(clock=clock, plant=plant), PlanTracker(FileSource(str(path))),
                      Limits(), str(tmp_path / "pause.json"), clock=clock, ev_charger=follower)
        amps = []
        for _ in range(90):  # one 15-min slot of 10-s ticks
            ex.tick()
            amps.append(round(eve.applied_a(), 2))
            clock.advance(10)
            plant.advance(clock())
        reason, energy = follower.last_reason, follower.slot_energy_kwh
        follower.shutdown()  # releases and closes the Modbus connection
        follower.last_reason, follower.slot_energy_kwh = reason, energy
        return amps, follower


def test_solar_slot_follows_the_surplus_until_the_planned_energy(tmp_path):
    amps, follower = _run(tmp_path, ev_kw=5.0)  # 1.25 kWh planned in the slot
    # 8 kW PV - 0.5 kW house = 7.5 kW -> 10.9 A; 5 kW -> 6.5 A; 2 kW: 2.2 A < 3 A -> stop
    assert amps[5] == pytest.approx(7500 / 690, abs=0.05)
    assert amps[35] == pytest.approx(4500 / 690, abs=0.05)
    assert amps[-1] == 0.0
    assert follower.slot_energy_kwh < 1.25  # the cloud came first: less than planned
    assert follower.last_reason.startswith("solar")


def test_solar_slot_stops_at_the_planned_energy(tmp_path):
    amps, follower = _run(tmp_path, ev_kw=2.0)  # 0.5 kWh: used up after 4 min at 7.5 kW
    first_zero = amps.index(0.0)
    assert 22 <= first_zero <= 27
    assert follower.slot_energy_kwh == pytest.approx(0.5, abs=0.03)
    assert "charged" in follower.last_reason


def test_without_solar_mode_the_plan_power_is_followed(tmp_path):
    for amps in (_run(tmp_path, ev_kw=5.0, mode=None)[0],
                 _run(tmp_path, ev_kw=5.0, solar_follow=False)[0]):
        assert all(a == pytest.approx(5000 / 690, abs=0.01) for a in amps)


def test_surplus_counts_battery_charging_and_not_its_discharge():
    cfg = ChargerConfig()
    m = Measurement(T0, 50.0, battery_power_w=-3000.0, grid_power_w=-1140.0, pv_power_w=6000.0)
    assert surplus_a(m, 0.0, cfg) == pytest.approx(4140 / 690)  # export + battery charging
    m = replace(m, battery_power_w=2000.0, grid_power_w=0.0)
    assert surplus_a(m, 4140.0, cfg) == pytest.approx(6.0)  # 2140 W -> 3.1 A, up to 6 A
    assert surplus_a(replace(m, battery_power_w=3000.0), 4140.0, cfg) == 0.0
