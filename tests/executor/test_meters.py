"""Grid meters over a real loopback HTTP server: HomeWizard P1 (API v1, v2), Shelly Gen1/Gen2,
the sign option, and every bad answer → "no reading" (None) with one logged error."""

from __future__ import annotations

import logging
import socket

import pytest
from device_emulators.home import Home
from device_emulators.web import DeviceServer, P1Meter, ShellyMeter
from gx_emulator.plans import T0

from executor.configspec import build
from executor.drivers._meters import Meter, MeterConfig


@pytest.fixture
def home():
    return Home(T0, load_w=1234.0, pv_w=0.0)


@pytest.fixture
def serve():
    servers = []

    def start(device):
        server = DeviceServer(device).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def meter(**options) -> Meter:
    problems: list = []
    config = build(MeterConfig, options, "executor.driver.meter", problems)
    assert not problems, problems
    return Meter(config)


@pytest.mark.parametrize("device, options", [
    (lambda h: P1Meter(h), {"type": "homewizard"}),
    (lambda h: P1Meter(h), {"type": "homewizard", "api": 2,
                            "token": "0123456789ABCDEF0123456789ABCDEF"}),
    (lambda h: ShellyMeter(h, gen=1, phases=3), {"type": "shelly", "gen": 1}),
    (lambda h: ShellyMeter(h, gen=1, phases=2), {"type": "shelly", "gen": 1}),
    (lambda h: ShellyMeter(h, gen=2), {"type": "shelly", "gen": 2}),
    (lambda h: ShellyMeter(h, gen=1, reversed_clamp=True), {"type": "shelly", "sign": "export"}),
    (lambda h: ShellyMeter(h, gen=2, reversed_clamp=True),
     {"type": "shelly", "gen": 2, "sign": "export"}),
])
def test_meters_read_grid_power_import_positive(home, serve, device, options):
    url = serve(device(home))
    m = meter(url=url, **options)
    assert m.read() == pytest.approx(1234.0, abs=0.05)
    home.pv_w = 2000.0  # now exporting 766 W
    assert m.read() == pytest.approx(-766.0, abs=0.05)


def test_homewizard_v2_without_the_token_is_no_reading(home, serve, caplog):
    url = serve(P1Meter(home))
    m = meter(type="homewizard", url=url, api=2, token="wrong")
    with caplog.at_level(logging.ERROR, "helios.executor.meter"):
        assert m.read() is None
    assert "HTTP 401" in m.last_error and "wrong" not in caplog.text


def test_shelly_gen1_channels_are_summed(home, serve):
    url = serve(ShellyMeter(home, gen=1, phases=3))
    assert meter(type="shelly", url=url, channels=[0, 1]).read() == pytest.approx(822.67, 0.01)


@pytest.mark.parametrize("fault, words", [
    ("500", "HTTP 500"), ("garbage", "not JSON"), ("missing", "missing"),
    ("wrong_type", "expected a number"),
])
@pytest.mark.parametrize("make, options", [
    (lambda h: P1Meter(h), {"type": "homewizard"}),
    (lambda h: ShellyMeter(h, gen=1), {"type": "shelly"}),
    (lambda h: ShellyMeter(h, gen=2), {"type": "shelly", "gen": 2}),
])
def test_bad_answers_are_no_reading_logged_once(home, serve, caplog, fault, words, make,
                                                options):
    device = make(home)
    url = serve(device)
    m = meter(url=url, **options)
    device.faults = [fault, fault]
    with caplog.at_level(logging.INFO, "helios.executor.meter"):
        assert m.read() is None
        assert m.read() is None
        assert m.read() == pytest.approx(1234.0, abs=0.05)  # recovers
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and words in errors[0].getMessage()
    assert "Traceback" not in caplog.text
    assert any("reading again" in r.getMessage() for r in caplog.records)


def test_unreachable_and_slow_meters_are_no_reading(home, serve):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = meter(type="homewizard", url=f"http://127.0.0.1:{port}", timeout_s=0.5)
    assert m.read() is None and "GET http://127.0.0.1" in m.last_error
    device = P1Meter(home)
    device.slow_s = 0.6
    device.faults = ["slow"]
    m = meter(type="homewizard", url=serve(device), timeout_s=0.2)
    assert m.read() is None and "0.2 s" in m.last_error


def test_meter_config_problems_name_the_key():
    problems: list = []
    build(MeterConfig, {"type": "tasmota", "url": "http://x", "sign": "up", "api": 3},
          "executor.driver.meter", problems)
    text = "\n".join(map(str, problems))
    assert "executor.driver.meter.type" in text and "executor.driver.meter.sign" in text
    assert "executor.driver.meter.api" in text
    problems = []
    build(MeterConfig, {"type": "shelly"}, "executor.driver.meter", problems)
    assert [p.key_path for p in problems] == ["executor.driver.meter.url"]
