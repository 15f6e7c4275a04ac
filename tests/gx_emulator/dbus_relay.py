"""An emulated GX relay: ``com.victronenergy.system /Relay/<N>/State`` (0/1, writable) and,
optionally, ``com.victronenergy.settings /Settings/Relay/Function`` (and
``/Settings/Relay/<N>/Function``; 2 = manual) on a private ``dbus-daemon``
(:class:`gx_emulator.dbus_gx.DbusDaemon`), velib-style. SetValue answers 0, or 1 for a
value other than 0/1 or a read-only path."""

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

SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"


class _Service:
    """One bus name serving ``values`` (a dict path → value) and ``set_value``."""

    def __init__(self, address: str, name: str, owner):
        self.address, self.name, self.owner = address, name, owner
        self._conn = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _handle(self, msg) -> None:
        hdr = msg.header
        if hdr.message_type != MessageType.method_call:
            return
        path = hdr.fields.get(HeaderFields.path)
        member = hdr.fields.get(HeaderFields.member)
        with self.owner.lock:
            values = self.owner.values(self.name)
            if path == "/" and member == "GetValue":
                reply = new_method_return(msg, "v", (to_variant(
                    {k.lstrip("/"): v for k, v in values.items()}),))
            elif path not in values:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", "s",
                                  (f"no object {path}",))
            elif member == "GetValue":
                reply = new_method_return(msg, "v", (to_variant(values[path]),))
            elif member == "SetValue":
                code = self.owner.set_value(self.name, path, from_variant(msg.body[0]))
                reply = new_method_return(msg, "i", (code,))
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

    def start(self) -> None:
        self._conn = open_dbus_connection(bus=self.address)
        req = new_method_call(DBusAddress("/org/freedesktop/DBus",
                                          bus_name="org.freedesktop.DBus",
                                          interface="org.freedesktop.DBus"),
                              "RequestName", "su", (self.name, 4))
        reply = self._conn.send_and_get_reply(req, timeout=5)
        if reply.body[0] != 1:
            raise RuntimeError(f"could not own {self.name}: {reply.body}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=self.name)
        self._thread.start()

    def stop(self) -> None:
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


class DbusRelays:
    """The GX's relays; ``state[n]`` is relay n now, ``set_calls`` every SetValue on them.

    ``functions``: the relay functions the settings service publishes (None: no settings
    service on the bus)."""

    def __init__(self, address: str, relays: int = 2, functions: list[int] | None = None):
        self.state = [0] * relays
        self.functions = functions
        self.set_calls: list = []
        self.lock = threading.Lock()
        self._services = [_Service(address, SYSTEM, self)]
        if functions is not None:
            self._services.append(_Service(address, SETTINGS, self))

    @staticmethod
    def function_path(n: int) -> str:
        return "/Settings/Relay/Function" if n == 0 else f"/Settings/Relay/{n}/Function"

    def values(self, service: str) -> dict:
        if service == SETTINGS:
            return {self.function_path(n): f for n, f in enumerate(self.functions or [])}
        return {**{f"/Relay/{n}/State": s for n, s in enumerate(self.state)},
                "/Dc/Battery/Soc": 50.0}

    def set_value(self, service: str, path: str, value) -> int:
        if service == SETTINGS:
            n = next((n for n in range(len(self.functions)) if self.function_path(n) == path),
                     None)
            if n is None or not isinstance(value, int):
                return 1
            self.functions[n] = value
            return 0
        self.set_calls.append((path, value))
        parts = path.split("/")
        if (len(parts) != 4 or parts[1] != "Relay" or parts[3] != "State"
                or isinstance(value, bool) or value not in (0, 1)):
            return 1
        self.state[int(parts[2])] = int(value)
        return 0

    def start(self) -> DbusRelays:
        for s in self._services:
            s.start()
        return self

    def stop(self) -> None:
        for s in self._services:
            s.stop()

    def __enter__(self) -> DbusRelays:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
