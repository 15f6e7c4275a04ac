"""The EV component joins the real model: targets in the cheapest and sunniest slots before
departure, an infeasible target at full power with its shortfall, "minimum SoC now", away
after departure, across midnight and on both DST days (Europe/Berlin)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.inputs import gather as inputs
from planner.optimize import model
from planner.optimize.components.ev import Ev, EvSpec, availability


def _cfg():
    """A small lossless battery, no wear, no terminal value, no hurdle."""
    b = {"capacity_kwh": 2, "max_charge_kw": 2, "max_discharge_kw": 2, "charge_efficiency": 1,
         "discharge_efficiency": 1, "min_soc_pct": 0, "max_soc_pct": 100, "final_soc_pct": 0}
    return config.from_mapping({"battery": b, "grid": {"max_import_kw": 30},
                                "planning": {"grid_hurdle_eur_per_kwh": 0.0}})


def _solve(start, buy, spec, sell=None, pv=None, load=None, slot_s=3600, extra=None):
    cfg = _cfg()
    n = len(buy)
    data = inputs.from_arrays(pd.Timestamp(start), slot_s, buy,
                              np.zeros(n) if pv is None else pv,
                              np.ones(n) if load is None else load, 0.0, cfg,
                              buy_eur_per_kwh=np.asarray(buy, dtype=float),
                              sell_eur_per_kwh=np.zeros(n) if sell is None else sell)
    spec_m = model.ModelSpec.from_config(cfg, data.n, data.slot_s)
    m = model.Model(spec_m, extra=[Ev(spec)])
    assert m.lp.is_dpp()
    sol = m.solve(data, cfg, extra={"ev": extra or {}})
    base = model.solve(data, cfg)
    residual = np.abs(sol.pv_used_kw + sol.grid_import_kw + sol.battery_discharge_kw
                      + sol.unserved_kw - data.load_kw - sol.battery_charge_kw
                      - sol.grid_export_kw - sol.outputs["ev_power_kw"]).max()
    assert residual <= 1e-6
    return sol, base, m


def test_target_is_met_in_the_cheapest_slots_before_departure():
    # Monday 2026-05-04 18:00 CEST (16:00 UTC), 14 hourly slots; departure 07:30 CEST =
    # 05:30 UTC: 13 slots end by then, the 05:00 UTC slot is cut by the departure. 40 % -> 80 %
    # of 50 kWh = 20 kWh stored = 22.22 kWh drawn at 90 %: 10 kW at 0.10, 10 kW at 0.12,
    # 2.22 kW at 0.15 = 2.5333 EUR more than the house alone. The 0.01 slot is the cut one.
    buy = np.full(14, 0.30)
    buy[[8, 9, 10]] = [0.10, 0.12, 0.15]
    buy[13] = 0.01
    spec = EvSpec(capacity_kwh=50, max_charge_kw=10, charge_efficiency=0.9, target_soc_pct=80)
    sol, base, _ = _solve("2026-05-04T16:00Z", buy, spec, extra={"soc_pct": 40})
    ev = sol.outputs["ev_power_kw"]
    want = np.zeros(14)
    want[[8, 9, 10]] = [10, 10, 20 / 0.9 - 20]
    np.testing.assert_allclose(ev, want, atol=1e-5)
    assert sol.objective_eur - base.objective_eur == pytest.approx(
        1.0 + 1.2 + 0.15 * (20 / 0.9 - 20), abs=1e-5)
    assert sol.outputs["ev_departure_soc_pct"] == pytest.approx(80, abs=1e-4)
    assert sol.outputs["ev_shortfall_kwh"] == pytest.approx(0, abs=1e-6)
    assert sol.outputs["ev_plugged"][13] == 0 and sol.outputs["ev_plugged"][:13].all()
    assert sol.device_kw["ev"] is ev or np.allclose(sol.device_kw["ev"], ev)


def test_target_is_met_from_pv_surplus():
    # at home all day, leaving 17:00 CEST (15:00 UTC); 6 kW PV in 08-12 UTC, 1 kW load:
    # 20 kWh surplus, sold at 0.05; 10 kWh for the car (lossless) from the surplus instead
    # of at 0.30 from the grid: 0.50 EUR of lost feed-in, nothing bought for it
    n = 12
    pv = np.zeros(n)
    pv[4:8] = 6.0
    spec = EvSpec(capacity_kwh=50, max_charge_kw=10, charge_efficiency=1.0, target_soc_pct=70,
                  departure="17:00")
    sol, base, _ = _solve("2026-06-01T04:00Z", np.full(n, 0.30), spec, sell=np.full(n, 0.05),
                          pv=pv, extra={"soc_pct": 50})
    ev = sol.outputs["ev_power_kw"]
    assert ev[4:8].sum() == pytest.approx(10.0, abs=1e-5)
    assert np.abs(np.delete(ev, range(4, 8))).max() <= 1e-6
    assert sol.objective_eur - base.objective_eur == pytest.approx(0.50, abs=1e-5)
    assert (sol.grid_import_kw[4:8] <= 1e-6).all()


def test_infeasible_target_charges_at_full_power_and_reports_the_shortfall():
    # plugged in now (Monday 04:00 CEST = 02:00 UTC), leaving 07:30: slots 02, 03, 04 UTC
    # end by 05:30. 10 % -> 90 % of 60 kWh = 48 kWh wanted, 3 h x 11 kW x 0.9 = 29.7 possible,
    # at any price below the penalty: full power in all three, 18.3 kWh short
    buy = np.array([0.50, 0.40, 0.45, 0.05, 0.05, 0.05])
    spec = EvSpec(capacity_kwh=60, max_charge_kw=11, charge_efficiency=0.9, target_soc_pct=90)
    sol, _, m = _solve("2026-05-04T02:00Z", buy, spec, extra={"soc_pct": 10})
    ev = sol.outputs["ev_power_kw"]
    np.testing.assert_allclose(ev[:3], 11.0, atol=1e-6)
    assert sol.outputs["ev_shortfall_kwh"] == pytest.approx(48 - 29.7, abs=1e-5)
    sessions = m.problem["ev"].sessions()
    assert len(sessions) == 1
    assert sessions[0]["departure"] == pd.Timestamp("2026-05-04T05:30Z")
    assert sessions[0]["soc_pct"] == pytest.approx(100 * (6 + 29.7) / 60, abs=1e-4)
    # away after the departure: nothing in the cheap slots while the car is gone
    np.testing.assert_allclose(ev[3:], 0.0, atol=1e-9)


def test_minimum_soc_now_charges_at_once_whatever_the_price():
    # dear now, cheap from slot 4; 20 % of 50 kWh, charge at once to 50 % (15 kWh at 10 kW,
    # lossless: slot 0 full, slot 1 half), the rest to 80 % in the cheap slots
    buy = np.array([0.60, 0.60, 0.60, 0.60, 0.10, 0.10, 0.10, 0.10])
    spec = EvSpec(capacity_kwh=50, max_charge_kw=10, charge_efficiency=1.0, target_soc_pct=80,
                  departure="09:30")
    start = "2026-05-04T00:00Z"  # 02:00 CEST, leaving 07:30 UTC: slots 0-6 end before it
    sol, _, _ = _solve(start, buy, spec, extra={"soc_pct": 20, "min_soc_now_pct": 50})
    ev = sol.outputs["ev_power_kw"]
    np.testing.assert_allclose(ev[:2], [10.0, 5.0], atol=1e-5)
    np.testing.assert_allclose(ev[2:4], 0.0, atol=1e-6)
    assert ev[4:].sum() == pytest.approx(15.0, abs=1e-5)
    assert sol.outputs["ev_min_now_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    # without it, everything in the cheap slots
    sol2, _, _ = _solve(start, buy, spec, extra={"soc_pct": 20})
    np.testing.assert_allclose(sol2.outputs["ev_power_kw"][:4], 0.0, atol=1e-6)


def test_departure_across_midnight_and_away_until_plugged_in_again():
    # 20:00 CEST Monday (18:00 UTC), 24 h: leaving Tuesday 06:00 CEST (04:00 UTC), home again
    # 18:00 CEST (16:00 UTC). The cheapest slots are while it is away: unused.
    spec = EvSpec(capacity_kwh=50, max_charge_kw=10, charge_efficiency=1.0, target_soc_pct=80,
                  departure="06:00", arrival="18:00", trip_kwh=7.0)
    buy = np.full(24, 0.30)
    buy[10:22] = 0.01
    buy[[3, 4]] = [0.20, 0.25]
    sol, _, _ = _solve("2026-05-04T18:00Z", buy, spec, extra={"soc_pct": 40})
    plugged = sol.outputs["ev_plugged"]
    np.testing.assert_array_equal(plugged, [1] * 10 + [0] * 12 + [1] * 2)
    ev = sol.outputs["ev_power_kw"]
    np.testing.assert_allclose(ev[[3, 4]], 10.0, atol=1e-5)  # 20 kWh in the two cheapest
    assert np.abs(ev[10:22]).max() <= 1e-9
    soc = sol.outputs["ev_soc_pct"]
    assert abs(ev).sum() == pytest.approx(20.0, abs=1e-5)
    assert soc[9] == pytest.approx(80.0, abs=1e-4)
    assert soc[10] == pytest.approx(80.0 - 14.0, abs=1e-4)  # 7 kWh of 50 used by the trip


@pytest.mark.parametrize("start, departure_utc, slots", [
    # 00:00 local on the spring-forward day: 07:30 CEST = 05:30 UTC, 6.5 h = 26 quarters
    ("2026-03-28T23:00Z", "2026-03-29T05:30Z", 26),
    # 00:00 local on the fall-back day: 07:30 CET = 06:30 UTC, 8.5 h = 34 quarters
    ("2026-10-24T22:00Z", "2026-10-25T06:30Z", 34),
])
def test_departure_on_dst_days_follows_the_wall_clock(start, departure_utc, slots):
    n = 40
    spec = EvSpec(capacity_kwh=100, max_charge_kw=4, phases=1, charge_efficiency=1.0,
                  target_soc_pct=100, departure="07:30", arrival="18:00")
    index = pd.date_range(start, periods=n, freq="15min")
    av = availability(index, 900, spec, plugged_now=True)
    assert av.departures == [(pd.Timestamp(departure_utc), slots)]
    np.testing.assert_array_equal(av.plugged, [1] * slots + [0] * (n - slots))
    # the plan: exactly that many quarter-hours at 4 kW, nothing after, the rest short
    sol, _, _ = _solve(start, np.full(n, 0.20), spec, slot_s=900, extra={"soc_pct": 0})
    ev = sol.outputs["ev_power_kw"]
    np.testing.assert_allclose(ev[:slots], 4.0, atol=1e-6)
    np.testing.assert_allclose(ev[slots:], 0.0, atol=1e-9)
    assert sol.outputs["ev_shortfall_kwh"] == pytest.approx(100 - slots, abs=1e-5)


def test_weekday_schedule_and_one_off_target():
    # no departure on Saturday; a one-off "80 % by 09:00" replaces Sunday's 10:00
    spec = EvSpec(departure={"mon": "07:30", "sat": None, "sun": "10:00"})
    index = pd.date_range("2026-05-08T22:00Z", periods=48, freq="1h")  # Sat 00:00 CEST
    av = availability(index, 3600, spec, plugged_now=True)
    assert [d for d, _ in av.departures] == [pd.Timestamp("2026-05-10T08:00Z")]
    av = availability(index, 3600, spec, True, one_off=pd.Timestamp("2026-05-10T07:00Z"))
    assert [d for d, _ in av.departures] == [pd.Timestamp("2026-05-10T07:00Z")]
    with pytest.raises(ValueError, match="ev.departure.tue"):
        EvSpec(departure={"tue": "7:3"})
    with pytest.raises(ValueError, match="ev.min_charge_kw"):
        EvSpec(max_charge_kw=3, phases=3)  # 6 A x 3 x 230 V = 4.14 kW


def test_not_plugged_in_now_waits_for_the_arrival():
    # 12:00 CEST, away; home at 18:00 CEST (16:00 UTC), leaving 07:30
    spec = EvSpec(arrival="18:00", departure="07:30")
    index = pd.date_range("2026-05-04T10:00Z", periods=24, freq="1h")
    av = availability(index, 3600, spec, plugged_now=False)
    np.testing.assert_array_equal(av.plugged[:6], 0)
    np.testing.assert_array_equal(av.plugged[6:19], 1)  # 16:00 .. 04:00 UTC slots
    assert av.plugged[19] == 0  # cut by 05:30 UTC
    assert av.departures == [(pd.Timestamp("2026-05-05T05:30Z"), 19)]
