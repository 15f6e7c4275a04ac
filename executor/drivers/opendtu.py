"""``opendtu``: Hoymiles micro-inverters fed from the battery (DC side) through an OpenDTU
gateway, for zero feed-in from a Shelly or P1 grid meter.

Web API facts from ``reference/devices.md`` §2.3 (tbnobody/OpenDTU): ``GET
/api/livedata/status`` (the inverter list; AC power and temperature only with
``?inv=<serial>``), ``GET /api/limit/status`` (``max_power``, ``limit_set_status``), ``POST
/api/limit/config`` and ``/api/power/config`` as one form field ``data=<JSON>`` with HTTP Basic
auth as ``admin``, the power switch as a JSON boolean. The limit is always sent **absolute and
non-persistent** (persistent limits write the inverter's EEPROM). OpenDTU v25.9.11 renumbered
``limit_type`` (persistent types 256/257 became 2/3); absolute non-persistent is 0 in both, and
the firmware (``/api/system/status`` ``git_hash``, e.g. ``v25.9.11``) is detected and logged so
the table in :data:`LIMIT_TYPES` is the one the gateway speaks.

Seen from the home's AC bus the inverters are the battery's discharge: ``battery_power_w`` =
their AC power, no charge path (the battery charges on its own, e.g. from DC PV), SoC from the
battery monitor (``soc:``, on a GX ``com.victronenergy.system /Dc/Battery/Soc``). The plan's
battery power (the executor's control law: the grid target minus the meter reading, every
tick) becomes the inverters' total limit through the zero-feed-in filter: a falling target is
followed at once, a rising one through a moving average of ``rise_samples`` ticks; changes
below ``deadband_w`` are not sent. The total is capped by the legal feed-in cap
(``feed_in_cap_w`` minus ``other_pv_w``), the battery's ``max_discharge_w`` and the inverters'
own maximum; it is filled inverter by inverter in an order that rotates every ``rotate_s``, an
inverter at ``max_temp_c`` is left out until it cooled by ``temp_hysteresis_c``, an unneeded
one is switched off. SoC rules: no feeding at or below the floor (the larger of the executor's
``min_soc_pct``, ``min_soc_pct`` here and the optional seasonal floor, which follows the highest
SoC reached lately minus ``seasonal_margin_pct``, rising at once and falling by
``seasonal_fall_pct_per_day``) until the SoC is ``resume_above_pct`` above it; optionally feed
up to the cap above ``feed_above_soc_pct`` unless the plan holds the energy.

Trouble (gateway unreachable, an inverter unreachable or too hot, a limit the inverter did not
take) raises an alarm: logged at WARNING when it starts, INFO when it clears, and listed in
:attr:`OpenDtuDriver.alarms`. Release (``release: restore``) gives every inverter back the
limit and power state it had when Helios first saw it; ``release: off`` switches them off.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt, section
from executor.drivers import register
from executor.drivers._dbus import open_bus
from executor.drivers._dbus_publish import DcServices
from executor.drivers._http import basic_auth, field, number, request_json
from executor.drivers._meters import Meter, MeterConfig
from executor.drivers.base import Measurement, Setpoint
from executor.errors import DriverError, DriverUnavailable

log = logging.getLogger("helios.executor.opendtu")

#: limit_type codes before and since OpenDTU v25.9.11 (ActivePowerControlCommand.h)
LIMIT_TYPES = {
    "old": {"absolute": 0, "relative": 1, "absolute_persistent": 256, "relative_persistent": 257},
    "new": {"absolute": 0, "relative": 1, "absolute_persistent": 2, "relative_persistent": 3},
}
NEW_SCHEME_SINCE = (25, 9, 11)


def firmware_scheme(git_hash: object) -> str | None:
    """``new`` (≥ v25.9.11), ``old``, or None when ``git_hash`` names no release."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", str(git_hash or ""))
    if match is None:
        return None
    return "new" if tuple(int(g) for g in match.groups()) >= NEW_SCHEME_SINCE else "old"


@dataclass(frozen=True)
class SocConfig:
    """``soc: {type: victron_dbus | http, ...}``: where the battery's SoC is read."""

    type: str = opt("victron_dbus", "victron_dbus (on the GX: com.victronenergy.system "
                    "/Dc/Battery/Soc) or http (a JSON URL)", choices=("victron_dbus", "http"))
    url: str | None = opt(None, "http: the URL answering JSON")
    path: str = opt("soc", "http: dotted path of the SoC in the answer, e.g. Dc.Battery.Soc")
    library: str = opt("auto", "victron_dbus: auto, dbus-python or jeepney",
                       choices=("auto", "dbus-python", "jeepney"))
    timeout_s: float = opt(2.0, "Read timeout", "s", gt=0, le=30)


@dataclass
class _Inverter:
    serial: str
    reachable: bool = False
    power_w: float = 0.0
    temp_c: float | None = None
    max_w: float | None = None
    hot: bool = False
    start_limit_w: float | None = None
    start_producing: bool | None = None
    limit_w: float | None = None  # last limit Helios sent
    limit_at: float = -1e18
    on: bool | None = None  # last power state Helios sent
    detail: dict | None = None  # the last ``?inv=`` entry (for publish_dbus)


@register("opendtu")
class OpenDtuDriver:
    """Hoymiles inverters on the battery through OpenDTU (see the module docstring)."""

    @dataclass(frozen=True)
    class Config:
        """Options of ``driver: {type: opendtu, url: ..., meter: {...}}``."""

        url: str = opt(help="OpenDTU base URL, e.g. http://192.168.1.60")
        meter: MeterConfig = opt(help="The grid meter: {type: shelly | homewizard, url: ...}")
        username: str = opt("admin", "OpenDTU user (always admin)")
        password: str | None = opt(None, "OpenDTU admin password (!secret)", secret=True)
        soc: SocConfig = section(SocConfig)
        inverters: list[str] = opt([], "Serials to drive (empty: every inverter OpenDTU has)")
        feed_in_cap_w: float = opt(800.0, "Legal cap on the inverters' total output", "W",
                                   ge=0)
        other_pv_w: float = opt(0.0, "Other plug-in PV counted against the cap", "W", ge=0)
        max_discharge_w: float | None = opt(None, "The battery's discharge limit", "W", ge=0)
        inverter_max_w: float = opt(800.0, "An inverter's maximum when OpenDTU reports none",
                                    "W", gt=0, le=2250)
        min_limit_w: float = opt(30.0, "Smallest limit sent (less: the inverter is switched "
                                 "off)", "W", ge=0)
        rise_samples: int = opt(2, "A rising target is averaged over this many ticks", ge=1,
                                le=60)
        deadband_w: float = opt(20.0, "Limit changes below this are not sent", "W", ge=0)
        refresh_s: float = opt(300.0, "Resend an unchanged limit this often (a non-persistent "
                               "limit is lost when the inverter restarts)", "s", gt=0)
        max_temp_c: float = opt(70.0, "Leave an inverter out at this temperature", "°C")
        temp_hysteresis_c: float = opt(10.0, "... until it cooled by this much", "°C", ge=0)
        rotate_s: float = opt(86400.0, "Rotate the inverters' fill order this often", "s",
                              gt=0)
        min_soc_pct: float | None = opt(None, "Stop feeding at or below this SoC (default the "
                                        "executor's min_soc_pct)", "%", ge=0, le=100)
        resume_above_pct: float = opt(2.0, "Resume feeding this far above the floor", "%",
                                      ge=0, le=50)
        feed_above_soc_pct: float | None = opt(None, "Feed up to the cap above this SoC "
                                               "(unless the plan holds)", "%", ge=0, le=100)
        seasonal_floor: bool = opt(False, "Raise the floor to the highest SoC reached lately "
                                   "minus seasonal_margin_pct")
        seasonal_margin_pct: float = opt(40.0, "Seasonal floor: distance below the peak", "%",
                                         ge=0, le=100)
        seasonal_max_pct: float = opt(50.0, "Seasonal floor: never above", "%", ge=0, le=100)
        seasonal_fall_pct_per_day: float = opt(1.0, "Seasonal floor: the peak falls by this",
                                               "%/day", ge=0)
        firmware: str = opt("auto", "limit_type scheme: auto (from /api/system/status), new "
                            "(>= v25.9.11) or old", choices=("auto", "new", "old"))
        release: str = opt("restore", "restore: the limit and power state found at start; "
                           "off: switch the inverters off", choices=("restore", "off"))
        timeout_s: float = opt(3.0, "HTTP timeout", "s", gt=0, le=30)
        publish_dbus: bool = opt(False, "On a GX: publish every inverter as a D-Bus service "
                                 "(DVCC compensation, VRM) with its alarms (needs jeepney)")
        dbus_service: str = opt("dcsystem", "publish_dbus: dcsystem (DVCC compensates; needs "
                                "'Has DC system') or dcload (VRM shows it)",
                                choices=("dcsystem", "dcload"))
        dbus_bus: str = opt("system", "publish_dbus: system, session or a D-Bus address")
        dbus_device_instance: int = opt(280, "publish_dbus: device instance of the first "
                                        "inverter (the next ones count up)", ge=0, le=65535)

    def __init__(self, config: OpenDtuDriver.Config, *, clock: Callable[[], datetime],
                 soc_reader: Callable[[], float | None] | None = None,
                 meter: Meter | None = None):
        self.config = config
        self.clock = clock
        self.base = config.url.rstrip("/")
        if "://" not in self.base:
            self.base = "http://" + self.base
        self.headers = {"X-Requested-With": "XMLHttpRequest"}
        if config.password:
            self.headers["Authorization"] = basic_auth(config.username, config.password)
        self.meter = meter or Meter(config.meter)
        self.soc_reader = soc_reader or self._make_soc_reader(config.soc)
        self.scheme: str | None = None if config.firmware == "auto" else config.firmware
        self.inverters: dict[str, _Inverter] = {}
        self.alarms: dict[str, str] = {}
        self.last: Measurement | None = None
        self._history: list[float] = []
        self._sent_total_w = 0.0
        self._stopped_low = False
        self._peak_soc: tuple | None = None  # (soc, when)
        self._released = False
        self._order: tuple | None = None  # (usable inverters, rotation index) last applied
        self._executor_min_pct: float | None = None  # the executor's min SoC (last setpoint)
        self._bus = None
        self._published: DcServices | None = None

    # --- alarms -------------------------------------------------------------------------------

    def _alarm(self, key: str, text: str) -> None:
        if self.alarms.get(key) != text:
            log.warning("alarm %s: %s", key, text)
        self.alarms[key] = text

    def _clear(self, key: str) -> None:
        if self.alarms.pop(key, None) is not None:
            log.info("alarm %s cleared", key)

    # --- HTTP ---------------------------------------------------------------------------------

    def _get(self, path: str):
        return request_json(self.base + path, headers=self.headers,
                            timeout_s=self.config.timeout_s)

    def _post(self, path: str, data: dict) -> None:
        answer = request_json(self.base + path, form={"data": json.dumps(data)},
                              headers=self.headers, timeout_s=self.config.timeout_s)
        if not isinstance(answer, dict) or answer.get("type") != "success":
            message = answer.get("message") if isinstance(answer, dict) else answer
            raise DriverError(f"POST {path} {data}: refused ({message!r})")

    def _make_soc_reader(self, cfg: SocConfig) -> Callable[[], float | None]:
        if cfg.type == "http":
            def read_http() -> float:
                if not cfg.url:
                    raise DriverError("executor.driver.soc.url is not set")
                payload = request_json(cfg.url, timeout_s=cfg.timeout_s)
                return number(field(payload, *cfg.path.split(".")), f"SoC {cfg.path}")
            return read_http

        def read_dbus() -> float | None:
            if self._bus is None:
                self._bus = open_bus(cfg.library, timeout_s=cfg.timeout_s)
            value = self._bus.get_value("com.victronenergy.system", "/Dc/Battery/Soc")
            return None if value is None else float(value)
        return read_dbus

    # --- reading ------------------------------------------------------------------------------

    def _detect_firmware(self) -> None:
        try:
            git_hash = self._get("/api/system/status").get("git_hash")
        except (DriverError, AttributeError) as exc:
            log.warning("OpenDTU firmware not detected (%s): assuming >= v25.9.11", exc)
            self.scheme = "new"
            return
        self.scheme = firmware_scheme(git_hash) or "new"
        log.info("OpenDTU firmware %s: limit_type scheme %s (absolute non-persistent = %d)",
                 git_hash, self.scheme, LIMIT_TYPES[self.scheme]["absolute"])

    def read(self) -> Measurement:
        """Inverters, SoC and meter.

        Raises
        ------
        DriverUnavailable
            The gateway, the SoC or the meter gave no reading.
        """
        try:
            if self.scheme is None:
                self._detect_firmware()
            listing = self._get("/api/livedata/status")
            entries = field(listing, "inverters")
            if not isinstance(entries, list):
                raise DriverError("inverters: not a list")
            limits = self._get("/api/limit/status")
        except DriverError as exc:
            self._alarm("communication", f"OpenDTU {self.base}: {exc}")
            self._publish(gateway_ok=False)
            raise DriverUnavailable(f"OpenDTU: {exc}") from None
        self._clear("communication")
        wanted = set(self.config.inverters)
        for entry in entries:
            serial = str(entry.get("serial")) if isinstance(entry, dict) else None
            if serial is None or (wanted and serial not in wanted):
                continue
            self._read_inverter(entry, limits.get(serial) if isinstance(limits, dict) else None)
        for serial in wanted - {str(e.get("serial")) for e in entries if isinstance(e, dict)}:
            self._alarm(f"inverter {serial}", "not known to OpenDTU")
        self._publish(gateway_ok=True)
        soc = self._read_soc()
        grid_w = self.meter.read()
        if grid_w is None:
            raise DriverUnavailable(f"meter {self.meter.name}: {self.meter.last_error}")
        usable = [i for i in self.inverters.values() if i.reachable and not i.hot]
        max_out = min(self._cap_w(), sum(i.max_w or self.config.inverter_max_w for i in usable))
        self.last = Measurement(
            at=self.clock(), soc_pct=soc,
            battery_power_w=sum(i.power_w for i in self.inverters.values() if i.reachable),
            grid_power_w=grid_w, pv_power_w=0.0, max_charge_w=0.0,
            max_discharge_w=max_out if self._feeding_allowed(soc) else 0.0)
        return self.last

    def _read_inverter(self, entry: dict, limit: object) -> None:
        serial = str(entry["serial"])
        inv = self.inverters.setdefault(serial, _Inverter(serial))
        try:
            detail = field(self._get(f"/api/livedata/status?inv={serial}"), "inverters", 0)
            reachable = detail.get("reachable", entry.get("reachable")) is True
            power_w = number(field(detail, "AC", "0", "Power", "v"), "AC Power") \
                if reachable else 0.0
            temp = detail.get("INV", {}).get("0", {}).get("Temperature", {}).get("v") \
                if isinstance(detail.get("INV"), dict) else None
        except (DriverError, AttributeError) as exc:
            self._alarm(f"inverter {serial}", f"bad live data: {exc}")
            inv.reachable = False
            return
        inv.reachable, inv.power_w, inv.detail = reachable, power_w, detail
        inv.temp_c = float(temp) if isinstance(temp, (int, float)) else None
        if isinstance(limit, dict):
            if isinstance(limit.get("max_power"), (int, float)) and limit["max_power"] > 0:
                inv.max_w = float(limit["max_power"])
            if limit.get("limit_set_status") == "Failure":
                self._alarm(f"limit {serial}", "the inverter did not take the last limit")
            else:
                self._clear(f"limit {serial}")
        if inv.start_producing is None:
            inv.start_producing = entry.get("producing") is True
            start = entry.get("limit_absolute")
            inv.start_limit_w = float(start) if isinstance(start, (int, float)) else None
        if not reachable:
            self._alarm(f"inverter {serial}", "not reachable")
        else:
            self._clear(f"inverter {serial}")
        self._check_temperature(inv)

    def _check_temperature(self, inv: _Inverter) -> None:
        c = self.config
        if inv.temp_c is None:
            return
        if not inv.hot and inv.temp_c >= c.max_temp_c:
            inv.hot = True
            self._alarm(f"temperature {inv.serial}", f"{inv.temp_c:.0f} °C: left out until "
                        f"{c.max_temp_c - c.temp_hysteresis_c:.0f} °C")
        elif inv.hot and inv.temp_c <= c.max_temp_c - c.temp_hysteresis_c:
            inv.hot = False
            self._clear(f"temperature {inv.serial}")

    def _read_soc(self) -> float:
        try:
            soc = self.soc_reader()
        except (DriverError, ImportError) as exc:
            self._alarm("soc", f"no SoC reading: {exc}")
            raise DriverUnavailable(f"battery SoC: {exc}") from None
        if soc is None or not 0.0 <= soc <= 100.0:
            self._alarm("soc", f"no SoC reading: {soc!r}")
            raise DriverUnavailable(f"battery SoC unknown ({soc!r})")
        self._clear("soc")
        self._track_peak(soc)
        return soc

    # --- rules --------------------------------------------------------------------------------

    def _cap_w(self) -> float:
        c = self.config
        cap = max(c.feed_in_cap_w - c.other_pv_w, 0.0)
        return cap if c.max_discharge_w is None else min(cap, c.max_discharge_w)

    def _track_peak(self, soc: float) -> None:
        now = self.clock()
        if self._peak_soc is None:
            self._peak_soc = (soc, now)
            return
        peak, since = self._peak_soc
        days = max((now - since).total_seconds(), 0.0) / 86400.0
        self._peak_soc = (max(peak - self.config.seasonal_fall_pct_per_day * days, soc), now)

    def floor_pct(self, executor_min_pct: float | None = None) -> float:
        """The SoC at or below which nothing is fed in now. [%]"""
        c = self.config
        if executor_min_pct is None:
            executor_min_pct = self._executor_min_pct
        floor = c.min_soc_pct if c.min_soc_pct is not None else (executor_min_pct or 0.0)
        if c.seasonal_floor and self._peak_soc is not None:
            seasonal = min(self._peak_soc[0] - c.seasonal_margin_pct, c.seasonal_max_pct)
            floor = max(floor, seasonal)
        return floor

    def _feeding_allowed(self, soc: float, executor_min_pct: float | None = None) -> bool:
        floor = self.floor_pct(executor_min_pct)
        if self._stopped_low:
            if soc >= floor + self.config.resume_above_pct:
                self._stopped_low = False
                log.info("SoC %.1f%% above the floor %.1f%%: feeding again", soc, floor)
        elif soc <= floor:
            self._stopped_low = True
            log.info("SoC %.1f%% at the floor %.1f%%: feeding stopped", soc, floor)
        return not self._stopped_low

    def filtered_w(self, raw_w: float) -> float:
        """The zero-feed-in filter: down at once, up through a moving average. [W]"""
        if raw_w <= self._sent_total_w or not self._history:
            self._history = [raw_w]
            return raw_w
        self._history = (self._history + [raw_w])[-self.config.rise_samples:]
        return sum(self._history) / len(self._history)

    def distribute(self, total_w: float) -> dict:
        """Serial → limit: inverters filled one after another in a rotating order. [W]"""
        usable = sorted(s for s, i in self.inverters.items() if i.reachable and not i.hot)
        out = {s: 0.0 for s in self.inverters}
        if not usable:
            return out
        k = int(self.clock().timestamp() // self.config.rotate_s) % len(usable)
        remaining = total_w
        for serial in usable[k:] + usable[:k]:
            inv = self.inverters[serial]
            give = min(remaining, inv.max_w or self.config.inverter_max_w)
            if give < self.config.min_limit_w:
                break
            out[serial] = give
            remaining -= give
        return out

    # --- writing ------------------------------------------------------------------------------

    def apply(self, setpoint: Setpoint) -> None:
        """Turn the setpoint's battery power into inverter limits (see the module docstring).

        Raises
        ------
        DriverUnavailable
            No reading yet, or the gateway refused every command.
        """
        m = self.last
        if m is None or m.soc_pct is None:
            raise DriverUnavailable("no OpenDTU reading yet")
        self._released = False
        self._executor_min_pct = setpoint.min_soc_pct
        raw_w = max(setpoint.battery_power_w, 0.0)
        c = self.config
        if (c.feed_above_soc_pct is not None and m.soc_pct >= c.feed_above_soc_pct
                and setpoint.intent not in ("hold", "charge_grid")):
            raw_w = self._cap_w()
        if not self._feeding_allowed(m.soc_pct, setpoint.min_soc_pct):
            raw_w = 0.0
        total_w = min(self.filtered_w(raw_w), self._cap_w())
        usable = tuple(sorted(s for s, i in self.inverters.items() if i.reachable and not i.hot))
        order = (usable, int(self.clock().timestamp() // c.rotate_s))
        if (abs(total_w - self._sent_total_w) < c.deadband_w and total_w > 0
                and order == self._order and not self._refresh_due()):
            return
        self._order = order
        shares = self.distribute(total_w)
        errors = []
        for serial, want_w in shares.items():
            try:
                self._command(self.inverters[serial], want_w)
            except DriverError as exc:
                errors.append(str(exc))
                self._alarm(f"command {serial}", str(exc))
            else:
                self._clear(f"command {serial}")
        self._sent_total_w = sum(shares.values())
        if errors and len(errors) == len(shares):
            raise DriverUnavailable(f"OpenDTU refused every command ({errors[0]})")

    def _refresh_due(self) -> bool:
        now = self.clock().timestamp()
        return any(i.limit_w and now - i.limit_at >= self.config.refresh_s
                   for i in self.inverters.values())

    def _command(self, inv: _Inverter, want_w: float) -> None:
        now = self.clock().timestamp()
        if want_w <= 0:
            if inv.on is not False and inv.reachable:
                self._post("/api/power/config", {"serial": inv.serial, "power": False})
                inv.on, inv.limit_w = False, None
            return
        if (inv.limit_w is None or abs(want_w - inv.limit_w) >= self.config.deadband_w
                or now - inv.limit_at >= self.config.refresh_s):
            self._post("/api/limit/config", {
                "serial": inv.serial, "limit_type": LIMIT_TYPES[self.scheme or "new"]["absolute"],
                "limit_value": round(want_w, 1)})
            inv.limit_w, inv.limit_at = want_w, now
        if inv.on is not True:
            self._post("/api/power/config", {"serial": inv.serial, "power": True})
            inv.on = True

    def release(self) -> None:
        """Every inverter back to what it did before Helios (or off, ``release: off``).

        Raises
        ------
        DriverUnavailable
            The gateway took none of the commands.
        """
        if self._released or not self.inverters:
            self._released = bool(self.inverters)
            return
        errors = []
        for inv in self.inverters.values():
            try:
                if self.config.release == "off" or inv.start_producing is False:
                    self._post("/api/power/config", {"serial": inv.serial, "power": False})
                    inv.on = False
                else:
                    if inv.start_limit_w is not None and inv.start_limit_w > 0:
                        data = {"limit_type": LIMIT_TYPES[self.scheme or "new"]["absolute"],
                                "limit_value": inv.start_limit_w}
                    else:
                        data = {"limit_type": LIMIT_TYPES[self.scheme or "new"]["relative"],
                                "limit_value": 100}
                    self._post("/api/limit/config", {"serial": inv.serial, **data})
                    self._post("/api/power/config", {"serial": inv.serial, "power": True})
                    inv.on = True
                inv.limit_w = None
            except DriverError as exc:
                errors.append(f"{inv.serial}: {exc}")
        self._sent_total_w = 0.0
        self._history = []
        if errors:
            self._alarm("release", "; ".join(errors))
            if len(errors) == len(self.inverters):
                raise DriverUnavailable(f"OpenDTU release failed ({errors[0]})")
        else:
            self._clear("release")
            self._released = True

    # --- D-Bus (publish_dbus) -------------------------------------------------------------------

    def _publish(self, gateway_ok: bool) -> None:
        """Show the inverters and alarms on D-Bus (``_dbus_publish``); trouble is an alarm."""
        c = self.config
        if not c.publish_dbus:
            return
        if self._published is None:
            address = {"system": "SYSTEM", "session": "SESSION"}.get(c.dbus_bus, c.dbus_bus)
            self._published = DcServices(c.dbus_service, address, c.dbus_device_instance,
                                         f"OpenDTU {self.base}", c.timeout_s)
        readings = {s: (gateway_ok and i.reachable, "Hoymiles (OpenDTU)",
                        i.detail if gateway_ok and i.reachable else None)
                    for s, i in self.inverters.items()}
        try:
            self._published.publish(readings, self.alarms)
        except (DriverError, ImportError) as exc:
            self._alarm("dbus", f"publishing on D-Bus {c.dbus_bus}: {exc}")
        else:
            self._clear("dbus")

    def close(self) -> None:
        """Close the D-Bus connection, if one was opened, and remove the published services."""
        if self._published is not None:
            self._published.close()
            self._published = None
        if self._bus is not None:
            self._bus.close()
            self._bus = None
