"""A tiny D-Bus client for Victron's ``com.victronenergy.BusItem`` API, over two libraries.

* **dbus-python** is what ships on Venus OS (``python3-dbus``), so on a GX nothing needs
  installing;
* **jeepney** (pure Python, ``pip install helios-ems[dbus]``) works anywhere, needs no
  compiler or GLib, and is what the tests use against the emulated GX.

``library: auto`` picks dbus-python when importable, else jeepney. Both expose the same three
calls — :meth:`get_value`, :meth:`get_items`, :meth:`set_value` — with plain Python values:
Victron's "invalid" (an empty array, victron.md §1) becomes ``None`` and ``None`` is sent as
the empty ``ai`` array. No main loop is needed: the executor only makes blocking calls.
"""

from __future__ import annotations

from typing import Any

from executor.errors import DriverError, DriverUnavailable

IFACE = "com.victronenergy.BusItem"
#: D-Bus errors meaning "nobody owns that service name (right now)"
SERVICE_GONE = ("org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply")


class ServiceMissing(DriverError):
    """The service is not on the bus (e.g. no BMS connected, or a service restarting)."""


def to_variant(value: Any) -> tuple:
    """Python value → jeepney ``(signature, value)``; ``None`` → the empty ``ai`` array."""
    if value is None:
        return ("ai", [])
    if isinstance(value, bool):
        return ("i", int(value))
    if isinstance(value, int):
        return ("i", value) if -2**31 <= value < 2**31 else ("x", value)
    if isinstance(value, float):
        return ("d", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, dict):
        return ("a{sv}", {str(k): to_variant(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        if not value:
            return ("au", [])  # velib: an empty list is sent as 'au' to avoid the invalid clash
        return ("av", [to_variant(v) for v in value])
    raise TypeError(f"cannot send {type(value).__name__} over D-Bus")


def from_variant(var: Any) -> Any:
    """jeepney ``(signature, value)`` → Python; an empty ``ai`` array → ``None``."""
    if not isinstance(var, tuple) or len(var) != 2 or not isinstance(var[0], str):
        return var
    sig, value = var
    if sig == "ai" and not value:
        return None
    if sig.startswith("a{"):
        items = value.items() if isinstance(value, dict) else value
        return {k: from_variant(v) for k, v in items}
    if sig == "av":
        return [from_variant(v) for v in value]
    return value


class JeepneyBus:
    """Blocking jeepney connection. ``address``: 'SYSTEM', 'SESSION' or a bus address."""

    def __init__(self, address: str = "SYSTEM", timeout_s: float = 2.0):
        from jeepney.io.blocking import open_dbus_connection  # optional: jeepney or dbus-python

        self.timeout_s = timeout_s
        try:
            self.conn = open_dbus_connection(bus=address)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise DriverUnavailable(f"D-Bus {address}: {exc}") from None

    def call(self, service: str, path: str, member: str, signature: str | None = None,
             body: tuple = (), interface: str = IFACE) -> tuple:
        """One method call; returns the reply body."""
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call  # optional

        msg = new_method_call(DBusAddress(path, bus_name=service, interface=interface), member,
                              signature, body)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=self.timeout_s)
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise DriverUnavailable(f"D-Bus call {service}{path}.{member}: "
                                    f"{type(exc).__name__} {exc}") from None
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name, "")
            text = f"{service}{path}.{member}: {name} {reply.body[0] if reply.body else ''}"
            raise (ServiceMissing if name in SERVICE_GONE else DriverError)(text)
        return reply.body

    def get_value(self, service: str, path: str) -> Any:
        """``GetValue`` of one path (``None`` = invalid)."""
        return from_variant(self.call(service, path, "GetValue")[0])

    def get_items(self, service: str) -> dict:
        """All values of a service from ``GetValue`` on ``/``, keyed ``/Path``."""
        values = self.get_value(service, "/")
        if not isinstance(values, dict):
            raise DriverError(f"{service}: root GetValue did not return a dict")
        return {("/" + k.lstrip("/")): v for k, v in values.items()}

    def set_value(self, service: str, path: str, value: Any) -> int:
        """``SetValue``; returns the service's code (0 = accepted)."""
        return int(self.call(service, path, "SetValue", "v", (to_variant(value),))[0])

    def list_names(self) -> list:
        """Every name on the bus."""
        return list(self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "ListNames",
                              interface="org.freedesktop.DBus")[0])

    def close(self) -> None:
        """Close the connection."""
        try:
            self.conn.close()
        except OSError:
            pass


class DbusPythonBus:
    """dbus-python (what Venus OS ships); blocking calls without introspection."""

    def __init__(self, address: str = "SYSTEM", timeout_s: float = 2.0):
        import dbus  # optional: ships with Venus OS, absent elsewhere

        self.dbus = dbus
        self.timeout_s = timeout_s
        try:
            if address == "SYSTEM":
                self.bus = dbus.SystemBus(private=True)
            elif address == "SESSION":
                self.bus = dbus.SessionBus(private=True)
            else:
                self.bus = dbus.bus.BusConnection(address)
        except dbus.exceptions.DBusException as exc:
            raise DriverUnavailable(f"D-Bus {address}: {exc}") from None

    def _unwrap(self, v: Any) -> Any:
        d = self.dbus
        if isinstance(v, d.Array):
            return None if len(v) == 0 and v.signature == "i" else [self._unwrap(x) for x in v]
        if isinstance(v, d.Dictionary):
            return {str(k): self._unwrap(x) for k, x in v.items()}
        if isinstance(v, d.Double):
            return float(v)
        if isinstance(v, d.Boolean):
            return bool(v)
        if isinstance(v, (d.Byte, d.Int16, d.Int32, d.Int64, d.UInt16, d.UInt32, d.UInt64)):
            return int(v)
        if isinstance(v, (d.String, d.ObjectPath, d.Signature)):
            return str(v)
        return v

    def call(self, service: str, path: str, member: str, signature: str = "",
             args: tuple = (), interface: str = IFACE) -> Any:
        """One blocking method call; returns the unwrapped reply."""
        d = self.dbus
        try:
            reply = self.bus.call_blocking(service, path, interface, member, signature, args,
                                           timeout=self.timeout_s)
        except d.exceptions.DBusException as exc:
            name = exc.get_dbus_name() or ""
            text = f"{service}{path}.{member}: {name} {exc.get_dbus_message()}"
            if name in SERVICE_GONE:
                raise ServiceMissing(text) from None
            if name.startswith("org.freedesktop.DBus.Error.") and name.endswith(
                    ("Disconnected", "NoServer", "Timeout", "TimedOut")):
                raise DriverUnavailable(text) from None
            raise DriverError(text) from None
        return self._unwrap(reply)

    def get_value(self, service: str, path: str) -> Any:
        """``GetValue`` of one path (``None`` = invalid)."""
        return self.call(service, path, "GetValue")

    def get_items(self, service: str) -> dict:
        """All values of a service from ``GetValue`` on ``/``, keyed ``/Path``."""
        values = self.get_value(service, "/")
        if not isinstance(values, dict):
            raise DriverError(f"{service}: root GetValue did not return a dict")
        return {("/" + k.lstrip("/")): v for k, v in values.items()}

    def set_value(self, service: str, path: str, value: Any) -> int:
        """``SetValue``; returns the service's code (0 = accepted)."""
        d = self.dbus
        if value is None:
            wrapped = d.Array([], signature=d.Signature("i"), variant_level=1)
        elif isinstance(value, float):
            wrapped = d.Double(value, variant_level=1)
        elif isinstance(value, bool) or isinstance(value, int):
            wrapped = d.Int32(int(value), variant_level=1)
        else:
            wrapped = d.String(str(value), variant_level=1)
        return int(self.call(service, path, "SetValue", "v", (wrapped,)))

    def list_names(self) -> list:
        """Every name on the bus."""
        return [str(n) for n in self.bus.list_names()]

    def close(self) -> None:
        """Close the private connection."""
        self.bus.close()


def open_bus(library: str = "auto", address: str = "SYSTEM", timeout_s: float = 2.0):
    """Connect with ``library`` ('auto', 'dbus-python' or 'jeepney').

    Raises
    ------
    DriverUnavailable
        The bus cannot be reached.
    ImportError
        The requested library is not installed (auto: neither is).
    """
    if library in ("auto", "dbus-python"):
        try:
            import dbus  # noqa: F401 - probe only
        except ImportError:
            if library == "dbus-python":
                raise
        else:
            return DbusPythonBus(address, timeout_s)
    return JeepneyBus(address, timeout_s)
