"""Carbon in the plan (issue 13, item 4): ``planning.co2_eur_per_kg`` adds g/kWh / 1000 ×
weight to each imported kWh; kg CO2 of the plan in the summary, the run row and the report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.inputs import gather
from planner.optimize import model
from planner.plan import record, run
from planner.report import html as report_html

START = pd.Timestamp("2026-05-01T00:00Z")
#: a lossless 10 kWh battery, empty, nothing left is worth anything (final SoC 0 %)
BATTERY = {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5, "min_soc_pct": 0,
           "charge_efficiency": 1, "discharge_efficiency": 1, "final_soc_pct": 0}


def _cfg(weight: float, carbon: dict | None = None):
    doc = {"battery": BATTERY, "grid": {"export_enabled": False},
           "planning": {"grid_hurdle_eur_per_kwh": 0.0, "co2_eur_per_kg": weight}}
    if carbon is not None:
        doc["carbon"] = carbon
    return config.from_mapping(doc)


def _inputs(cfg, co2=None):
    buy = np.array([0.21, 0.20])
    data = gather.from_arrays(START, 3600, buy, np.zeros(2), np.array([0.0, 1.0]), 0.0, cfg,
                              buy_eur_per_kwh=buy, sell_eur_per_kwh=np.zeros(2))
    return data if co2 is None else dataclasses.replace(data, co2_g_per_kwh=np.asarray(co2))


def test_weight_shifts_import_to_the_low_carbon_slot():
    """Buy 0.21 then 0.20 EUR/kWh, 1 kWh needed in slot 1, carbon 100 then 500 g/kWh.
    Cost only: import in slot 1 (0.20 < 0.21). At 0.1 EUR/kg: 0.21 + 0.01 = 0.22 < 0.20 +
    0.05 = 0.25, so the battery takes the kWh in slot 0 and gives it back in slot 1."""
    cost_only = model.solve(_inputs(_cfg(0.0), [100, 500]), _cfg(0.0))
    assert cost_only.grid_import_kw == pytest.approx([0.0, 1.0], abs=1e-6)
    assert cost_only.outputs["grid_co2_kg"] == pytest.approx(0.5)
    green = model.solve(_inputs(_cfg(0.1), [100, 500]), _cfg(0.1))
    assert green.grid_import_kw == pytest.approx([1.0, 0.0], abs=1e-6)
    assert green.battery_charge_kw == pytest.approx([1.0, 0.0], abs=1e-6)
    assert green.outputs["grid_co2_kg"] == pytest.approx(0.1)
    assert green.energy_cost_eur == pytest.approx(0.21)  # the bill has no carbon in it
    assert green.objective_eur == pytest.approx(0.21 + 0.01)


def test_zero_weight_is_identical_to_no_carbon_input():
    rng = np.random.default_rng(3)
    cfg = config.from_mapping({"planning": {"co2_eur_per_kg": 0.0}})
    n = 96
    buy = rng.uniform(-0.05, 0.5, n)
    data = gather.from_arrays(START, 900, buy, rng.uniform(0, 4, n), rng.uniform(0, 3, n), 40.0,
                              cfg, buy_eur_per_kwh=buy, sell_eur_per_kwh=buy * 0.5)
    plain = model.solve(data, cfg)
    with_co2 = model.solve(dataclasses.replace(data, co2_g_per_kwh=rng.uniform(50, 600, n)), cfg)
    for name in ("grid_import_kw", "grid_export_kw", "battery_charge_kw", "soc_kwh"):
        assert np.array_equal(getattr(plain, name), getattr(with_co2, name)), name
    assert plain.objective_eur == with_co2.objective_eur
    assert "grid_co2_kg" not in plain.outputs


def test_gathered_from_csv_into_summary_and_run_row(tmp_path):
    """``carbon: {type: csv}`` through gather (held after the file ends, flagged), the plan's
    kg CO2 in the summary and in the run row's baselines JSON."""
    path = tmp_path / "co2.csv"
    rows = [f"{(START + pd.Timedelta(hours=h)).strftime('%Y-%m-%dT%H:%M:%SZ')},{100 + 10 * h}"
            for h in range(24)]
    path.write_text("ts_utc,co2_g_per_kwh\n" + "\n".join(rows) + "\n")
    cfg = config.with_demo_providers(config.from_mapping(
        {"carbon": {"type": "csv", "path": str(path)}, "planning": {"co2_eur_per_kg": 0.05}}))
    now = START + pd.Timedelta(minutes=7)
    data = gather.gather(cfg, now)
    assert data.co2_g_per_kwh[0] == 100 and data.co2_g_per_kwh[4] == 110  # 15-min slots
    assert data.co2_g_per_kwh[-1] == 330  # held at the last value
    status = next(s for s in data.status if s.kind == "carbon")
    assert status.degraded and "held at 330" in status.detail
    result = run.plan_inputs(data, cfg, now)
    expected = float(np.sum(result.plan.solution.grid_import_kw * data.co2_g_per_kwh)
                     * data.dt_h / 1000)
    assert result.plan.co2_kg == pytest.approx(expected)
    assert f"grid carbon {expected:.2f} kg CO2" in run.summary(result, cfg)
    rec = record.record_from_result(result, cfg)
    assert rec.run["baselines"]["co2"] == {"kg": pytest.approx(round(expected, 4)),
                                           "eur_per_kg": 0.05}
    html = report_html.render(rec)
    assert 'id="co2"' in html and f"{expected:.2f} kg CO2" in html


def test_no_carbon_section_no_carbon_anywhere():
    cfg = config.with_demo_providers(config.default())
    result = run.plan_inputs(gather.gather(cfg, START), cfg, START)
    assert result.plan.co2_kg is None and "grid carbon" not in run.summary(result, cfg)
    rec = record.record_from_result(result, cfg)
    assert "co2" not in rec.run["baselines"] and 'id="co2"' not in report_html.render(rec)
