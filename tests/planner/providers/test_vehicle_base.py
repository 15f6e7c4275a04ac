"""Vehicle state basics (issue 14): haversine distance, the at-home test, the manual
provider, the SQL cache round trip."""

from __future__ import annotations

import pandas as pd
import pytest

from planner import config as config_mod
from planner import providers
from planner.providers.base import ProviderContext
from planner.providers.vehicle.base import (
    VehicleCache,
    VehicleState,
    at_home,
    distance_m,
)

NOW = pd.Timestamp("2026-08-03T10:00Z")


def test_haversine_distance():
    assert distance_m(52.52, 13.40, 53.52, 13.40) == pytest.approx(111_195, rel=1e-4)
    # Berlin to Munich, about 504 km
    assert distance_m(52.5200, 13.4050, 48.1374, 11.5755) == pytest.approx(504_000, rel=0.01)
    assert distance_m(52.52, 13.40, 52.52, 13.40) == 0.0


def test_at_home_radius_and_unknown_location():
    home = (52.52, 13.40)
    # 0.001 deg of longitude at 52.52 N is ~67.7 m
    assert at_home(52.52, 13.401, home, 70.0) is True
    assert at_home(52.52, 13.401, home, 65.0) is False
    assert at_home(None, None, home, 100.0) is None
    assert at_home("nan", 13.4, home, 100.0) is None


def test_manual_vehicle_from_config():
    cfg = config_mod.default()
    cls = providers.config_class("vehicle", "manual")
    p = providers.create("vehicle", config_mod.ProviderConfig("manual", cls(soc_pct=30.0)),
                         ProviderContext(cfg.site, NOW, cfg))
    state = p.read(NOW)
    assert (state.soc_pct, state.plugged_in, state.charging, state.at_home) == \
        (30.0, True, False, True)
    assert state.measured_at == NOW and "30 %" in state.source
    away = providers.create("vehicle", config_mod.ProviderConfig(
        "manual", cls(soc_pct=30.0, plugged_in=False, charging=True)),
        ProviderContext(cfg.site, NOW, cfg)).read(NOW)
    assert (away.plugged_in, away.charging, away.at_home) == (False, False, None)


@pytest.mark.parametrize("home", [True, False, None])
def test_sql_cache_round_trip(tmp_path, home):
    cfg = config_mod.from_mapping({"storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}},
                                  tmp_path)
    cache = VehicleCache("vehicle (x)", "x:1", cfg)
    state = VehicleState(71.5, True, False, home, pd.Timestamp("2026-08-03T09:41:07Z"),
                         "x status")
    cache.save(state, NOW)
    got, asked_at = VehicleCache("vehicle (x)", "x:1", cfg).load()
    assert asked_at == NOW
    assert got == VehicleState(71.5, True, False, home, state.measured_at, "x status",
                               from_cache=True)
    assert VehicleCache("vehicle (x)", "x:2", cfg).load() is None
