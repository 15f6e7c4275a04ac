"""Deferrable loads (issue 13, item 2): ``loads:``, hand-computed optima on small horizons.

Hourly slots from midnight UTC, site timezone UTC, a battery that holds nothing, no hurdle:
each load's energy (or run time) inside its window, on/off in whole slots, a minimum run
block as one block, continuous loads at any power, only-if-cheap loads only below their value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.core.errors import ConfigError
from planner.inputs import gather
from planner.optimize import model

START = pd.Timestamp("2026-05-01T06:00Z")
#: 06:00 to 06:00; the window 18:00-06:00 is slots 12-23; its two cheapest hours (13 = 19:00
#: and 18 = 00:00) are apart, the cheapest adjacent pair is 15-16 (0.14 + 0.15)
PRICES = np.full(24, 0.40)
PRICES[12:24] = [0.30, 0.10, 0.30, 0.14, 0.15, 0.30, 0.11, 0.35, 0.35, 0.35, 0.35, 0.35]


def _cfg(*loads: dict):
    b = {"capacity_kwh": 10, "max_soc_pct": 0, "min_soc_pct": 0, "final_soc_pct": 0}
    return config.from_mapping({"site": {"timezone": "UTC"}, "battery": b,
                                "planning": {"grid_hurdle_eur_per_kwh": 0.0},
                                "loads": list(loads)})


def _inputs(cfg, buy, pv=None):
    n = len(buy)
    pv = np.zeros(n) if pv is None else pv
    return gather.from_arrays(START, 3600, buy, pv, np.zeros(n), 0.0, cfg,
                              buy_eur_per_kwh=np.asarray(buy), sell_eur_per_kwh=np.zeros(n))


DISHWASHER = {"name": "dishwasher", "power_kw": 2.0, "run_h": 2,
              "window": {"from": "18:00", "to": "06:00"}}


def test_on_off_load_takes_the_cheapest_hours_of_its_window():
    cfg = _cfg(DISHWASHER)
    data = _inputs(cfg, PRICES)
    sol = model.solve(data, cfg)
    power = sol.device_kw["dishwasher"]
    assert sorted(np.flatnonzero(power > 1e-6)) == [13, 18]
    assert set(np.round(power, 6)) <= {0.0, 2.0}
    assert sol.energy_cost_eur == pytest.approx(2 * (0.10 + 0.11), abs=1e-6)


def test_minimum_run_block_makes_it_one_block():
    # a 2 kW x 2 h programme that must run as one block: the cheapest adjacent pair 20-21
    cfg = _cfg({**DISHWASHER, "min_run_h": 2})
    data = _inputs(cfg, PRICES)
    sol = model.solve(data, cfg)
    power = sol.device_kw["dishwasher"]
    assert sorted(np.flatnonzero(power > 1e-6)) == [15, 16]
    assert sol.energy_cost_eur == pytest.approx(2 * (0.14 + 0.15), abs=1e-6)


def test_continuous_load_runs_at_any_power():
    # 3 kWh at up to 2 kW, modulating: 2 kWh at 19:00 (0.10), 1 kWh at 00:00 (0.11)
    cfg = _cfg({**DISHWASHER, "modulating": True, "run_h": None, "energy_kwh": 3.0})
    data = _inputs(cfg, PRICES)
    sol = model.solve(data, cfg)
    power = sol.device_kw["dishwasher"]
    assert power[13] == pytest.approx(2.0, abs=1e-6)
    assert power[18] == pytest.approx(1.0, abs=1e-6)
    assert power.sum() == pytest.approx(3.0, abs=1e-6)
    assert not sol.exact_milp  # no binaries for a continuous load


def test_only_if_cheap_runs_only_below_its_value():
    # worth 0.12 per kWh: only 19:00 (0.10) and 00:00 (0.11) are cheaper; needing 3 h at
    # 1 kW it runs those two and leaves the third hour undone (no violation: it is optional)
    cfg = _cfg({"name": "pool_pump", "power_kw": 1.0, "run_h": 3, "value_eur_per_kwh": 0.12,
                "window": {"from": "18:00", "to": "06:00"}})
    data = _inputs(cfg, PRICES)
    sol = model.solve(data, cfg)
    power = sol.device_kw["pool_pump"]
    assert sorted(np.flatnonzero(power > 1e-6)) == [13, 18]
    assert sol.outputs["pool_pump_shortfall_kwh"] == pytest.approx(1.0, abs=1e-6)


def test_pv_surplus_first_and_two_loads_together():
    # 2 kW of PV at 21:00 (slot 15, sold at 0): free energy, so both loads use it first
    pv = np.zeros(24)
    pv[15] = 2.0
    pump = {"name": "pool_pump", "power_kw": 1.0, "run_h": 1, "modulating": True,
            "window": {"from": "18:00", "to": "06:00"}}
    cfg = _cfg(DISHWASHER, pump)
    data = _inputs(cfg, PRICES, pv=pv)
    sol = model.solve(data, cfg)
    used = sol.device_kw["dishwasher"][15] + sol.device_kw["pool_pump"][15]
    assert used == pytest.approx(2.0, abs=1e-6)
    total = sum(v.sum() for v in sol.device_kw.values())
    assert total == pytest.approx(5.0, abs=1e-6)
    supply = sol.pv_used_kw + sol.grid_import_kw
    assert np.abs(supply - sum(sol.device_kw.values())).max() <= 1e-6


def test_loads_config_is_checked_naming_the_key():
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"loads": [
            {"name": "Dish Washer", "power_kw": 1, "run_h": 1},
            {"name": "pump", "power_kw": 1, "run_h": 1, "energy_kwh": 1,
             "modulating": True, "min_run_h": 1},
            {"name": "pump", "power_kw": 1},
        ]})
    text = str(info.value)
    for key in ("loads[0].name", "loads[1].energy_kwh", "loads[1].min_run_h",
                "loads[2].name", "loads[2].energy_kwh"):
        assert key in text, key
    with pytest.raises(ConfigError, match=r"loads\[0\].power_kw"):
        config.from_mapping({"loads": [{"name": "pump", "run_h": 1}]})
