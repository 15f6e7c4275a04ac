"""The EV in the plan (issue 14, items 1 and 4): ``ev:`` in config.yaml, ``helios plan --demo``
writes ``devices.ev.power_kw`` / ``soc_pct`` per slot (schedule.json, plan_device), the
target is met by the departure in the cheapest slots (checked against a brute-force greedy
on the demo prices), an infeasible target is an ``ev_target`` violation, ``helios ev``
changes the next plan, and a bad key is exit 2 naming ``ev.<key>``."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from executor import schedule as sched
from planner.cli.main import main

NOW = "2026-05-01T10:07:00Z"  # 12:07 Berlin: departure 07:30 local tomorrow
EV = {"capacity_kwh": 60, "max_charge_kw": 11, "charge_efficiency": 0.9,
      "vehicle": {"type": "manual", "soc_pct": 30}, "plugged_in": True,
      "departure": "07:30", "target_soc_pct": 80}


def _write(tmp_path, ev: dict, **more) -> str:
    doc = {"ev": ev, "report": {"path": "report.html"}, **more}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _plan(cfg_path: str, *args: str):
    return CliRunner().invoke(main, ["plan", "--config", cfg_path, "--demo", "--now", NOW,
                                     *args])


def _ev(schedule: sched.Schedule) -> tuple[np.ndarray, np.ndarray]:
    kw = np.array([s.devices["ev"]["power_kw"] for s in schedule.slots])
    soc = np.array([s.devices["ev"]["soc_pct"] for s in schedule.slots])
    return kw, soc


def _departure_slots(schedule: sched.Schedule, hhmm: str = "07:30") -> int:
    """Number of slots that end by the first local ``hhmm`` after NOW."""
    now = pd.Timestamp(NOW)
    day = now.tz_convert("Europe/Berlin").normalize().tz_localize(None)
    h, m = (int(x) for x in hhmm.split(":"))
    at = next(t for t in ((day + pd.Timedelta(days=k, hours=h, minutes=m))
                          .tz_localize("Europe/Berlin").tz_convert("UTC") for k in range(3))
              if t > now)
    ends = pd.DatetimeIndex([s.start for s in schedule.slots]) + pd.Timedelta(
        seconds=schedule.slot_s)
    return int((ends <= at).sum())


def test_helios_plan_demo_with_an_ev_writes_devices_ev(tmp_path):
    result = _plan(_write(tmp_path, EV))
    assert result.exit_code == 0, result.output
    assert "ev: " in result.output and "at the departure" in result.output
    assert "charging at full power from plug-in" in result.output
    schedule = sched.read(tmp_path / "schedule.json")
    kw, soc = _ev(schedule)
    dt_h = schedule.slot_s / 3600
    assert kw.max() <= 11 + 1e-6 and kw.min() >= -1e-9
    # the SoC per slot follows the power: 30 % + 0.9 * energy / 60 kWh (trips after 07:30)
    k = _departure_slots(schedule)
    expected = 30 + 100 * 0.9 * np.cumsum(kw[:k]) * dt_h / 60
    assert soc[:k] == pytest.approx(expected, abs=2e-3)
    assert soc[k - 1] >= 80 - 1e-3  # the target by the departure
    assert kw[k] == 0.0  # away after 07:30 until 18:00
    for s in schedule.slots:  # the balance of every slot, the car included
        supply = s.pv_used_kw + s.grid_import_kw + s.battery_discharge_kw
        demand = (s.load_kw + s.battery_charge_kw + s.grid_export_kw
                  + sum(d["power_kw"] for d in s.devices.values()))
        assert abs(supply - demand) <= 1e-3
    assert not [v for v in schedule.violations if v.kind.startswith("ev")]
    con = sqlite3.connect(tmp_path / "helios.db")
    stored = con.execute("select sum(power_kw) from plan_device where device = 'ev'"
                         ).fetchone()[0]
    baselines_json = con.execute("select baselines from plan_history").fetchone()[0]
    con.close()
    assert stored == pytest.approx(kw.sum(), abs=1e-3)
    ev_rec = json.loads(baselines_json)["ev"]
    assert ev_rec["soc_pct"] == pytest.approx(list(soc), abs=1e-3)
    first = ev_rec["sessions"][0]
    assert first["soc_pct"] >= 80 - 1e-3
    assert first["cost_eur"] <= first["at_plugin_cost_eur"] + 1e-6
    html = (tmp_path / "report.html").read_text()
    assert 'id="ev"' in html and "SoC " in html


def _greedy_cost(kw_cap: float, need_kwh: float, headroom_kwh: float,
                 price_segments: list[tuple[float, float]]) -> float:
    """Brute force: the cheapest way to draw ``need_kwh`` (at most ``headroom_kwh``) from
    segments (price EUR/kWh, kWh available), taking every negative-price segment."""
    cost, need, room = 0.0, need_kwh, headroom_kwh
    for price, kwh in sorted(price_segments):
        take = min(kwh, room if price < 0 else need)
        if take <= 0:
            continue
        cost += take * price
        need -= take
        room -= take
    assert need <= 1e-9
    return cost


def test_the_target_is_met_in_the_cheapest_slots_before_departure(tmp_path):
    # a negligible home battery and no near-term hurdle: the car's slots are the cheapest
    # energy before 07:30 (PV surplus at max(sell, 0), the rest at buy)
    ev = {**EV, "trip_kwh": 0}
    cfg_path = _write(tmp_path, ev, battery={"capacity_kwh": 0.01, "max_charge_kw": 0.001,
                                             "max_discharge_kw": 0.001},
                      planning={"grid_hurdle_eur_per_kwh": 0.0})
    result = _plan(cfg_path)
    assert result.exit_code == 0, result.output
    schedule = sched.read(tmp_path / "schedule.json")
    kw, soc = _ev(schedule)
    dt = schedule.slot_s / 3600
    k = _departure_slots(schedule)
    segments = []
    for s in schedule.slots[:k]:
        surplus = max(0.0, s.pv_kw - s.load_kw)
        free = min(surplus, 11.0)
        segments.append((max(s.sell_eur_per_kwh, 0.0), free * dt))
        segments.append((s.buy_eur_per_kwh, (11.0 - free) * dt))
    need = (80 - 30) / 100 * 60 / 0.9
    best = _greedy_cost(11.0, need, (100 - 30) / 100 * 60 / 0.9, segments)
    planned = 0.0
    for s, p in zip(schedule.slots[:k], kw[:k], strict=True):
        free = min(max(0.0, s.pv_kw - s.load_kw), p)
        planned += (free * max(s.sell_eur_per_kwh, 0.0) + (p - free) * s.buy_eur_per_kwh) * dt
    assert planned == pytest.approx(best, abs=0.02)
    assert soc[k - 1] >= 80 - 1e-3
    # and the plan is not "charge at plug-in": that costs more on these prices
    plain = sum(s.buy_eur_per_kwh * min(11.0, (need - 11.0 * dt * i)) * dt
                for i, s in enumerate(schedule.slots[:int(np.ceil(need / 11.0 / dt))]))
    assert planned < plain


def test_an_infeasible_target_charges_at_full_power_and_reports_ev_target(tmp_path):
    # 10 % -> 100 % of 100 kWh = 100 kWh by 14:00 local: 1 h 53 min at 3.7 kW is far too little
    ev = {**EV, "capacity_kwh": 100, "max_charge_kw": 3.7, "vehicle": {"type": "manual",
                                                                        "soc_pct": 10},
          "departure": "14:00", "target_soc_pct": 100, "phases": 1}
    result = _plan(_write(tmp_path, ev))
    assert result.exit_code == 0, result.output
    assert "violation: ev_target" in result.output
    schedule = sched.read(tmp_path / "schedule.json")
    kw, _soc = _ev(schedule)
    k = _departure_slots(schedule, "14:00")
    assert kw[:k] == pytest.approx(np.full(k, 3.7), abs=1e-4)  # full power until 14:00
    v = next(v for v in schedule.violations if v.kind == "ev_target")
    assert v.unit == "kWh" and v.amount > 80
    assert pd.Timestamp(v.first_slot).tz_convert("Europe/Berlin").strftime("%H:%M") == "14:00"
    assert "14:00" in v.message


def test_helios_ev_target_and_now_change_the_next_plan(tmp_path):
    cfg_path = _write(tmp_path, EV)
    runner = CliRunner()
    res = runner.invoke(main, ["ev", "target", "95", "--by", "06:00", "--config", cfg_path,
                               "--now", NOW])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ev_override.json").exists()
    assert _plan(cfg_path).exit_code == 0
    schedule = sched.read(tmp_path / "schedule.json")
    kw, soc = _ev(schedule)
    k = _departure_slots(schedule, "06:00")
    assert soc[k - 1] >= 95 - 1e-3  # 95 % by 06:00 instead of 80 % by 07:30
    res = runner.invoke(main, ["ev", "now", "50", "--config", cfg_path, "--now", NOW])
    assert res.exit_code == 0, res.output
    assert _plan(cfg_path).exit_code == 0
    kw_now, soc_now = _ev(sched.read(tmp_path / "schedule.json"))
    # 30 -> 50 % of 60 kWh = 12 kWh stored: 4.85 slots at 11 kW, so 50 % by the end of the
    # fifth slot (the earliest it can be), where the plan before had only ~40 %
    assert soc[4] < 45
    assert soc_now[4] >= 50 - 1e-3
    assert kw_now[:4].min() > 9.0
    res = runner.invoke(main, ["ev", "clear", "--config", cfg_path])
    assert res.exit_code == 0 and "cleared" in res.output
    assert not (tmp_path / "ev_override.json").exists()
    # an order whose time has passed is removed by the next plan
    runner.invoke(main, ["ev", "target", "90", "--by", "10:30", "--config", cfg_path,
                         "--now", "2026-05-01T06:00:00Z"])
    assert _plan(cfg_path).exit_code == 0
    assert not (tmp_path / "ev_override.json").exists()


@pytest.mark.parametrize(("ev", "key"), [
    ({**EV, "capacity_kwhh": 60}, "ev.capacity_kwhh"),
    ({**EV, "max_charge_kw": -1}, "ev.max_charge_kw"),
    ({**EV, "departure": "7h30"}, "ev.departure"),
    ({**EV, "departure": {"mon": "07:30", "funday": "08:00"}}, "ev.departure.funday"),
    ({**EV, "vehicle": {"type": "evcharger"}}, "ev.vehicle.type"),
    ({**EV, "vehicle": {"type": "manual", "soc": 30}}, "ev.vehicle.soc"),
    ({**EV, "phases": 2}, "ev.phases"),
    ({**EV, "target_soc_pct": 120}, "ev.target_soc_pct"),
])
def test_bad_ev_keys_exit_2_naming_the_key(tmp_path, ev, key):
    result = _plan(_write(tmp_path, ev))
    assert result.exit_code == 2, result.output
    assert key in result.output
    assert not (tmp_path / "schedule.json").exists()


def test_without_ev_nothing_changes(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("report: {path: report.html}\n")
    assert _plan(str(path)).exit_code == 0
    schedule = sched.read(tmp_path / "schedule.json")
    assert all(s.devices is None for s in schedule.slots)
    assert 'id="ev"' not in (tmp_path / "report.html").read_text()
