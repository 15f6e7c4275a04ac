"""Energy the water heater already took today is subtracted at a re-plan (issue 13).

The chain is tested for real: the executor's relay follower measures the heater (a Shelly
Gen2 emulator's ``apower``, or ``power_kw`` while on), :class:`executor.telemetry.Telemetry`
averages it into ``measurements.water_heater_power_w`` through its SQL sink (migration 0008),
and :func:`planner.plan.heater.heater_extra` integrates today's rows for the solve.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from executor.telemetry import SqlSink, Telemetry
from planner import config
from planner.history.store import Store
from planner.inputs import gather
from planner.plan import heater, run

NOW = pd.Timestamp("2026-05-01T12:00Z")


def _cfg(url: str, window=("06:00", "22:00")):
    return config.from_mapping({
        "site": {"timezone": "UTC"}, "storage": {"url": url},
        "battery": {"min_soc_pct": 0, "max_soc_pct": 0},
        "planning": {"grid_hurdle_eur_per_kwh": 0.0},
        "water_heater": {"power_kw": 3.0, "daily_kwh": 6.0,
                         "window": {"from": window[0], "to": window[1]}}})


def _store_rows(url: str, rows: list[tuple[datetime, float | None]], simulated=False):
    """The executor's path: telemetry windows of 60 s closed into the SQL sink."""
    tel = Telemetry(tempfile.mkdtemp() + "/buf.jsonl", SqlSink(url),
                    interval_s=60, simulated=simulated)
    for at, watts in rows:
        tel.record(None, at, {"water_heater": watts} if watts is not None else {})
    tel.close(rows[-1][0] + timedelta(seconds=60))


def _minutes(start: str, count: int, watts: float | None):
    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    return [(t0 + timedelta(minutes=i), watts) for i in range(count)]


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with Store(url) as store:
        store.upgrade()
    return url


def test_measured_heater_energy_today_is_integrated_and_subtracted(url):
    rows = (_minutes("2026-05-01T05:00:00", 60, 3000.0)     # before today's window: not counted
            + _minutes("2026-05-01T08:00:00", 30, 3000.0)   # 1.5 kWh
            + _minutes("2026-05-01T08:30:00", 30, 0.0)
            + _minutes("2026-05-01T10:00:00", 20, 1500.0))  # 0.5 kWh
    _store_rows(url, rows)
    _store_rows(url, _minutes("2026-05-01T11:00:00", 30, 3000.0), simulated=True)  # ignored
    cfg = _cfg(url)
    extra = heater.heater_extra(cfg, NOW)
    assert extra["water_heater"]["delivered_kwh"] == pytest.approx(2.0, abs=1e-6)
    # the re-plan asks only for the rest: 6 − 2 = 4 kWh today in the window's rest
    n = 24
    buy = np.full(n, 0.2)
    data = gather.from_arrays(NOW, 3600, buy, np.zeros(n), np.zeros(n), 0.0, cfg,
                              buy_eur_per_kwh=buy, sell_eur_per_kwh=np.zeros(n))
    result = run.plan_inputs(data, cfg, NOW, extra)
    kw = result.plan.solution.device_kw["water_heater"]
    assert kw[:10].sum() == pytest.approx(4.0, abs=1e-6)  # 12:00-22:00 today


def test_before_the_window_nothing_counts_and_without_a_database_zero(url, tmp_path):
    _store_rows(url, _minutes("2026-05-01T08:00:00", 60, 3000.0))
    late = _cfg(url, window=("13:00", "18:00"))  # today's period has not begun at 12:00
    assert heater.heater_extra(late, NOW)["water_heater"]["delivered_kwh"] == 0.0
    # a window across midnight: at 02:00 the period began yesterday at 22:00
    night = _cfg(url, window=("22:00", "06:00"))
    _store_rows(url, _minutes("2026-04-30T23:00:00", 40, 3000.0))  # 2 kWh
    at = pd.Timestamp("2026-05-01T02:00Z")
    assert heater.delivered_kwh(night, at) == pytest.approx(2.0, abs=1e-6)
    missing = _cfg(f"sqlite:///{tmp_path / 'none.db'}")
    assert heater.heater_extra(missing, NOW)["water_heater"]["delivered_kwh"] == 0.0
    assert not (tmp_path / "none.db").exists()  # never creates the database


def test_a_gap_in_the_measurements_is_not_counted_as_running(url):
    rows = _minutes("2026-05-01T08:00:00", 10, 3000.0) + _minutes("2026-05-01T10:00:00", 10,
                                                                   3000.0)
    _store_rows(url, rows)
    with Store(url) as store:
        got = store.heater_energy_kwh(pd.Timestamp("2026-05-01T06:00Z"), NOW)
    assert got == pytest.approx(1.0, abs=1e-6)  # 20 minutes at 3 kW, not 2 h
