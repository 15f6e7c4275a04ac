"""An emulated GX on a private ``dbus-daemon``, driven by a plant (``reference/victron.md``
§1, §2, §7).

:class:`DbusDaemon` starts a real ``dbus-daemon`` (own config, socket in a temp dir) and
:class:`DbusGx` puts Victron-like services on it from one jeepney connection served by a
background thread:

* ``com.victronenergy.system`` — systemcalc telemetry computed from the plant
  (``/Dc/Battery/Power`` + = charging, ``/Ac/Grid/L*/Power`` + = import, invalid phases as
  empty arrays), read-only (SetValue → 1);
* ``com.victronenergy.settings`` — localsettings: each setting has min/max and an
  out-of-range or mistyped write is **refused with -1, not clamped**; accepted changes are
  counted as flash writes (``flash_writes``, ``writes_by_path``);
* ``com.victronenergy.hub4`` — ``/Overrides/Setpoint`` (volatile; invalid = no override);
* ``com.victronenergy.battery.socketcan_can0`` — SoC, CCL/DCL (``/Info/Max*Current``);
* ``com.victronenergy.vebus.ttyS4`` — ESS assistant present.

Every path is an object with ``com.victronenergy.BusItem`` ``GetValue``/``SetValue``/
``GetText``; ``/`` answers ``GetValue`` (dict of all values) and ``GetItems``; ``SetValue``
emits ``PropertiesChanged``. ``None`` is sent as the empty ``ai`` array. A simplified Dynamic
ESS loop picks the first schedule window (slot order, ``Start > 0``, ``[Start, Start+Duration)``,
``TargetSoc > 0`` beats ``Soc``) and steers the plant to it; no window → self-consumption.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

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
from executor.drivers.simulated import DessWindow, Plant

IFACE = "com.victronenergy.BusItem"
SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
HUB4 = "com.victronenergy.hub4"
BATTERY = "com.victronenergy.battery.socketcan_can0"
VEBUS = "com.victronenergy.vebus.ttyS4"
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


def _settings_table() -> dict:
    """path → [value, default, min, max] (min = max = 0: no limits), as localsettings."""
    t = {
        "/Settings/CGwacs/AcPowerSetPoint": [0.0, 0.0, -100000.0, 100000.0],
        "/Settings/CGwacs/Hub4Mode": [1, 1, 1, 3],
        "/Settings/CGwacs/BatteryLife/State": [1, 1, 0, 12],
        "/Settings/CGwacs/BatteryLife/MinimumSocLimit": [10.0, 10.0, 0.0, 100.0],
        "/Settings/CGwacs/MaxDischargePower": [-1.0, -1.0, -1.0, 100000.0],
        "/Settings/DynamicEss/Mode": [0, 0, 0, 4],
        "/Settings/DynamicEss/BatteryCapacity": [10.0, 0.0, 0.0, 1000.0],
    }
    for n in range(NUM_SCHEDULES):
        base = f"/Settings/DynamicEss/Schedule/{n}/"
        t.update({base + "Start": [0, 0, 0, 0], base + "Duration": [0, 0, 0, 0],
                  base + "Soc": [0, 0, 0, 100], base + "TargetSoc": [0.0, 0.0, 0.0, 100.0],
                  base + "Strategy": [0, 0, 0, 3], base + "Restrictions": [0, 0, 0, 3],
                  base + "AllowGridFeedIn": [0, 0, 0, 1], base + "Flags": [0, 0, 0, 3]})
    return t


def _mgmt(name: str, instance: int, product: str) -> dict:
    return {"/Mgmt/ProcessName": name, "/Mgmt/ProcessVersion": "1.0-emulated",
            "/Mgmt/Connection": "emulated", "/DeviceInstance": instance, "/ProductId": 0,
            "/ProductName": product, "/FirmwareVersion": 0x0370, "/Connected": 1}


class DbusGx:
    """Victron services on ``address`` driven by ``plant`` at ``clock()``.

    Use as a context manager, or :meth:`start` / :meth:`stop` (stopping makes every service
    vanish from the bus, like a GX whose services restart).
    """

    def __init__(self, plant: Plant, clock: Callable[[], datetime], address: str):
        self.plant = plant
        self.clock = clock
        self.address = address
        self.settings = _settings_table()
        self.override: float | None = None
        self.soc_unknown = False
        self.flash_writes = 0
        self.writes_by_path: dict = {}
        self.set_calls: list = []
        self.hub4_extra = {"/Overrides/ForceCharge": 0, "/Overrides/MaxDischargePower": -1.0,
                           "/Overrides/FeedInExcess": 0}
        self._conn = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.plant.min_soc_pct = self.settings[
            "/Settings/CGwacs/BatteryLife/MinimumSocLimit"][0]

    # --- values ------------------------------------------------------------------------------

    def _dess_loop(self) -> None:
        """Simplified systemcalc DESS: first matching window in slot order, else none."""
        mode = self.settings["/Settings/DynamicEss/Mode"][0]
        window = None
        if mode in (1, 4):
            now_s = self.clock().timestamp()
            for n in range(NUM_SCHEDULES):
                base = f"/Settings/DynamicEss/Schedule/{n}/"
                start, dur = self.settings[base + "Start"][0], self.settings[base + "Duration"][0]
                if start > 0 and start <= now_s < start + dur:
                    target = self.settings[base + "TargetSoc"][0] or self.settings[base + "Soc"][0]
                    t0 = datetime.fromtimestamp(start, tz=timezone.utc)
                    window = DessWindow(t0, t0 + timedelta(seconds=dur), float(target))
                    break
        self.plant.window = window

    def values(self, service: str) -> dict:
        """Every path → value of ``service`` now (``None`` = invalid)."""
        p = self.plant
        if service == SETTINGS:
            return {k: v[0] for k, v in self.settings.items()}
        if service == HUB4:
            return {"/Overrides/Setpoint": self.override, **self.hub4_extra,
                    **_mgmt("hub4control", 0, "Hub-4")}
        p.advance(self.clock())  # integrate with the window that was in force until now
        self._dess_loop()
        soc = None if self.soc_unknown else round(p.soc_pct, 2)
        charge_w = -p.battery_power_w  # Victron: + = charging
        if service == SYSTEM:
            return {
                "/Dc/Battery/Soc": soc, "/Dc/Battery/Power": charge_w,
                "/Dc/Battery/Voltage": 52.0, "/Dc/Battery/Current": charge_w / 52.0,
                "/Dc/Battery/State": 1 if charge_w > 0 else (2 if charge_w < 0 else 0),
                "/Dc/Battery/BatteryService": BATTERY, "/Dc/Pv/Power": None,
                "/Ac/Grid/L1/Power": p.grid_power_w, "/Ac/Grid/L2/Power": None,
                "/Ac/Grid/L3/Power": None, "/Ac/Grid/NumberOfPhases": 1,
                "/Ac/Consumption/L1/Power": p.load_power_w, "/Ac/Consumption/L2/Power": None,
                "/Ac/PvOnGrid/L1/Power": p.pv_power_w, "/Ac/PvOnOutput/L1/Power": None,
                "/Ac/ActiveIn/Source": 1, "/SystemType": "ESS", "/Hub": 4,
                "/VebusService": VEBUS, "/VebusInstance": 276,
                "/Control/ActiveSocLimit": p.min_soc_pct,
                "/DynamicEss/Active": int(p.window is not None),
                "/DynamicEss/TargetSoc": p.window.target_soc_pct if p.window else None,
                **_mgmt("dbus-systemcalc-py", 0, "System calc"),
            }
        if service == BATTERY:
            ccl = None if p.bms_max_charge_w is None else p.bms_max_charge_w / 52.0
            dcl = None if p.bms_max_discharge_w is None else p.bms_max_discharge_w / 52.0
            return {"/Soc": soc, "/Dc/0/Voltage": 52.0, "/Dc/0/Power": charge_w,
                    "/Info/MaxChargeCurrent": ccl, "/Info/MaxDischargeCurrent": dcl,
                    "/Info/MaxChargeVoltage": 56.8, **_mgmt("dbus-can-bms", 512, "BMS")}
        if service == VEBUS:
            return {"/Hub4/AssistantId": 5, "/Ac/Out/NominalInverterPower": 5000, "/State": 9,
                    "/Mode": 3, "/Soc": soc, **_mgmt("mk2-dbus", 276, "MultiPlus-II")}
        return {}

    def set_value(self, service: str, path: str, value) -> int:
        """SetValue semantics: settings 0/-1 (range refusal), velib 0/1."""
        self.set_calls.append((service, path, value))
        if service == SETTINGS:
            if path not in self.settings:
                return -1
            current, _default, lo, hi = self.settings[path]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return -1
            value = float(value) if isinstance(current, float) else value
            if isinstance(current, int) and isinstance(value, float):
                if not value.is_integer():
                    return -1
                value = int(value)
            if not (lo == 0 and hi == 0) and not lo <= value <= hi:
                return -1  # localsettings refuses, it does not clamp
            if value != current:
                self.settings[path][0] = value
                self.flash_writes += 1
                self.writes_by_path[path] = self.writes_by_path.get(path, 0) + 1
            if path == "/Settings/CGwacs/BatteryLife/MinimumSocLimit":
                self.plant.min_soc_pct = float(value)
            self.plant.advance(self.clock())
            self._dess_loop()
            return 0
        if service == HUB4 and path == "/Overrides/Setpoint":
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                return 1
            self.plant.advance(self.clock())
            self.override = None if value is None else float(value)
            self.plant.grid_setpoint_w = self.override  # invalid → AcPowerSetPoint (0)
            return 0
        if service == HUB4 and path in self.hub4_extra:
            self.hub4_extra[path] = value
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
        for name in (SETTINGS, SYSTEM, HUB4, BATTERY, VEBUS):
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
