"""Darkstar's S-index (issue 13 item 5): a safety factor on the load forecast and a PV
confidence, static or dynamic (PV deficit, recent forecast error); defaults change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.history.store import Store
from planner.inputs import gather, sindex
from planner.optimize import model
from planner.plan import record as record_mod
from planner.plan import run

NOW = "2026-05-01T10:07:00Z"
START = pd.Timestamp("2026-05-01T00:00Z")


def _inputs(cfg, pv, load):
    n = len(pv)
    return gather.from_arrays(START, 3600, np.full(n, 0.2), pv, load, 50.0, cfg)


def test_defaults_leave_the_plan_bit_identical(site_dir):
    plain = config.load(site_dir())
    explicit = config.load(site_dir(config={"planning": {
        "load_safety_factor": 1.0, "pv_confidence_pct": 100,
        "s_index": {"mode": "static"}}}))
    # each on a freshly compiled model: a re-solve warm-starts from the previous one, which
    # may pick another of several equally cheap plans
    model._CACHE.clear()
    a = run.plan_once(plain, pd.Timestamp(NOW))
    model._CACHE.clear()
    b = run.plan_once(explicit, pd.Timestamp(NOW))
    doc_a, doc_b = a.schedule.to_dict(), b.schedule.to_dict()
    doc_a.pop("solve_s"), doc_b.pop("solve_s")  # wall-clock time
    assert doc_a == doc_b
    data = _inputs(plain, np.ones(24), np.ones(24))
    assert sindex.for_plan(data, plain, pd.Timestamp(NOW)) is data


def test_static_margins_scale_the_forecasts_and_are_listed():
    cfg = config.from_mapping({"planning": {"load_safety_factor": 1.2,
                                            "pv_confidence_pct": 80}})
    data = _inputs(cfg, np.full(24, 2.0), np.full(24, 1.0))
    got = sindex.for_plan(data, cfg, pd.Timestamp(NOW))
    assert got.load_kw == pytest.approx(np.full(24, 1.2))
    assert got.pv_kw == pytest.approx(np.full(24, 1.6))
    (st,) = [s for s in got.status if s.kind == "s_index"]
    assert st.provider == "static" and "load x 1.200" in st.detail and "80.0 %" in st.detail


def test_dynamic_margins_grow_with_a_pv_deficit():
    # PV covers a quarter of the next 24 h's load: deficit 0.75, weight 0.2 -> +0.15 / -15 %
    cfg = config.from_mapping({"planning": {"s_index": {"mode": "dynamic"}},
                               "storage": {"enabled": False}})
    data = _inputs(cfg, np.full(24, 0.25), np.full(24, 1.0))
    assert sindex.pv_deficit(data) == pytest.approx(0.75)
    m = sindex.margins(data, cfg)
    assert (m.load_factor, m.pv_confidence_pct) == (pytest.approx(1.15), pytest.approx(85.0))
    # capped: a weight of 2 would give x 2.5 and -50 %; the caps are 1.5 and 50 %
    cfg = config.from_mapping({"planning": {"s_index": {"mode": "dynamic",
                                                        "deficit_weight": 2.0}}})
    m = sindex.margins(_inputs(cfg, np.zeros(24), np.ones(24)), cfg)
    assert (m.load_factor, m.pv_confidence_pct) == (1.5, 50.0)


def test_dynamic_margins_grow_with_the_recent_forecast_error(site_dir, tmp_path):
    # a plan saved yesterday (its slots are past now), then measurements of 1.5 x its load
    # and 0.5 x its PV: errors |f - 1.5 f| / 1.5 f = 1/3 and |f - 0.5 f| / 0.5 f = 1 ->
    # load x (1 + 0.5 / 3), PV at 100 - 50 = 50 %
    cfg_path = site_dir(config={"planning": {"s_index": {"mode": "dynamic",
                                                         "deficit_weight": 0.0}},
                                "storage": {"url": f"sqlite:///{tmp_path}/h.db"}})
    cfg = config.load(cfg_path)
    result = run.plan_once(cfg, pd.Timestamp("2026-05-01T00:00Z"))
    rec = record_mod.record_from_result(result, cfg)
    now = pd.Timestamp("2026-05-02T00:00Z")
    with Store(cfg.storage.url) as store:
        store.save(rec)
        slots = rec.slots[rec.slots.index < now]
        rows = [{"measured_at": t + pd.Timedelta(minutes=m), "load_power_w": 1500 * row.load_kw,
                 "pv_power_w": 500 * row.pv_kw, "source": "test"}
                for t, row in slots.iterrows() for m in (1, 8)]
        store.add_measurements(rows)
        errors = sindex.forecast_errors(store, now, 7)
    assert errors["load"] == pytest.approx(1 / 3, abs=1e-6)
    assert errors["pv"] == pytest.approx(1.0, abs=1e-6)
    m = sindex.margins(_inputs(cfg, np.ones(24), np.ones(24)), cfg, now,
                       Store(cfg.storage.url))
    assert (m.load_factor, m.pv_confidence_pct) == (pytest.approx(1 + 0.5 / 3, abs=1e-6),
                                                    pytest.approx(50.0))


def test_bad_values_name_the_key():
    with pytest.raises(config.ConfigError, match="planning.load_safety_factor: expected a "
                                                 "number >= 1"):
        config.from_mapping({"planning": {"load_safety_factor": 0.9}})
    with pytest.raises(config.ConfigError, match="planning.s_index.mode: expected one of"):
        config.from_mapping({"planning": {"s_index": {"mode": "magic"}}})
