"""An emulated GX on a private ``dbus-daemon``, driven by a plant (``reference/victron.md``
§1, §2, §7).

:class:`DbusDaemon` starts a real ``dbus-daemon`` (own config, socket in a temp dir) and
:class:`DbusGx` puts Victron-like services on it from one jeepney connection served by a
background thread:

* ``com.victronenergy.system`` — systemcalc telemetry computed from the plant
  (``/Dc/Battery/Power`` + = charging, ``/Ac/Grid/L*/Power`` + = import, invalid phases as
  empty arrays), read-only (SetValue → 1);
* ``com.victronenergy.settings`` — localsettings: values converted with ``int()``/``float()``
  by the setting's type (4.7 → 4 into an int), out of range **refused with -1, not clamped**;
  accepted changes are counted as flash writes (``flash_writes``, ``writes_by_path``);
* ``com.victronenergy.hub4`` — ``/Overrides/{Setpoint, ForceCharge, MaxDischargePower,
  FeedInExcess}`` (volatile; Setpoint invalid = no override → ``AcPowerSetPoint``);
* ``com.victronenergy.battery.socketcan_can0`` — SoC, CCL/DCL (``/Info/Max*Current``);
* ``com.victronenergy.vebus.ttyS4`` — ESS assistant present;
* ``com.victronenergy.gps.ve_ttyUSB0`` (only with ``gps=(lat, lon, fix)``) — a USB GPS as
  Venus's gps-dbus publishes it: ``/Position/Latitude``, ``/Position/Longitude`` [deg],
  ``/Fix`` (1 = fix), ``/NrOfSatellites``, ``/Altitude``.

Every path is an object with ``com.victronenergy.BusItem`` ``GetValue``/``SetValue``/
``GetText``; ``/`` answers ``GetValue`` (dict of all values) and ``GetItems``; ``SetValue``
emits ``PropertiesChanged``. ``None`` is sent as the empty ``ai`` array. A simplified Dynamic
ESS delegate (:class:`gx_emulator.victron_ess.DessDelegate`, our re-implementation of
systemcalc's) turns the schedule windows into hub4 overrides every 5 s of the fake clock and
publishes ``/DynamicEss/*`` (Active, ErrorCode, ReactiveStrategy, TargetSoc, ...); the plant
(:class:`gx_emulator.victron_ess.EssPlant`) reacts to the overrides.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime

from jeepney import (
    DBusAddress,
    HeaderFields,
    MessageType,
    new_error,
    new_method_call,
    new_method_return,
    new_signal,
)
from jeepney.io.blocking import open_dbus_connection

from executor.drivers._dbus import from_variant, to_variant
from gx_emulator.victron_ess import DessDelegate, EssPlant, as_ess_plant, convert_setting

IFACE = "com.victronenergy.BusItem"
SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
HUB4 = "com.victronenergy.hub4"
BATTERY = "com.victronenergy.battery.socketcan_can0"
VEBUS = "com.victronenergy.vebus.ttyS4"
DYNAMICESS = "com.victronenergy.dynamicess"  # Venus 3.80 (venus-dynamicess)
GPS = "com.victronenergy.gps.ve_ttyUSB0"
NUM_SCHEDULES = 48

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class DbusDaemon:
    """A private ``dbus-daemon``; ``address`` is its bus address. Restartable (same socket)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="helios-dbus-")
        self.socket = os.path.join(self.dir, "bus")
        self.address = f"unix:path={self.socket}"
        self.config = os.path.join(self.dir, "bus.conf")
        with open(self.config, "w", encoding="utf-8") as fh:
            fh.write(_CONFIG.format(socket=self.socket))
        self.proc: subprocess.Popen | None = None

    def start(self) -> DbusDaemon:
        """Start the daemon and wait until it prints its address."""
        exe = shutil.which("dbus-daemon")
        if exe is None:
            raise RuntimeError("dbus-daemon not found (apt-get install dbus)")
        with open(os.path.join(self.dir, "daemon.log"), "ab") as log:
            self.proc = subprocess.Popen([exe, f"--config-file={self.config}", "--nofork",
                                          "--print-address=1"], stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("unix:"):
            self.stop()
            raise RuntimeError(f"dbus-daemon did not start: {line!r}")
        return self

    def stop(self) -> None:
        """Terminate the daemon we started (by its own handle, nothing else)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc.stdout.close()
            self.proc = None
            try:
                os.unlink(self.socket)
            except FileNotFoundError:
                pass

    def cleanup(self) -> None:
        """Stop and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DbusDaemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


def _mgmt(name: str, instance: int, product: str) -> dict:
    return {"/Mgmt/ProcessName": name, "/Mgmt/ProcessVersion": "1.0-emulated",
            "/Mgmt/Connection": "emulated", "/DeviceInstance": instance, "/ProductId": 0,
            "/ProductName": product, "/FirmwareVersion": 0x0370, "/Connected": 1}


class DbusGx:
    """Victron services on ``address`` driven by ``plant`` at ``clock()``.

    The plant (:class:`gx_emulator.victron_ess.EssPlant`) reacts to hub4's overrides; a
    :class:`gx_emulator.victron_ess.DessDelegate` writes them from the DESS windows as
    systemcalc does and publishes ``/DynamicEss/*``. Use as a context manager, or
    :meth:`start` / :meth:`stop` (stopping makes every service vanish from the bus, like a GX
    whose services restart). ``soc_decimals``: the BMS's SoC precision (DESS rounds targets
    to what it has seen).
    """

    def __init__(self, plant: EssPlant, clock: Callable[[], datetime], address: str,
                 soc_decimals: int = 1, venus_380: bool = False,
                 gps: tuple[float | None, float | None, int] | None = None):
        self.plant = plant = as_ess_plant(plant)
        self.gps = gps  # (latitude, longitude, fix) or None: no GPS service
        self.clock = clock
        self.address = address
        self.settings = plant.settings
        self.soc_unknown = False
        self.soc_decimals = soc_decimals
        self.venus_380 = venus_380  # DESS status on com.victronenergy.dynamicess
        self.flash_writes = 0
        self.writes_by_path: dict = {}
        self.set_calls: list = []
        self.dess = plant.delegate or DessDelegate(plant, soc_reported=self._soc)
        self.dess.soc_reported = self._soc
        self._conn = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _soc(self):
        return None if self.soc_unknown else round(self.plant.soc_pct, self.soc_decimals)

    @property
    def override(self) -> float | None:
        """hub4 ``/Overrides/Setpoint`` (None = invalid)."""
        return self.plant.setpoint

    # --- values ------------------------------------------------------------------------------

    def values(self, service: str) -> dict:
        """Every path → value of ``service`` now (``None`` = invalid)."""
        p = self.plant
        if service == SETTINGS:
            return {k: v[0] for k, v in self.settings.items()}
        if service == GPS and self.gps is not None:
            lat, lon, fix = self.gps
            return {"/Position/Latitude": lat, "/Position/Longitude": lon, "/Fix": fix,
                    "/NrOfSatellites": 7 if fix else 0, "/Altitude": 12.5 if fix else None,
                    **_mgmt("gps-dbus", 0, "USB GPS")}
        p.advance(self.clock())
        if service == HUB4:
            return {"/Overrides/Setpoint": p.setpoint, "/Overrides/ForceCharge": p.force_charge,
                    "/Overrides/MaxDischargePower": p.max_discharge_power,
                    "/Overrides/FeedInExcess": p.feed_in_excess, "/Pv/Disable": p.pv_disabled,
                    **_mgmt("hub4control", 0, "Hub-4")}
        soc = self._soc()
        charge_w = -p.battery_power_w  # Victron: + = charging
        if service == SYSTEM:
            return {
                "/Dc/Battery/Soc": soc, "/Dc/Battery/Power": charge_w,
                "/Dc/Battery/Voltage": p.volts, "/Dc/Battery/Current": charge_w / p.volts,
                "/Dc/Battery/State": 1 if charge_w > 0 else (2 if charge_w < 0 else 0),
                "/Dc/Battery/BatteryService": BATTERY, "/ActiveBmsService": BATTERY,
                "/Dc/Pv/Power": None,
                "/Ac/Grid/L1/Power": p.grid_power_w, "/Ac/Grid/L2/Power": None,
                "/Ac/Grid/L3/Power": None, "/Ac/Grid/NumberOfPhases": 1,
                "/Ac/Consumption/L1/Power": p.load_power_w, "/Ac/Consumption/L2/Power": None,
                "/Ac/PvOnGrid/L1/Power": p.pv_power_w, "/Ac/PvOnOutput/L1/Power": None,
                "/Ac/ActiveIn/Source": 1, "/SystemType": "ESS", "/Hub": 4,
                "/VebusService": VEBUS, "/VebusInstance": 276,
                "/Control/ActiveSocLimit": p.min_soc_pct, "/Pv/Disable": p.pv_disabled,
                **({} if self.venus_380 else
                   {"/DynamicEss/" + k: v for k, v in self.dess.status.items()}),
                **_mgmt("dbus-systemcalc-py", 0, "System calc"),
            }
        if service == BATTERY:
            ccl = None if p.bms_max_charge_w is None else p.bms_max_charge_w / p.volts
            dcl = None if p.bms_max_discharge_w is None else p.bms_max_discharge_w / p.volts
            return {"/Soc": soc, "/Dc/0/Voltage": p.volts, "/Dc/0/Power": charge_w,
                    "/Info/MaxChargeCurrent": ccl, "/Info/MaxDischargeCurrent": dcl,
                    "/Info/MaxChargeVoltage": 56.8, **_mgmt("dbus-can-bms", 512, "BMS")}
        if service == DYNAMICESS and self.venus_380:
            return {"/" + k: v for k, v in self.dess.status.items()}
        if service == VEBUS:
            dvcc = None if p.dvcc_charge_w is None else p.dvcc_charge_w / p.volts
            return {"/Hub4/AssistantId": 5, "/Ac/Out/NominalInverterPower": 5000, "/State": 9,
                    "/Mode": 3, "/Soc": soc, "/BatteryOperationalLimits/MaxChargeCurrent": dvcc,
                    **_mgmt("mk2-dbus", 276, "MultiPlus-II")}
        return {}

    def set_value(self, service: str, path: str, value) -> int:
        """SetValue semantics: localsettings 0/-1 (converted with int()/float(), refused out of
        range, never clamped), velib 0/1."""
        self.set_calls.append((service, path, value))
        self.plant.advance(self.clock())  # the old values were in force until now
        if service == SETTINGS:
            entry = self.settings.get(path)
            if entry is None:
                return -1
            new = convert_setting(entry, value)
            if new is None:
                return -1
            old = entry[0]
            if new != old:
                entry[0] = new
                self.flash_writes += 1
                self.writes_by_path[path] = self.writes_by_path.get(path, 0) + 1
                self.dess.settings_changed(path, old, new)
            return 0
        if service == HUB4 and path == "/Overrides/Setpoint":
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                return 1
            self.plant.setpoint = None if value is None else float(value)
            return 0
        if service == HUB4 and path in ("/Overrides/ForceCharge", "/Overrides/MaxDischargePower",
                                        "/Overrides/FeedInExcess"):
            attr = {"/Overrides/ForceCharge": "force_charge",
                    "/Overrides/MaxDischargePower": "max_discharge_power",
                    "/Overrides/FeedInExcess": "feed_in_excess"}[path]
            setattr(self.plant, attr, value)
            return 0
        return 1  # velib: not writeable

    # --- the bus side ------------------------------------------------------------------------

    def _handle(self, msg) -> None:
        hdr = msg.header
        if hdr.message_type != MessageType.method_call:
            return
        service = hdr.fields.get(HeaderFields.destination)
        path = hdr.fields.get(HeaderFields.path)
        member = hdr.fields.get(HeaderFields.member)
        with self._lock:
            values = self.values(service)
            if member == "Introspect":
                reply = new_method_return(msg, "s", (
                    f'<node><interface name="{IFACE}"><method name="GetValue"><arg '
                    'direction="out" type="v"/></method></interface></node>',))
            elif path == "/" and member == "GetValue":
                reply = new_method_return(msg, "v", (to_variant(
                    {k.lstrip("/"): v for k, v in values.items()}),))
            elif path == "/" and member == "GetItems":
                items = {k: {"Value": to_variant(v), "Text": ("s", _text(v))}
                         for k, v in values.items()}
                reply = new_method_return(msg, "a{sa{sv}}", (items,))
            elif path not in values:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownObject",
                                  "s", (f"no object {path}",))
            elif member == "GetValue":
                reply = new_method_return(msg, "v", (to_variant(values[path]),))
            elif member == "GetText":
                reply = new_method_return(msg, "s", (_text(values[path]),))
            elif member == "SetValue":
                value = from_variant(msg.body[0])
                code = self.set_value(service, path, value)
                reply = new_method_return(msg, "i", (code,))
                if code == 0:
                    new = self.values(service).get(path)
                    self._conn.send(new_signal(DBusAddress(path, interface=IFACE),
                                               "PropertiesChanged", "a{sv}",
                                               ({"Value": to_variant(new),
                                                 "Text": ("s", _text(new))},)))
            else:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                  (f"no method {member}",))
        self._conn.send(reply)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return  # the daemon went away
            self._handle(msg)

    def start(self) -> DbusGx:
        """Connect, then own the service names (paths exist before the names, like velib)."""
        self._conn = open_dbus_connection(bus=self.address)
        for name in (SETTINGS, SYSTEM, HUB4, BATTERY, VEBUS) \
                + ((DYNAMICESS,) if self.venus_380 else ()) \
                + ((GPS,) if self.gps is not None else ()):
            req = new_method_call(DBusAddress("/org/freedesktop/DBus",
                                              bus_name="org.freedesktop.DBus",
                                              interface="org.freedesktop.DBus"),
                                  "RequestName", "su", (name, 4))
            reply = self._conn.send_and_get_reply(req, timeout=5)
            if reply.body[0] != 1:
                raise RuntimeError(f"could not own {name}: {reply.body}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="dbus-gx")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: every service name vanishes from the bus."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def __enter__(self) -> DbusGx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _text(value) -> str:
    return "---" if value is None else str(value)
