"""``helios setup``: write config.yaml + secrets.yaml for a Victron + Tibber / Nord Pool home.

Every value comes from a flag, else (when it can) from the GX, else from a click prompt:

* the GX over Modbus-TCP (``--gx-host``; the executor's own ``victron_modbus`` driver, read
  only): one reading proves the unit id answers; ``/Settings/DynamicEss/BatteryCapacity``
  (register 5420, ×10 kWh) is the default ``--capacity-kwh`` when set; the GPS position
  (registers 2800-2803 of ``--gps-unit-id``: int32 latitude, longitude ×1e7, high word
  first) is the default ``--lat``/``--lon`` when the GX has a GPS with a fix;
* over D-Bus with ``--driver victron_dbus`` (Helios's executor on the GX itself: run setup
  there) or ``--dbus``: the SoC (``com.victronenergy.system /Dc/Battery/Soc``), the Dynamic
  ESS capacity (``com.victronenergy.settings /Settings/DynamicEss/BatteryCapacity``) and the
  position of the first ``com.victronenergy.gps.*`` service with ``/Fix`` 1
  (``/Position/Latitude``, ``/Position/Longitude``); ``--dbus-address`` picks the bus
  (default the system bus).

Nothing is overwritten without ``--force``. ``secrets.yaml`` (the Tibber token) is created
with mode 0600. The result is loaded with the same loader as ``helios check-config`` before
the command says OK; if it does not validate, the files just written are removed (exit 2).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import yaml

from executor import drivers
from executor import errors as ex_errors
from executor.drivers import _dbus
from executor.drivers.victron_modbus import words_int32
from planner import config as config_mod
from planner.cli.common import fail
from planner.core.errors import ConfigError, ConfigProblem, HeliosError

REG_DESS_CAPACITY = 5420   # /Settings/DynamicEss/BatteryCapacity ×10 kWh (unit 100)
REG_GPS_POSITION = 2800    # com.victronenergy.gps: latitude, longitude int32 ×1e7

#: a Nord Pool area's time zone (for what people read; Helios plans in UTC)
AREA_TIMEZONES = {
    "SE": "Europe/Stockholm", "NO": "Europe/Oslo", "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki", "EE": "Europe/Tallinn", "LV": "Europe/Riga", "LT": "Europe/Vilnius",
    "GER": "Europe/Berlin", "NL": "Europe/Amsterdam", "BE": "Europe/Brussels",
    "FR": "Europe/Paris", "AT": "Europe/Vienna", "PL": "Europe/Warsaw",
}

SECRET_MARK = "__helios_secret__:"


def read_gx(host: str, port: int, unit_id: int, battery_unit_id: int | None,
            gps_unit_id: int) -> dict[str, Any]:
    """What the GX says: ``soc_pct``, ``capacity_kwh`` (or None), ``lat``/``lon`` (or None).

    Raises
    ------
    executor.errors.DriverError
        The GX or its unit id does not answer.
    """
    options: dict[str, Any] = {"host": host, "port": port, "unit_id": unit_id,
                               "timeout_s": 3.0}
    if battery_unit_id:
        options["battery_unit_id"] = battery_unit_id
    driver = drivers.create("victron_modbus", options, clock=lambda: datetime.now(timezone.utc))
    try:
        found: dict[str, Any] = {"soc_pct": driver.read().soc_pct, "capacity_kwh": None,
                                 "lat": None, "lon": None}
        # the driver's own register reads (same client, errors and unit handling)
        try:
            capacity_kwh = driver._read(REG_DESS_CAPACITY, 1)[0] / 10.0
            found["capacity_kwh"] = capacity_kwh if capacity_kwh > 0 else None
        except ex_errors.DriverUnavailable:
            raise
        except ex_errors.DriverError:
            pass  # no Dynamic ESS registers (Venus OS < 3.50)
        try:
            words = driver._read(REG_GPS_POSITION, 4, gps_unit_id)
            where = _position(words_int32(words[0:2]) / 1e7, words_int32(words[2:4]) / 1e7)
            if where is not None:
                found["lat"], found["lon"] = where
        except ex_errors.DriverUnavailable:
            raise
        except ex_errors.DriverError:
            pass  # no GPS on this GX (or another unit id)
        return found
    finally:
        driver.close()


DBUS_SYSTEM = "com.victronenergy.system"
DBUS_SETTINGS = "com.victronenergy.settings"
DBUS_GPS = "com.victronenergy.gps"


def _position(lat: Any, lon: Any) -> tuple[float, float] | None:
    """A plausible GPS position, else None (0/0 is a GPS without a fix on some firmware)."""
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if (lat, lon) == (0.0, 0.0) or not (abs(lat) <= 90 and abs(lon) <= 180):
        return None
    return lat, lon


def read_gx_dbus(address: str = "SYSTEM", library: str = "auto") -> dict[str, Any]:
    """What the GX says over D-Bus: ``soc_pct`` (or None), ``capacity_kwh`` (or None),
    ``lat``/``lon`` (or None) — the first GPS service with a fix, in name order.

    Raises
    ------
    executor.errors.DriverError
        The bus cannot be reached or has no ``com.victronenergy.system`` (not a GX).
    ImportError
        Neither dbus-python nor jeepney is installed.
    """
    bus = _dbus.open_bus(library, address, timeout_s=3.0)
    try:
        found: dict[str, Any] = {"soc_pct": bus.get_value(DBUS_SYSTEM, "/Dc/Battery/Soc"),
                                 "capacity_kwh": None, "lat": None, "lon": None}
        try:
            capacity_kwh = bus.get_value(DBUS_SETTINGS, "/Settings/DynamicEss/BatteryCapacity")
            if isinstance(capacity_kwh, (int, float)) and capacity_kwh > 0:
                found["capacity_kwh"] = float(capacity_kwh)
        except ex_errors.DriverUnavailable:
            raise
        except ex_errors.DriverError:
            pass  # no Dynamic ESS settings (Venus OS < 3.50)
        gps = sorted(n for n in bus.list_names()
                     if n == DBUS_GPS or n.startswith(DBUS_GPS + "."))
        for name in gps:
            try:
                if bus.get_value(name, "/Fix") != 1:
                    continue
                where = _position(bus.get_value(name, "/Position/Latitude"),
                                  bus.get_value(name, "/Position/Longitude"))
            except ex_errors.DriverUnavailable:
                raise
            except ex_errors.DriverError:
                continue  # that service went away meanwhile
            if where is not None:
                found["lat"], found["lon"] = where
                found["gps_service"] = name
                break
        return found
    finally:
        bus.close()


def build_config(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The config mapping (secrets as marks) and the secrets mapping from the answers."""
    state = values.get("state_dir") or ""  # "": beside config.yaml
    secrets: dict[str, str] = {}
    if values["prices"] == "tibber":
        secrets["tibber_token"] = values["tibber_token"]
        prices: dict[str, Any] = {"type": "tibber", "token": SECRET_MARK + "tibber_token"}
        if values.get("home_id"):
            prices["home_id"] = values["home_id"]
    else:
        prices = {"type": "nordpool", "area": values["area"]}
    pv: dict[str, Any] = {"type": "none"}
    if values["pv_kwp"] > 0:
        pv = {"type": "openmeteo", "arrays": {"main": {
            "kwp": values["pv_kwp"], "tilt_deg": values["pv_tilt_deg"],
            "azimuth_deg": values["pv_azimuth_deg"]}}}
    if values["driver"] == "victron_modbus":
        driver: dict[str, Any] = {"type": "victron_modbus", "host": values["gx_host"],
                                  "port": values["gx_port"], "unit_id": values["unit_id"]}
        if values["battery_unit_id"]:
            driver["battery_unit_id"] = values["battery_unit_id"]
    else:
        driver = {"type": "victron_dbus"}
    driver["mode"] = values["mode"]
    cfg = {
        "site": {"timezone": values["timezone"], "latitude": values["lat"],
                 "longitude": values["lon"]},
        "battery": {"capacity_kwh": values["capacity_kwh"],
                    "max_charge_kw": values["max_charge_kw"],
                    "max_discharge_kw": values["max_discharge_kw"],
                    "min_soc_pct": values["min_soc_pct"]},
        "grid": {"max_import_kw": values["max_import_kw"],
                 "max_export_kw": values["max_export_kw"]},
        "tariff": {"buy": values["buy"], "sell": values["sell"]},
        "prices": prices,
        "pv": pv,
        "load": {"type": "history", "history_from": "measurements"},
        "state": {"type": "gx"},
        "output": {"schedule_path": os.path.join(state, "schedule.json")},
        "storage": {"url": "sqlite:///" + os.path.join(state, "helios.db")},
        "report": {"path": os.path.join(state, "report.html")},
        "executor": {"driver": driver, "plan": {"source": "file"}},
    }
    return cfg, secrets


HEADER = """\
# Written by `helios setup` for a Victron + {prices} home. Check it with `helios check-config`
# and `helios doctor`; every key is explained by `helios check-config --explain`.
# Going live step by step: docs/going-live.md (first `helios-executor --dry-run`).
"""


def render_config(cfg: dict[str, Any], prices: str) -> str:
    """config.yaml's text: ``!secret name`` where a secret goes."""
    text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
    text = text.replace(f"'{SECRET_MARK}", "!secret ").replace(f"{SECRET_MARK}", "!secret ")
    text = "\n".join(line[:-1] if line.endswith("'") and "!secret " in line else line
                     for line in text.splitlines())
    return HEADER.format(prices=prices.capitalize()) + text + "\n"


def write_secret_file(path: Path, secrets: dict[str, str]) -> None:
    """secrets.yaml, mode 0600 from its creation (never world-readable, not even briefly)."""
    body = ("# Secrets for config.yaml (`key: !secret name`); keep this file 0600.\n"
            + (yaml.safe_dump(secrets, sort_keys=False) if secrets else "{}\n"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    os.chmod(path, 0o600)


def _ask(value: Any, text: str, **kwargs: Any) -> Any:
    """``value``, else the default under ``--yes``, else a prompt."""
    if value is not None:
        return value
    if "default" in kwargs and click.get_current_context().params.get("yes"):
        return kwargs["default"]
    return click.prompt(text, **kwargs)


@click.command("setup")
@click.option("--dir", "target_dir", default=".", show_default=True,
              type=click.Path(file_okay=False), help="Where config.yaml + secrets.yaml go.")
@click.option("--driver", type=click.Choice(["victron_modbus", "victron_dbus"]),
              default="victron_modbus", show_default=True,
              help="victron_modbus: Helios's executor on another host; victron_dbus: on the GX.")
@click.option("--gx-host", help="The GX's address (victron_modbus).")
@click.option("--gx-port", type=int, default=502, show_default=True)
@click.option("--unit-id", type=int, default=100, show_default=True,
              help="Modbus unit id of system/settings/hub4.")
@click.option("--battery-unit-id", type=int, default=225, show_default=True,
              help="Modbus unit id of the BMS (SoC at 0.1 %, live CCL/DCL); 0 = none.")
@click.option("--gps-unit-id", type=int, default=100, show_default=True,
              help="Modbus unit id of the GX's GPS (see the GX's Modbus TCP service list).")
@click.option("--dbus", "use_dbus", is_flag=True,
              help="Read the GX over D-Bus (setup running on the GX itself); implied by "
                   "--driver victron_dbus.")
@click.option("--dbus-address", default="SYSTEM", show_default=True,
              help="The D-Bus to read with --dbus: SYSTEM (the GX's) or a bus address.")
@click.option("--no-gx-read", is_flag=True, help="Do not read the GX (capacity, position).")
@click.option("--mode", type=click.Choice(["dess", "setpoint"]), default="dess",
              show_default=True, help="How the executor drives the ESS (docs/executor.md).")
@click.option("--prices", type=click.Choice(["tibber", "nordpool"]))
@click.option("--tibber-token", help="Tibber API token (prompted, hidden, when missing).")
@click.option("--home-id", help="Tibber home id (default: the account's first home).")
@click.option("--area", help="Nord Pool bidding zone, e.g. SE3, NO1, DK1, FI, GER, NL.")
@click.option("--lat", type=click.FloatRange(-90, 90), help="Latitude [deg], north positive.")
@click.option("--lon", type=click.FloatRange(-180, 180), help="Longitude [deg], east positive.")
@click.option("--timezone", "tz_name", help="IANA time zone (default: from the area).")
@click.option("--capacity-kwh", type=click.FloatRange(min=0, min_open=True),
              help="Usable battery capacity [kWh] (default: the GX's DESS battery capacity).")
@click.option("--max-charge-kw", type=click.FloatRange(min=0, min_open=True))
@click.option("--max-discharge-kw", type=click.FloatRange(min=0, min_open=True))
@click.option("--min-soc-pct", type=click.FloatRange(0, 100), default=10, show_default=True)
@click.option("--max-import-kw", type=click.FloatRange(min=0), default=17, show_default=True)
@click.option("--max-export-kw", type=click.FloatRange(min=0), default=10, show_default=True)
@click.option("--pv-kwp", type=click.FloatRange(min=0),
              help="PV peak power [kWp] for the Open-Meteo forecast; 0 = no PV forecast.")
@click.option("--pv-tilt-deg", type=float, default=30, show_default=True)
@click.option("--pv-azimuth-deg", type=float, default=180, show_default=True,
              help="180 = south.")
@click.option("--buy", help="Retail buy price from spot, e.g. '(price + 0.15) * 1.19'.")
@click.option("--sell", help="Feed-in price from spot, e.g. 'price' or '0.08'.")
@click.option("--state-dir", type=click.Path(file_okay=False),
              help="Absolute directory for schedule.json, helios.db, report.html (default: "
                   "beside config.yaml; /var/lib/helios under bin/install-systemd).")
@click.option("--yes", "-y", is_flag=True,
              help="Take the default of every value not given instead of asking.")
@click.option("--force", is_flag=True, help="Overwrite existing config.yaml / secrets.yaml.")
def setup(target_dir: str, driver: str, gx_host: str | None, gx_port: int, unit_id: int,
          battery_unit_id: int, gps_unit_id: int, use_dbus: bool, dbus_address: str,
          no_gx_read: bool, mode: str,
          prices: str | None, tibber_token: str | None, home_id: str | None, area: str | None,
          lat: float | None, lon: float | None, tz_name: str | None,
          capacity_kwh: float | None, max_charge_kw: float | None,
          max_discharge_kw: float | None, min_soc_pct: float, max_import_kw: float,
          max_export_kw: float, pv_kwp: float | None, pv_tilt_deg: float,
          pv_azimuth_deg: float, buy: str | None, sell: str | None, state_dir: str | None,
          yes: bool, force: bool) -> None:
    """Write config.yaml + secrets.yaml for a Victron GX + Tibber or Nord Pool home.

    Missing values are read from the GX where it can (battery capacity, GPS position) or
    asked for. Nothing is overwritten without --force; secrets.yaml is mode 0600; the result
    is validated like `helios check-config`. Then: `helios doctor`, docs/going-live.md."""
    folder = Path(target_dir)
    config_path, secrets_path = folder / "config.yaml", folder / "secrets.yaml"
    existing = [p for p in (config_path, secrets_path) if p.exists()]
    if existing and not force:
        fail(ConfigError(ConfigProblem(
            "--force", "no existing file (helios setup never overwrites without --force)",
            ", ".join(str(p) for p in existing) + " already there")))
    gx: dict[str, Any] = {}
    if driver == "victron_modbus":
        gx_host = _ask(gx_host, "GX address (Settings > Ethernet/Wi-Fi on the GX)")
    if (use_dbus or driver == "victron_dbus") and not no_gx_read:
        try:
            gx = read_gx_dbus(dbus_address)
        except ImportError:
            fail(ConfigError(ConfigProblem(
                "--dbus", "dbus-python (on the GX) or jeepney (pip install "
                "'helios-ems[dbus]'), or --no-gx-read", "neither installed")))
        except ex_errors.ExecutorError as exc:
            fail(ConfigError(ConfigProblem(
                "--dbus-address", "a D-Bus with Victron's services (run setup on the GX, "
                "or --no-gx-read)", str(exc))))
        soc = gx["soc_pct"]
        click.echo(f"GX on D-Bus {dbus_address} answers: SoC "
                   + ("unknown" if soc is None else f"{soc:.1f} %"))
    elif driver == "victron_modbus":
        if not no_gx_read:
            try:
                gx = read_gx(gx_host, gx_port, unit_id, battery_unit_id or None, gps_unit_id)
            except ex_errors.ExecutorError as exc:
                fail(ConfigError(ConfigProblem(
                    "--gx-host", "a GX answering Modbus-TCP (Settings > Services > Modbus TCP "
                    f"on) with unit id {unit_id}, or --no-gx-read", str(exc))))
            soc = gx["soc_pct"]
            click.echo(f"GX {gx_host}:{gx_port} unit {unit_id} answers: SoC "
                       + ("unknown" if soc is None else f"{soc:.1f} %"))
    if lat is None and lon is None and gx.get("lat") is not None:
        lat, lon = gx["lat"], gx["lon"]
        click.echo(f"position from the GX's GPS: {lat:.4f}, {lon:.4f}"
                   + (f" ({gx['gps_service']})" if gx.get("gps_service") else ""))
    lat = _ask(lat, "Latitude [deg, north positive]", type=click.FloatRange(-90, 90))
    lon = _ask(lon, "Longitude [deg, east positive]", type=click.FloatRange(-180, 180))
    prices = _ask(prices, "Price source", type=click.Choice(["tibber", "nordpool"]))
    if prices == "tibber":
        tibber_token = _ask(tibber_token, "Tibber API token (developer.tibber.com)",
                            hide_input=True)
    else:
        area = _ask(area, "Nord Pool area (e.g. SE3, NO1, DK1, FI, GER, NL)")
    default_tz = next((z for p, z in AREA_TIMEZONES.items() if (area or "").startswith(p)),
                      "Europe/Berlin")
    tz_name = _ask(tz_name, "Time zone", default=default_tz)
    if capacity_kwh is None and gx.get("capacity_kwh"):
        capacity_kwh = gx["capacity_kwh"]
        click.echo(f"battery capacity from the GX's Dynamic ESS settings: {capacity_kwh:g} kWh")
    capacity_kwh = _ask(capacity_kwh, "Usable battery capacity [kWh]",
                        type=click.FloatRange(min=0, min_open=True))
    max_charge_kw = _ask(max_charge_kw, "Max charge power [kW, AC]", default=5.0, type=float)
    max_discharge_kw = _ask(max_discharge_kw, "Max discharge power [kW, AC]", default=5.0,
                            type=float)
    pv_kwp = _ask(pv_kwp, "PV peak power [kWp] (0 = no PV forecast)", default=0.0, type=float)
    buy = _ask(buy, "Buy price from spot (grid fees, taxes, VAT)",
               default="price" if prices == "tibber" else "(price + 0.10) * 1.25")
    sell = _ask(sell, "Feed-in price from spot", default="price")
    cfg, secrets = build_config({
        "driver": driver, "gx_host": gx_host, "gx_port": gx_port, "unit_id": unit_id,
        "battery_unit_id": battery_unit_id, "mode": mode, "prices": prices,
        "tibber_token": tibber_token, "home_id": home_id, "area": area, "lat": lat, "lon": lon,
        "timezone": tz_name, "capacity_kwh": capacity_kwh, "max_charge_kw": max_charge_kw,
        "max_discharge_kw": max_discharge_kw, "min_soc_pct": min_soc_pct,
        "max_import_kw": max_import_kw, "max_export_kw": max_export_kw, "pv_kwp": pv_kwp,
        "pv_tilt_deg": pv_tilt_deg, "pv_azimuth_deg": pv_azimuth_deg, "buy": buy, "sell": sell,
        "state_dir": os.path.abspath(state_dir) if state_dir else None,
    })
    folder.mkdir(parents=True, exist_ok=True)
    config_path.write_text(render_config(cfg, prices))
    write_secret_file(secrets_path, secrets)
    try:
        config_mod.load(config_path)
    except HeliosError as exc:
        config_path.unlink()
        secrets_path.unlink()
        fail(exc)
    click.echo(f"wrote {config_path} and {secrets_path} (mode 0600); config OK")
    click.echo("next: helios doctor --config " + str(config_path)
               + "; then helios-executor --config " + str(config_path) + " --dry-run "
               "(docs/going-live.md)")
