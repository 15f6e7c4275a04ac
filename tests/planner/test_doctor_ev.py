"""``helios doctor`` for the car: the vehicle provider and the EV charger, each one cheap
call against the loopback emulators (Fleet API and Kia Connect replaying the recorded payloads,
the Alfen Modbus server); OK / WARN / FAIL with a fix."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import yaml
from device_emulators.vehicle_api import FleetApi, KiaConnect
from device_emulators.web import DeviceServer
from gx_emulator.alfen_modbus import AlfenEve

from planner.cli import doctor as doc

VIN = "5YJ3E7EB0KF000000"


@pytest.fixture
def fleet():
    api = FleetApi(VIN, "tok")
    server = DeviceServer(api).start()
    yield api, server.url
    server.stop()


def _install(tmp_path: Path, vehicle: dict, charger: dict | None) -> Path:
    cfg = {
        "site": {"timezone": "Europe/Berlin", "latitude": 52.52, "longitude": 13.40},
        "prices": {"type": "flat", "price_eur_per_kwh": 0.1},
        "pv": {"type": "none"}, "load": {"type": "constant", "load_kw": 0.5},
        "state": {"type": "static", "soc_pct": 50},
        "storage": {"enabled": False},
        "ev": {"capacity_kwh": 60, "vehicle": vehicle},
        "executor": {"driver": {"type": "simulated"},
                     **({"ev_charger": charger} if charger else {})},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _checks(path: Path) -> dict:
    checks = doc.run_checks(str(path), pd.Timestamp.now(tz="UTC"), timeout_s=2.0,
                            systemd=False)
    return {c.step: c for c in checks}


def _tesla(url, token="tok"):
    return {"type": "tesla", "vin": VIN, "token": token, "base_url": url}


def test_tesla_vehicle_and_car_side_charger_ok(tmp_path, fleet):
    api, url = fleet
    checks = _checks(_install(tmp_path, _tesla(url), _tesla(url)))
    assert checks["vehicle"].status == "OK", checks["vehicle"]
    assert "SoC" in checks["vehicle"].message and "plugged in" in checks["vehicle"].message
    assert checks["charger"].status == "OK" and "online" in checks["charger"].message
    assert [m for m, *_ in api.requests] == ["GET", "GET"]  # one call each, no command


def test_wrong_token_fails_with_a_fix_and_never_shows_it(tmp_path, fleet):
    _, url = fleet
    checks = _checks(_install(tmp_path, _tesla(url, "bad-secret"), _tesla(url, "bad-secret")))
    for step in ("vehicle", "charger"):
        assert checks[step].status == "FAIL", checks[step]
        assert "token" in checks[step].fix
        assert "bad-secret" not in checks[step].message
    assert "executor.ev_charger.token" in checks["charger"].message


def test_asleep_car_is_a_warning_and_is_not_woken(tmp_path, fleet):
    api, url = fleet
    api.asleep = True
    checks = _checks(_install(tmp_path, _tesla(url), _tesla(url)))
    assert checks["vehicle"].status == "WARN" and "asleep" in checks["vehicle"].fix
    assert checks["charger"].status == "WARN"
    assert not any(p.endswith("wake_up") for _, p, _ in api.requests)


def test_manual_vehicle_warns_and_an_alfen_charger_answers(tmp_path):
    clock = lambda: datetime.now(timezone.utc)  # noqa: E731
    with AlfenEve(clock) as eve:
        checks = _checks(_install(tmp_path, {"type": "manual", "soc_pct": 40},
                                  {"type": "alfen", "host": "127.0.0.1", "port": eve.port}))
    assert checks["vehicle"].status == "WARN" and "manual" in checks["vehicle"].message
    assert checks["charger"].status == "OK", checks["charger"]


def test_unreachable_charger_fails_naming_the_licence(tmp_path):
    checks = _checks(_install(tmp_path, {"type": "manual"},
                              {"type": "alfen", "host": "127.0.0.1", "port": 1,
                               "timeout_s": 0.5}))
    assert checks["charger"].status == "FAIL" and "licence" in checks["charger"].fix


def test_kia_cloud_probe(tmp_path):
    api = KiaConnect("veh-0001", "Bearer kia")
    server = DeviceServer(api).start()
    try:
        kia = {"type": "kia_hyundai", "vehicle_id": "veh-0001", "access_token": "Bearer kia",
               "device_id": "d", "base_url": server.url}
        checks = _checks(_install(tmp_path, {"type": "manual"}, kia))
        assert checks["charger"].status == "OK", checks["charger"]
        kia["access_token"] = "Bearer nope"
        checks = _checks(_install(tmp_path, {"type": "manual"}, kia))
        assert checks["charger"].status == "FAIL"
        assert "executor.ev_charger.access_token" in checks["charger"].message
    finally:
        server.stop()
