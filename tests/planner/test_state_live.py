"""`state: gx` reads the live SoC through the executor's driver; `state: measurements` from SQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
from gx_emulator.modbus_gx import ModbusGx

from executor.drivers.simulated import Plant
from planner import config
from planner.core.errors import ProviderUnavailable
from planner.history.store import Store
from planner.inputs import gather as inputs

NOW = pd.Timestamp("2026-05-01T10:00Z")


def test_gx_state_through_modbus_emulator(site_dir):
    t0 = datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
    plant = Plant(63.0, 10.0, t0)
    with ModbusGx(plant, lambda: t0) as gx:
        cfg = config.load(site_dir(config={
            "state": {"type": "gx"},
            "executor": {"driver": {"type": "victron_modbus", "host": "127.0.0.1",
                                    "port": gx.port}}}))
        got = inputs.gather(cfg, NOW)
        assert gx.override_writes == 0 and gx.flash_writes == 0  # read-only
    assert got.soc_start_pct == pytest.approx(63.0, abs=0.1)


def test_gx_state_unreachable_is_a_provider_error(site_dir):
    cfg = config.load(site_dir(config={
        "state": {"type": "gx"},
        "executor": {"driver": {"type": "victron_modbus", "host": "127.0.0.1", "port": 1}}}))
    with pytest.raises(ProviderUnavailable, match=r"state \(gx\): cannot read the GX"):
        inputs.gather(cfg, NOW)


def test_measured_state_newest_and_too_old(site_dir, tmp_path):
    path = site_dir(config={"state": {"type": "measurements", "max_age_s": 600},
                            "storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}})
    cfg = config.load(path)
    with Store.from_config(cfg) as store:
        with pytest.raises(ProviderUnavailable, match="no state of charge stored yet"):
            inputs.gather(cfg, NOW)
        store.add_measurements([
            {"measured_at": NOW - pd.Timedelta(minutes=30), "soc_pct": 40.0},
            {"measured_at": NOW - pd.Timedelta(minutes=2), "soc_pct": 47.5},
            {"measured_at": NOW + pd.Timedelta(minutes=5), "soc_pct": 99.0},  # future: ignored
        ])
    assert inputs.gather(cfg, NOW).soc_start_pct == 47.5
    with pytest.raises(ProviderUnavailable, match=r"is 2100 s old .* max_age_s is 600"):
        inputs.gather(cfg, NOW + pd.Timedelta(minutes=40))
