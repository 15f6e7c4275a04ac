"""An emulated Victron EV Charging Station: ``com.victronenergy.evcharger.<x>`` on a private
``dbus-daemon`` (:class:`gx_emulator.dbus_gx.DbusDaemon`), velib-style.

Paths (../shared/reference/devices.md §2.5): ``/Mode`` (W: 0 manual, 1 auto, 2 scheduled),
``/StartStop`` (W, 0/1; acts in manual mode only), ``/SetCurrent`` (W, A, capped at
``/MaxCurrent``), ``/MaxCurrent`` (W), ``/Status`` (0 disconnected, 1 connected, 2 charging,
4 waiting for sun), ``/Ac/Power`` (W), ``/Current`` (A). In auto mode the station charges from
``surplus_w`` (given by the test). SetValue returns 0, or 1 for an unknown path or bad type.
"""

from __future__ import annotations

import threading

from jeepney import (
    DBusAddress,
    HeaderFields,
    MessageType,
    new_error,
    new_method_call,
    new_method_return,
)
from jeepney.io.blocking import open_dbus_connection

from executor.drivers._dbus import from_variant, to_variant

IFACE = "com.victronenergy.BusItem"
SERVICE = "com.victronenergy.evcharger.emulated_40"
WRITABLE = ("/Mode", "/StartStop", "/SetCurrent", "/MaxCurrent")


class DbusEvcs:
    """The station; ``values()`` is what the bus sees now, ``set_calls`` every SetValue."""

    def __init__(self, address: str, mode: int = 1, max_current_a: float = 16.0,
                 phases: int = 3, car: bool = True):
        self.address = address
        self.mode, self.start_stop = mode, 0
        self.set_current_a, self.max_current_a = 6.0, max_current_a
        self.phases, self.car = phases, car
        self.surplus_w = 0.0
        self.set_calls: list = []
        self._conn = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def current_a(self) -> float:
        """The current the car draws now. [A]"""
        if not self.car:
            return 0.0
        if self.mode == 0:
            return min(self.set_current_a, self.max_current_a) if self.start_stop else 0.0
        if self.mode == 1:  # solar surplus, 6 A at least or nothing
            amps = self.surplus_w / (230.0 * self.phases)
            return min(amps, self.max_current_a) if amps >= 6.0 else 0.0
        return 0.0

    def values(self) -> dict:
        amps = self.current_a()
        status = 0 if not self.car else (2 if amps > 0 else (4 if self.mode == 1 else 1))
        return {"/Mode": self.mode, "/StartStop": self.start_stop,
                "/SetCurrent": self.set_current_a, "/MaxCurrent": self.max_current_a,
                "/Status": status, "/Ac/Power": round(amps * 230.0 * self.phases, 1),
                "/Current": amps, "/Position": 1, "/DeviceInstance": 40,
                "/ProductName": "EV Charging Station (emulated)", "/Connected": 1}

    def set_value(self, path: str, value) -> int:
        self.set_calls.append((path, value))
        if path not in WRITABLE or isinstance(value, bool) or not isinstance(value,
                                                                             (int, float)):
            return 1
        if path == "/Mode":
            self.mode = int(value)
        elif path == "/StartStop":
            self.start_stop = int(value)
        elif path == "/SetCurrent":
            self.set_current_a = min(float(value), self.max_current_a)
        else:
            self.max_current_a = float(value)
        return 0

    def _handle(self, msg) -> None:
        hdr = msg.header
        if hdr.message_type != MessageType.method_call:
            return
        path = hdr.fields.get(HeaderFields.path)
        member = hdr.fields.get(HeaderFields.member)
        with self._lock:
            values = self.values()
            if path == "/" and member == "GetValue":
                reply = new_method_return(msg, "v", (to_variant(
                    {k.lstrip("/"): v for k, v in values.items()}),))
            elif path not in values:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", "s",
                                  (f"no object {path}",))
            elif member == "GetValue":
                reply = new_method_return(msg, "v", (to_variant(values[path]),))
            elif member == "SetValue":
                reply = new_method_return(msg, "i", (self.set_value(path,
                                                                    from_variant(msg.body[0])),))
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
                return
            self._handle(msg)

    def start(self) -> DbusEvcs:
        """Connect and own the service name."""
        self._conn = open_dbus_connection(bus=self.address)
        req = new_method_call(DBusAddress("/org/freedesktop/DBus",
                                          bus_name="org.freedesktop.DBus",
                                          interface="org.freedesktop.DBus"),
                              "RequestName", "su", (SERVICE, 4))
        reply = self._conn.send_and_get_reply(req, timeout=5)
        if reply.body[0] != 1:
            raise RuntimeError(f"could not own {SERVICE}: {reply.body}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="dbus-evcs")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: the service vanishes from the bus."""
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

    def __enter__(self) -> DbusEvcs:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
