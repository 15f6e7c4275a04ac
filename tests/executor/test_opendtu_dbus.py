"""``opendtu`` with ``publish_dbus``: the inverters as Victron dcsystem/dcload services on a
private dbus-daemon, read back by another jeepney client, with the emulated OpenDTU over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request

import pytest
from device_emulators.home import Home
from device_emulators.loop import flat_plan, run_ticks
from device_emulators.opendtu import OpenDtuGateway
from device_emulators.web import DeviceServer, ShellyMeter
from gx_emulator.dbus_gx import DbusDaemon
from gx_emulator.plans import T0, FakeClock
from jeepney import HeaderFields, MatchRule, message_bus
from jeepney.io.blocking import Proxy, open_dbus_connection

from executor import drivers
from executor.control import Apply, Limits, Release
from executor.drivers._dbus import JeepneyBus, ServiceMissing
from executor.drivers._dbus_publish import BusItemService
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

if shutil.which("dbus-daemon") is None and os.environ.get("CI") != "true":
    pytest.skip("dbus-daemon not installed (CI installs it: apt-get install dbus)",
                allow_module_level=True)

LIMITS = Limits(min_soc_pct=10.0, capacity_kwh=10.0, soc_gain_w_per_pct=0.0, interval_s=10.0)
SERIALS = ("114190641177", "114190641178")
MANDATORY = ("/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection",
             "/DeviceInstance", "/ProductId", "/ProductName", "/FirmwareVersion", "/Connected")


class GatewayWithDc(OpenDtuGateway):
    """The emulated OpenDTU with the DC channel's voltage and current, as OpenDTU sends them
    (``WebApi_ws_live.cpp``: every channel field of the inverter, ``{"v", "u", "d"}``)."""

    battery_v = 51.2

    def _entry(self, inv, detail):
        entry = super()._entry(inv, detail)
        if "DC" in entry:
            dc_w = entry["DC"]["0"]["Power"]["v"]
            entry["DC"]["0"]["Voltage"] = {"v": self.battery_v, "u": "V", "d": 1}
            entry["DC"]["0"]["Current"] = {"v": round(dc_w / self.battery_v, 2), "u": "A",
                                           "d": 2}
        return entry


@pytest.fixture(scope="module")
def daemon():
    with DbusDaemon() as d:  # in CI a missing dbus-daemon fails here, loudly
        yield d


@pytest.fixture
def client(daemon):
    bus = JeepneyBus(daemon.address, timeout_s=2.0)
    yield bus
    bus.close()


@pytest.fixture
def site(tmp_path, daemon):
    made, executors = [], []

    def build(load_w=500.0, **options):
        clock = FakeClock(T0)
        home = Home(T0, load_w=load_w)
        gw = GatewayWithDc(serials=SERIALS, soc_pct=60.0)
        home.devices.append(gw)
        gw_server, meter = DeviceServer(gw).start(), DeviceServer(ShellyMeter(home, gen=2))
        meter.start()
        made.extend([gw_server, meter])
        opts = {"url": gw_server.url, "password": "openDTU42",
                "meter": {"type": "shelly", "url": meter.url, "gen": 2},
                "soc": {"type": "http", "url": gw_server.url + "/test/battery"},
                "timeout_s": 0.5, "publish_dbus": True, "dbus_bus": daemon.address,
                "rotate_s": 1e9, **options}
        driver = drivers.create("opendtu", opts, clock=clock)
        plan_path = str(tmp_path / "schedule.json")
        flat_plan(plan_path, T0)
        ex = Executor(driver, PlanTracker(FileSource(plan_path)), LIMITS,
                      str(tmp_path / "pause.json"), clock=clock, interval_s=10.0)
        executors.append(ex)
        return ex, home, gw, gw_server, clock

    yield build
    for ex in executors:
        ex.driver.close()
    for server in made:
        server.stop()


def names(client, kind="dcsystem"):
    return sorted(n for n in client.list_names()
                  if n.startswith(f"com.victronenergy.{kind}.helios_"))


def livedata(url, serial):
    with urllib.request.urlopen(f"{url}/api/livedata/status?inv={serial}", timeout=2) as r:
        return json.load(r)["inverters"][0]


def test_published_paths_match_opendtu_livedata(site, client):
    ex, home, gw, server, clock = site(load_w=1000.0, feed_in_cap_w=1600.0)
    run_ticks(ex, home, clock, 3)
    assert all(i.power_w > 100.0 for i in gw.inverters.values())  # both feed
    ex.driver.read()  # no physics step between this read and the HTTP reads below
    assert names(client) == [f"com.victronenergy.dcsystem.helios_{s}" for s in SERIALS]
    instances = []
    for serial in SERIALS:
        items = client.get_items(f"com.victronenergy.dcsystem.helios_{serial}")
        assert all(p in items for p in MANDATORY), sorted(items)
        live = livedata(server.url, serial)
        assert items["/Connected"] == 1 and items["/Mgmt/ProcessName"] == "helios-executor"
        assert items["/Mgmt/Connection"] == f"OpenDTU {server.url}"
        assert items["/Serial"] == serial and "Hoymiles" in items["/ProductName"]
        dc = live["DC"]["0"]
        assert items["/Dc/0/Power"] == pytest.approx(dc["Power"]["v"])
        assert items["/Dc/0/Voltage"] == pytest.approx(dc["Voltage"]["v"])
        assert items["/Dc/0/Current"] == pytest.approx(dc["Current"]["v"])
        assert items["/Dc/0/Temperature"] == pytest.approx(live["INV"]["0"]["Temperature"]["v"])
        assert all(items[p] == 0 for p in items if p.startswith("/Alarms/"))
        assert len([p for p in items if p.startswith("/Alarms/")]) == 6
        instances.append(items["/DeviceInstance"])
        # what a single-path client (dbus-spy, systemcalc's GetValue) sees
        name = f"com.victronenergy.dcsystem.helios_{serial}"
        assert client.get_value(name, "/Dc/0/Power") == items["/Dc/0/Power"]
        assert client.call(name, "/Dc/0/Power", "GetText")[0].endswith("W")
        assert client.set_value(name, "/Dc/0/Power", 5.0) == 1  # read-only, velib code 1
        assert client.get_value(name, "/Dc/0")["Power"] == items["/Dc/0/Power"]
    assert instances == [280, 281]
    assert sum(client.get_value(n, "/Dc/0/Power") for n in names(client)) \
        == pytest.approx(gw.power_w / 0.96, abs=0.2)  # what systemcalc sums for DVCC


def test_opendtu_outage_sets_the_alarm_and_recovery_clears_it(site, client):
    ex, home, gw, server, clock = site()
    run_ticks(ex, home, clock, 2)
    name = f"com.victronenergy.dcsystem.helios_{SERIALS[0]}"
    assert client.get_value(name, "/Connected") == 1
    gw.faults = ["500"]
    assert isinstance(ex.tick(), Release)
    items = client.get_items(name)
    assert items["/Connected"] == 0 and items["/Alarms/LowStarterVoltage"] == 2
    assert items["/Dc/0/Power"] is None and items["/Dc/0/Voltage"] is None  # invalid
    assert items["/Alarms/HighTemperature"] == 0
    assert isinstance(ex.tick(), Apply)
    items = client.get_items(name)
    assert items["/Connected"] == 1 and items["/Alarms/LowStarterVoltage"] == 0
    assert items["/Dc/0/Power"] is not None


def test_an_unreachable_or_hot_inverter_alarms_on_its_own_service(site, client):
    ex, home, gw, server, clock = site(load_w=700.0)
    run_ticks(ex, home, clock, 2)
    a, b = (f"com.victronenergy.dcsystem.helios_{s}" for s in SERIALS)
    gw.inverters[SERIALS[0]].reachable = False
    gw.inverters[SERIALS[1]].ambient_c = 90.0
    run_ticks(ex, home, clock, 1)
    assert client.get_value(a, "/Connected") == 0
    assert client.get_value(a, "/Alarms/HighStarterVoltage") == 2
    assert client.get_value(b, "/Alarms/HighStarterVoltage") == 0
    assert client.get_value(b, "/Alarms/HighTemperature") == 2
    assert client.get_value(a, "/Alarms/HighTemperature") == 0
    gw.inverters[SERIALS[0]].reachable = True
    gw.inverters[SERIALS[1]].ambient_c = 25.0
    run_ticks(ex, home, clock, 2)
    assert client.get_value(a, "/Alarms/HighStarterVoltage") == 0
    assert client.get_value(b, "/Alarms/HighTemperature") == 0


def test_exit_removes_the_services(site, client):
    ex, home, gw, server, clock = site(dbus_service="dcload", dbus_device_instance=40)
    run_ticks(ex, home, clock, 2)
    assert len(names(client, "dcload")) == 2 and names(client) == []
    assert client.get_value(names(client, "dcload")[0], "/DeviceInstance") == 40
    sent = len(gw.commands)
    ex.stop("test")
    ex.shutdown()  # release + close, as on SIGTERM
    assert names(client, "dcload") == []
    with pytest.raises(ServiceMissing):
        client.get_value(f"com.victronenergy.dcload.helios_{SERIALS[0]}", "/Connected")
    assert {d["serial"] for _, d in gw.commands[sent:]} == set(SERIALS)  # released too


def test_a_taken_name_is_an_alarm_not_a_crash(site, client, daemon):
    squatter = BusItemService(f"com.victronenergy.dcsystem.helios_{SERIALS[0]}",
                              {"/Connected": 1}, daemon.address).start()
    try:
        ex, home, gw, server, clock = site()
        decisions: list = []
        run_ticks(ex, home, clock, 2, decisions=decisions)
        assert all(isinstance(d, Apply) for d in decisions)  # control goes on
        assert "taken" in ex.driver.alarms["dbus"]
        assert names(client) == [f"com.victronenergy.dcsystem.helios_{s}" for s in SERIALS]
        other = f"com.victronenergy.dcsystem.helios_{SERIALS[1]}"
        assert client.get_value(other, "/Alarms/LowStarterVoltage") == 2  # the dbus alarm
    finally:
        squatter.stop()


def test_changes_are_signalled_like_velib(site, daemon):
    """systemcalc's DbusMonitor does not poll: it needs PropertiesChanged / ItemsChanged from
    the service's own connection."""
    ex, home, gw, server, clock = site(load_w=300.0)
    run_ticks(ex, home, clock, 1)
    name = f"com.victronenergy.dcsystem.helios_{SERIALS[0]}"
    with open_dbus_connection(bus=daemon.address) as conn:
        bus = Proxy(message_bus, conn)
        owner = bus.GetNameOwner(name)[0]
        rule = MatchRule(type="signal", sender=owner, interface="com.victronenergy.BusItem")
        bus.AddMatch(rule)
        with conn.filter(rule) as queue:
            gw.faults = ["500"]
            ex.tick()
            seen: dict = {}
            while "ItemsChanged" not in seen:
                msg = conn.recv_until_filtered(queue, timeout=2)
                seen.setdefault(msg.header.fields[HeaderFields.member], []).append(msg)
    per_path = {m.header.fields[HeaderFields.path]: m.body[0]
                for m in seen["PropertiesChanged"]}
    assert per_path["/Connected"]["Value"] == ("i", 0)
    assert per_path["/Alarms/LowStarterVoltage"]["Value"] == ("i", 2)
    items = seen["ItemsChanged"][0].body[0]
    assert items["/Connected"]["Value"] == ("i", 0)
    assert items["/Dc/0/Power"]["Value"] == ("ai", []) and items["/Dc/0/Power"]["Text"] == (
        "s", "---")  # invalid, as velib sends it
