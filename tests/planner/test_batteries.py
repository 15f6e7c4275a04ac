"""Several batteries (issue 13, item 3): each ``batteries:`` entry is its own component.

Hourly slots, no grid hurdle, so the optimum on a small horizon can be worked out by hand.
Two batteries never move energy one into the other (that only burns losses), the balance
holds per slot, and schedule.json carries each battery's power (+ = charging) and SoC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from executor import plansource
from executor import schedule as sched
from planner import config
from planner.core.errors import ConfigError
from planner.history.store import Store
from planner.inputs import gather
from planner.optimize import model
from planner.plan import record, run
from planner.report import html as report_html

START = pd.Timestamp("2026-05-01T00:00Z")
HOME_OFF = {"min_soc_pct": 0, "max_soc_pct": 0}  # a home battery that holds nothing


def _unit(name: str, **kw) -> dict:
    return {"name": name, "capacity_kwh": 10, "max_charge_kw": 1, "max_discharge_kw": 1,
            "charge_efficiency": 0.9, "discharge_efficiency": 0.9, "min_soc_pct": 0,
            "soc_pct": 0, **kw}


def _cfg(batteries: list[dict], battery: dict | None = None, **planning):
    return config.from_mapping({
        "battery": battery if battery is not None else HOME_OFF,
        "grid": {"export_enabled": False},
        "planning": {"grid_hurdle_eur_per_kwh": 0.0, "terminal_value_quantile": 0.0,
                     **planning},
        "batteries": batteries})


def _inputs(cfg, buy, load, pv=None, soc_pct=0.0):
    n = len(buy)
    buy = np.asarray(buy, dtype=float)
    pv = np.zeros(n) if pv is None else np.asarray(pv, dtype=float)
    return gather.from_arrays(START, 3600, buy, pv, np.asarray(load, dtype=float), soc_pct, cfg,
                              buy_eur_per_kwh=buy, sell_eur_per_kwh=np.zeros(n))


def test_hand_computed_optimum():
    """Buy 0.1 then 0.5 EUR/kWh, 1 kW load in slot 1, a 1 kW battery at 0.9/0.9, empty, the
    energy left worth 0.9 × min(buy) = 0.09: each kWh charged at 0.1 brings 0.81 kWh back
    at 0.5 (0.405 saved), so it charges 1 kW in slot 0 and discharges 0.81 kW in slot 1."""
    cfg = _cfg([_unit("garage")])
    sol = model.solve(_inputs(cfg, [0.1, 0.5], [0.0, 1.0]), cfg)
    assert sol.device_kw["garage"] == pytest.approx([1.0, -0.81], abs=1e-6)
    assert sol.grid_import_kw == pytest.approx([1.0, 0.19], abs=1e-6)
    assert sol.outputs["garage_soc_pct"] == pytest.approx([9.0, 0.0], abs=1e-4)
    assert sol.energy_cost_eur == pytest.approx(0.1 + 0.5 * 0.19, abs=1e-6)


def test_never_charges_one_from_the_other():
    """The home battery and a second one over 48 random prices with PV: in no slot does one
    charge while the other discharges; the balance holds per slot."""
    rng = np.random.default_rng(7)
    home = {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5, "min_soc_pct": 0,
            "charge_efficiency": 0.95, "discharge_efficiency": 0.95}
    cfg = _cfg([_unit("garage", max_charge_kw=3, max_discharge_kw=2, soc_pct=60)],
               battery=home)
    for _ in range(5):
        n = 48
        buy = rng.uniform(0.05, 0.6, n)
        load = rng.uniform(0.2, 3.0, n)
        pv = np.clip(4 * np.sin(np.linspace(0, 2 * np.pi, n)), 0, None)
        data = _inputs(cfg, buy, load, pv, soc_pct=float(rng.uniform(0, 100)))
        sol = model.solve(data, cfg)
        other = sol.device_kw["garage"]
        home_ch, home_dis = sol.battery_charge_kw, sol.battery_discharge_kw
        cross = ((home_ch > 1e-6) & (other < -1e-6)) | ((home_dis > 1e-6) & (other > 1e-6))
        assert not cross.any(), np.flatnonzero(cross)
        supply = sol.pv_used_kw + sol.grid_import_kw + home_dis + sol.unserved_kw
        demand = data.load_kw + home_ch + sol.grid_export_kw + other
        assert np.abs(supply - demand).max() < 1e-6
        o = sol.outputs
        assert (np.minimum(o["garage_charge_kw"], o["garage_discharge_kw"]) <= 1e-6).all()


def test_schedule_round_trip(tmp_path):
    """Two further batteries: devices.<name>.power_kw (− = discharging) and soc_pct per slot
    in schedule.json, read back by the executor's reader; the plan checks pass."""
    cfg = _cfg([_unit("garage"), _unit("shed", capacity_kwh=5, soc_pct=100)])
    data = _inputs(cfg, [0.1, 0.5, 0.5, 0.1], [0.0, 1.0, 1.0, 0.0])
    result = run.plan_inputs(data, cfg)
    sched.write(tmp_path / "schedule.json", result.schedule)
    back = sched.read(tmp_path / "schedule.json")
    sol = result.plan.solution
    for i, slot in enumerate(back.slots):
        for name in ("garage", "shed"):
            assert slot.devices[name]["power_kw"] == pytest.approx(sol.device_kw[name][i],
                                                                   abs=1e-4)
            assert slot.devices[name]["soc_pct"] == pytest.approx(
                sol.outputs[f"{name}_soc_pct"][i], abs=1e-3)
    assert min(s.devices["shed"]["power_kw"] for s in back.slots) < -0.5  # it discharges
    assert set(result.plan.batteries) == {"garage", "shed"}
    text = run.summary(result, cfg)
    assert "garage: charge" in text and "shed: charge" in text
    rec = record.record_from_result(result, cfg)  # the baselines leave the batteries idle
    assert rec.devices["shed"].to_numpy() == pytest.approx(sol.device_kw["shed"], abs=1e-4)
    assert "battery: charge" in report_html.render(rec)


def test_home_battery_unchanged_without_batteries():
    """No batteries: the spec and the solution are what they were (no devices)."""
    cfg = config.from_mapping({"planning": {"grid_hurdle_eur_per_kwh": 0.0}})
    assert model.ModelSpec.from_config(cfg, 4, 3600).batteries == ()
    data = _inputs(cfg, [0.1, 0.5, 0.5, 0.1], [0.0, 1.0, 1.0, 0.0])
    assert model.solve(data, cfg).device_kw == {}


@pytest.mark.parametrize("entry, key", [
    ({"name": "battery"}, "batteries[0].name"),
    ({"name": "Bad-Name"}, "batteries[0].name"),
    ({"min_soc_pct": 80, "max_soc_pct": 50}, "batteries[0].min_soc_pct"),
])
def test_bad_batteries_name_the_key(entry, key):
    with pytest.raises(ConfigError) as err:
        _cfg([{**_unit("garage"), **entry}])
    assert key in str(err.value)


def test_duplicate_names_are_refused():
    with pytest.raises(ConfigError) as err:
        _cfg([_unit("garage"), _unit("garage")])
    assert "batteries[1].name" in str(err.value)


def test_plan_history_stores_each_batterys_soc(tmp_path):
    """plan_device.soc_pct (migration 0008): the further batteries' SoC per slot, read back by
    the store and by the executor's SQL plan source exactly as schedule.json has it."""
    cfg = _cfg([_unit("garage"), _unit("shed", capacity_kwh=5, soc_pct=100)])
    result = run.plan_inputs(_inputs(cfg, [0.1, 0.5, 0.5, 0.1], [0.0, 1.0, 1.0, 0.0]), cfg)
    rec = record.record_from_result(result, cfg)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with Store(url) as store:
        back = store.load(store.save(rec))
    want = {name: [s.devices[name]["soc_pct"] for s in result.schedule.slots]
            for name in ("garage", "shed")}
    for name, socs in want.items():
        np.testing.assert_allclose(back.device_soc[name], socs, atol=1e-9)
    assert min(want["shed"]) < 100 - 10  # the shed discharges: a real trajectory
    schedule = plansource.SqlSource(url).fetch()
    assert [s.devices["shed"]["soc_pct"] for s in schedule.slots] == pytest.approx(want["shed"])
