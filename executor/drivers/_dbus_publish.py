"""Publish devices on D-Bus as Victron services (``com.victronenergy.BusItem``), over jeepney.

Used by the ``opendtu`` driver (``publish_dbus: true``) to show the Hoymiles inverters on a GX
as ``com.victronenergy.dcsystem`` (default) or ``dcload`` services, as hkaest/dbus-opendtu-DC-load
does (``dbus-opendtu.py:67-130``, ``dbus_service.py:296-330``):

* **dcsystem** is what systemcalc sums into ``com.victronenergy.system /Dc/System/Power``, so
  DVCC raises the chargers' current limit by what the inverters draw ("If you have one or more
  shunts configured for DC system ... the DVCC charge current limit compensates for both loads
  and chargers", Victron's DVCC manual, quoted in hkaest's README); the GX needs "Has DC
  system" on. VRM shows **dcload** but (per hkaest) not dcsystem, and DVCC ignores dcload.
* The mandatory paths of a Victron service (``reference/victron.md`` §1, velib ``vedbus.py``):
  ``/Mgmt/ProcessName``, ``/Mgmt/ProcessVersion``, ``/Mgmt/Connection``, ``/DeviceInstance``,
  ``/ProductId``, ``/ProductName``, ``/FirmwareVersion``, ``/Connected``; then the paths of the
  service type (``/Dc/0/{Voltage,Current,Power,Temperature}``, current + = consumed) and its
  alarms, ``/Alarms/{Low,High}{Voltage,StarterVoltage,Temperature}`` (0 ok, 1 warning,
  2 alarm). The GX raises notifications only for the alarm paths it knows for the service
  type, so the seed maps its own faults onto them (``dbus_service.py:453-460``); see
  :data:`ALARM_PATHS`.

Each service has **its own connection** (velib's ``DbusMonitor``, which systemcalc uses, tells
services apart by the sender's unique name, so two names on one connection would be confused)
and one thread that answers ``GetValue``/``GetText``/``SetValue``/``GetItems`` and sends
``PropertiesChanged`` (per path) and ``ItemsChanged`` (on ``/``) for changed values. Paths
exist before the name is requested (``DO_NOT_QUEUE``, as velib's ``register()``). ``None`` is
Victron's invalid (the empty ``ai`` array). Only this thread touches its connection: updates
from the driver are queued under a lock and sent by it.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from typing import Any

from executor.drivers._dbus import IFACE, from_variant, to_variant
from executor.errors import DriverError, DriverUnavailable

log = logging.getLogger("helios.executor.dbus_publish")

try:
    VERSION = metadata.version("helios-ems")
except metadata.PackageNotFoundError:  # running from a source tree
    VERSION = "dev"

#: alarm level values of Victron's ``/Alarms/*`` paths
ALARM_OK, ALARM_WARNING, ALARM_ALARM = 0, 1, 2

#: the dcload/dcsystem alarm paths and which driver alarms (key prefixes of
#: ``OpenDtuDriver.alarms``) set them. From hkaest's mapping (``dbus_service.py:453-460``):
#: "OpenDTU HTTP Push" → LowStarterVoltage, "OpenDTU HM state" → HighStarterVoltage; the
#: inverter temperature goes to HighTemperature (the seed uses HighVoltage, its HighTemperature
#: being the battery's CCL); the others stay 0.
ALARM_PATHS = {
    "/Alarms/LowVoltage": (),
    "/Alarms/HighVoltage": (),
    "/Alarms/LowStarterVoltage": ("communication", "release", "command", "dbus"),
    "/Alarms/HighStarterVoltage": ("inverter", "limit"),
    "/Alarms/LowTemperature": (),
    "/Alarms/HighTemperature": ("temperature",),
}

_UNITS = {"/Dc/0/Voltage": "V", "/Dc/0/Current": "A", "/Dc/0/Power": "W",
          "/Dc/0/Temperature": "°C"}


def text(path: str, value: Any) -> str:
    """velib's ``GetText``: the value with its unit; invalid is ``---``."""
    if value is None:
        return "---"
    if isinstance(value, float):
        return f"{value:.1f}{_UNITS.get(path, '')}"
    return f"{value}{_UNITS.get(path, '')}"


def alarm_levels(alarms: dict, serial: str) -> dict:
    """``/Alarms/*`` path → level for one inverter from the driver's alarm keys.

    A key is ``"<kind>"`` (the gateway: every inverter) or ``"<kind> <serial>"``.
    """
    levels = {}
    for path, kinds in ALARM_PATHS.items():
        hit = False
        for key in alarms:
            kind, _, who = key.partition(" ")
            if kind in kinds and who in ("", serial):
                hit = True
        levels[path] = ALARM_ALARM if hit else ALARM_OK
    return levels


class BusItemService:
    """One Victron-style service ``name`` on the bus at ``address`` (see the module docstring).

    ``values``: every path → initial value (paths cannot be added later, like a velib service
    after ``register()``). Every path is read-only: ``SetValue`` answers 1 (velib: not
    writeable).
    """

    def __init__(self, name: str, values: dict, address: str = "SYSTEM",
                 timeout_s: float = 2.0):
        self.name = name
        self.address = address
        self.timeout_s = timeout_s
        self._values = dict(values)
        self._pending: dict = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn = None
        self._thread: threading.Thread | None = None

    def values(self) -> dict:
        """A copy of every path → value."""
        with self._lock:
            return dict(self._values)

    def start(self) -> BusItemService:
        """Connect and own the name.

        Raises
        ------
        DriverUnavailable
            The bus cannot be reached.
        DriverError
            The name is owned by another process.
        ImportError
            jeepney is not installed.
        """
        from jeepney import DBusAddress, new_method_call  # optional: pip install helios-ems[dbus]
        from jeepney.io.blocking import open_dbus_connection  # optional, as above

        try:
            self._conn = open_dbus_connection(bus=self.address)
            req = new_method_call(DBusAddress("/org/freedesktop/DBus",
                                              bus_name="org.freedesktop.DBus",
                                              interface="org.freedesktop.DBus"),
                                  "RequestName", "su", (self.name, 4))  # 4 = DO_NOT_QUEUE
            reply = self._conn.send_and_get_reply(req, timeout=self.timeout_s)
        except (OSError, KeyError, ValueError, RuntimeError, TimeoutError) as exc:
            self._close_conn()
            raise DriverUnavailable(f"D-Bus {self.address}: {type(exc).__name__} {exc}") \
                from None
        if not reply.body or reply.body[0] != 1:  # 1 = primary owner
            self._close_conn()
            raise DriverError(f"D-Bus name {self.name} is taken (RequestName {reply.body})")
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"dbus {self.name}")
        self._thread.start()
        return self

    def update(self, values: dict) -> None:
        """Set paths (known ones only); changed values are signalled by the serving thread."""
        with self._lock:
            for path, value in values.items():
                if path in self._values and self._values[path] != value:
                    self._values[path] = value
                    self._pending[path] = value

    def stop(self) -> None:
        """Stop serving and close the connection: the name vanishes from the bus."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None
        self._close_conn()

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    # --- serving thread -----------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._flush()
                msg = self._conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError as exc:  # the daemon went away
                log.warning("D-Bus %s: connection lost (%s)", self.name, exc)
                return
            try:
                self._handle(msg)
            except Exception:  # a bad request must not kill the service
                log.exception("D-Bus %s: answering a request", self.name)

    def _flush(self) -> None:
        from jeepney import DBusAddress, new_signal  # optional: jeepney

        with self._lock:
            changed, self._pending = self._pending, {}
        if not changed:
            return
        items = {}
        for path, value in changed.items():
            entry = {"Value": to_variant(value), "Text": ("s", text(path, value))}
            items[path] = entry
            self._conn.send(new_signal(DBusAddress(path, interface=IFACE),
                                       "PropertiesChanged", "a{sv}", (entry,)))
        self._conn.send(new_signal(DBusAddress("/", interface=IFACE), "ItemsChanged",
                                   "a{sa{sv}}", (items,)))

    def _handle(self, msg) -> None:
        from jeepney import (  # optional: jeepney
            HeaderFields,
            MessageType,
            new_error,
            new_method_return,
        )

        hdr = msg.header
        if hdr.message_type != MessageType.method_call:
            return
        path = hdr.fields.get(HeaderFields.path)
        member = hdr.fields.get(HeaderFields.member)
        values = self.values()
        prefix = "/" if path == "/" else path + "/"
        subtree = {k: v for k, v in values.items() if k.startswith(prefix)}
        if member == "Introspect":
            reply = new_method_return(msg, "s", (
                f'<node><interface name="{IFACE}"><method name="GetValue"><arg '
                'direction="out" type="v"/></method></interface></node>',))
        elif path == "/" and member == "GetItems":
            reply = new_method_return(msg, "a{sa{sv}}", ({
                k: {"Value": to_variant(v), "Text": ("s", text(k, v))}
                for k, v in values.items()},))
        elif path in values and member == "GetValue":
            reply = new_method_return(msg, "v", (to_variant(values[path]),))
        elif path in values and member == "GetText":
            reply = new_method_return(msg, "s", (text(path, values[path]),))
        elif path in values and member == "SetValue":
            from_variant(msg.body[0])
            reply = new_method_return(msg, "i", (1,))  # velib: not writeable
        elif subtree and member == "GetValue":  # velib: a tree node answers its sub-paths
            reply = new_method_return(msg, "v", (to_variant(
                {k[len(prefix):]: v for k, v in subtree.items()}),))
        elif path not in values and not subtree:
            reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", "s",
                              (f"no object {path}",))
        else:
            reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                              (f"no method {member}",))
        self._conn.send(reply)


def mandatory_paths(process: str, connection: str, device_instance: int, product: str,
                    firmware: Any = 0, product_id: int = 0) -> dict:
    """The paths every Victron service has (``reference/victron.md`` §1)."""
    return {"/Mgmt/ProcessName": process, "/Mgmt/ProcessVersion": VERSION,
            "/Mgmt/Connection": connection, "/DeviceInstance": device_instance,
            "/ProductId": product_id, "/ProductName": product, "/FirmwareVersion": firmware,
            "/Connected": 0}


def dc_values(detail: object, connected: bool) -> dict:
    """``/Dc/0/*`` from an OpenDTU ``?inv=<serial>`` entry (``DC`` channels, ``INV`` temp).

    Every DC input of a battery-fed inverter is on the battery: the power and current are the
    channels' sums, the voltage channel 0's; the current is power / voltage when OpenDTU gives
    none. Not connected (or no ``DC`` block): every value invalid.
    """
    out = {"/Dc/0/Voltage": None, "/Dc/0/Current": None, "/Dc/0/Power": None,
           "/Dc/0/Temperature": None}
    if not connected or not isinstance(detail, dict):
        return out

    def num(block: object, name: str) -> float | None:
        v = block.get(name, {}).get("v") if isinstance(block, dict) and isinstance(
            block.get(name), dict) else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    inv = detail.get("INV")
    out["/Dc/0/Temperature"] = num(inv.get("0"), "Temperature") if isinstance(inv, dict) \
        else None
    dc = detail.get("DC")
    channels = [dc[k] for k in sorted(dc) if isinstance(dc[k], dict)] \
        if isinstance(dc, dict) else []
    powers = [num(c, "Power") for c in channels]
    if not channels or None in powers:
        return out
    power = sum(powers)
    volts = num(channels[0], "Voltage")
    currents = [num(c, "Current") for c in channels]
    if None not in currents:
        current = sum(currents)
    else:
        current = power / volts if volts else None
    out.update({"/Dc/0/Voltage": volts, "/Dc/0/Current": current, "/Dc/0/Power": power})
    return out


class DcServices:
    """One ``com.victronenergy.<service_type>.helios_<serial>`` per inverter.

    Device instances are ``device_instance``, ``device_instance + 1``, ... in the order the
    inverters are first seen (sorted by serial within one reading).
    """

    def __init__(self, service_type: str, address: str, device_instance: int,
                 connection: str, timeout_s: float = 2.0):
        self.service_type = service_type
        self.address = address
        self.device_instance = device_instance
        self.connection = connection
        self.timeout_s = timeout_s
        self.services: dict[str, BusItemService] = {}

    def name(self, serial: str) -> str:
        """The bus name of one inverter's service."""
        safe = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in serial)
        return f"com.victronenergy.{self.service_type}.helios_{safe}"

    def publish(self, readings: dict, alarms: dict) -> None:
        """``readings``: serial → (connected, product name, ``?inv=`` entry or None).

        Raises
        ------
        DriverUnavailable, DriverError, ImportError
            A service could not be registered (see :meth:`BusItemService.start`); the others
            are still updated.
        """
        failure: Exception | None = None
        for serial in sorted(readings):
            connected, product, detail = readings[serial]
            service = self.services.get(serial)
            if service is None:
                paths = {**mandatory_paths("helios-executor", self.connection,
                                           self.device_instance + len(self.services),
                                           product),
                         "/CustomName": f"{product} {serial}", "/Serial": serial,
                         **dc_values(None, False), **dict.fromkeys(ALARM_PATHS, ALARM_OK)}
                service = BusItemService(self.name(serial), paths, self.address,
                                         self.timeout_s)
                try:
                    service.start()
                except (DriverError, ImportError) as exc:
                    failure = failure or exc
                    continue
                self.services[serial] = service
                log.info("D-Bus: published %s (device instance %d)", service.name,
                         paths["/DeviceInstance"])
            service.update({"/Connected": int(connected), **dc_values(detail, connected),
                            **alarm_levels(alarms, serial)})
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Remove every service from the bus."""
        for service in self.services.values():
            service.stop()
        self.services = {}
