"""``helios doctor``: check each step of a real install and say what to do about each failure.

One line per check, in install order (``OK`` / ``WARN`` / ``FAIL``, the step, what was found
and, unless OK, what to do); ``--json`` prints the same as a list of objects. Exit 0 when every
check is OK or WARN, 1 otherwise.

=============  ==============================================================================
step           what is checked
=============  ==============================================================================
config         the file loads and validates (:func:`planner.cli.common.load_config`); each
               of :func:`planner.config.config_warnings` is a WARN
executor       the ``executor:`` section validates (:func:`executor.config.load`)
prices, pv,    one cheap call per provider (one hour from now), one attempt with a short
load, state    timeout (``--timeout-s``); demo, static and CSV providers are a WARN
gx             the executor's driver: Modbus-TCP: the unit id answers a reading and the ESS /
               Dynamic ESS registers allow Helios to drive it (``check_ownership(take_over=
               False)``: reads only); D-Bus: the same on the GX's system bus; dry_run /
               simulated: a WARN (nothing is controlled)
heater         (with ``water_heater.delivered_today``) the energy the heater took today is read
database       ``storage.url`` answers and its schema is at the revision this Helios knows
mqtt           (with ``mqtt:``) the broker takes a connection with the configured login
systemd        helios-plan.timer and helios-executor.service enabled (``systemctl
               is-enabled``), unit files present; a machine without systemd is a WARN
plan           the plan the executor reads (its ``plan.source``) exists and is fresh
vehicle        with ``ev:``: one read of the vehicle provider (live, no cache; Tesla: one
               ``vehicle_data``, never a wake-up; Kia/Hyundai: the cloud's cached state); an
               asleep car with nothing cached is a WARN, ``manual`` a WARN
charger        with ``executor.ev_charger``: one read of the charger (Alfen: Modbus; Victron:
               D-Bus; tesla / kia_hyundai: one state call to the car's API, no command)
=============  ==============================================================================

Nothing is written: the GX check never calls ``apply``/``release`` and never takes Dynamic
ESS over; the database check does not create or upgrade the schema.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import click
import pandas as pd

from executor import config as ex_config
from executor import drivers, evse
from executor import errors as ex_errors
from executor.plansource import make_source
from planner import config as config_mod
from planner import providers
from planner.cli.common import CONFIG_OPTION, find_config, load_config
from planner.config.devices import vehicle_config
from planner.core.errors import HeliosError, ProviderConfigError, ProviderUnavailable
from planner.history.store import SCHEMA_REVISION, Store
from planner.plan import water_heater as heater_mod
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy
from planner.serve import mqtt

OK, WARN, FAIL = "OK", "WARN", "FAIL"

#: units bin/install-systemd installs; the first two must be enabled, serve is optional
UNITS_REQUIRED = ("helios-plan.timer", "helios-executor.service")
UNITS_OPTIONAL = ("helios-serve.service",)
#: where systemd keeps system units (tests point these elsewhere)
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
SYSTEMD_RUNTIME = "/run/systemd/system"
#: provider types that are not a real home's data
DEMO_TYPES = {"demo", "csv", "flat", "none", "constant", "static"}


@dataclass(frozen=True)
class Check:
    """The result of one step."""

    step: str
    status: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.step:<9} {self.message}"
        return text + (f"\n      -> {self.fix}" if self.fix and self.status != OK else "")


# --------------------------------------------------------------------------------------------
# the steps


def check_config(path: str | None) -> tuple[list[Check], config_mod.HeliosConfig | None]:
    """The config file: valid (OK, with a WARN per warning) or FAIL naming the problems."""
    if find_config(path) is None:
        return [Check("config", FAIL, "no config file found (--config, $HELIOS_CONFIG or "
                      "./config.yaml)", "write one with `helios setup`")], None
    try:
        cfg = load_config(path)
    except HeliosError as exc:
        return [Check("config", FAIL, str(exc), "fix the key named above; `helios "
                      "check-config --explain` lists every key")], None
    checks = [Check("config", OK, f"{cfg.source} is valid")]
    checks += [Check("config", WARN, line, "see config.yaml's comments or `helios setup`")
               for line in config_mod.config_warnings(cfg)]
    return checks, cfg


def _provider_policy(timeout_s: float) -> RetryPolicy:
    return RetryPolicy(timeout_s=timeout_s, retries=0, backoff_s=0.0)


def check_provider(kind: str, cfg: config_mod.HeliosConfig, now: pd.Timestamp,
                   timeout_s: float) -> Check:
    """One cheap call to the provider of ``kind`` (one hour of data from ``now``)."""
    pcfg = getattr(cfg, kind)
    label = f"{kind} ({pcfg.type})"
    context = ProviderContext(site=cfg.site, now=now, config=cfg)
    try:
        cls = providers._lookup(kind, pcfg.type)
        kwargs = ({"policy": _provider_policy(timeout_s)}
                  if "policy" in inspect.signature(cls.__init__).parameters else {})
        provider = cls(pcfg.options, context, **kwargs)
        if kind == "state":
            value = provider.read(now)
            found = f"SoC {float(value):.1f} %"
        else:
            end = now + pd.Timedelta(hours=1)
            series = (provider.fetch(now, end) if kind == "prices"
                      else provider.forecast(now, end))
            found = f"{len(series.values)} values from {series.source}"
    except ProviderUnavailable as exc:
        if kind == "load" and _LEARNING.search(str(exc)):
            # a new install: the plan uses the default profile (flagged) until the history
            # is long enough, which is what it should do, not a failure
            return Check(kind, WARN, f"{label}: {exc}; the plan uses the default load "
                         "profile (flagged) until then",
                         "nothing to do: helios-executor's measurements fill the history")
        return Check(kind, FAIL, f"{label}: {exc}", _provider_fix(kind, pcfg.type, exc))
    except HeliosError as exc:
        return Check(kind, FAIL, f"{label}: {exc}", _provider_fix(kind, pcfg.type, exc))
    except Exception as exc:  # a provider bug must not hide the other checks
        return Check(kind, FAIL, f"{label}: {type(exc).__name__}: {exc}",
                     "a bug: report it with this line")
    if pcfg.type in DEMO_TYPES:
        return Check(kind, WARN, f"{label}: {found}, not live data",
                     f"configure your home's {kind} provider (config.yaml's comments)")
    return Check(kind, OK, f"{label}: {found}")


#: a load history still too short (load: history, load: homeassistant)
_LEARNING = re.compile(r"only [0-9.]+ days of (measured load|load history)")


def _provider_fix(kind: str, ptype: str, exc: HeliosError) -> str:
    text = str(exc)
    if "HTTP 401" in text or "HTTP 403" in text or "token" in text.lower():
        return f"check {kind}'s token in secrets.yaml (the `!secret` name in config.yaml)"
    if kind == "state" and ptype == "gx":
        return "see the gx step: state: gx reads the SoC through executor.driver"
    if kind == "state" and ptype == "measurements":
        return "start helios-executor with telemetry to storage.url, or use state: gx"
    if "connect" in text or "timeout" in text or "DNS" in text:
        return "check this machine's internet access / the provider's base_url"
    return f"check the {kind}: section's options (`helios check-config --explain`)"


def check_mqtt(cfg: config_mod.HeliosConfig, timeout_s: float) -> Check:
    """The ``mqtt:`` broker takes a connection with the configured login."""
    try:
        return Check("mqtt", OK, mqtt.probe(cfg.mqtt, timeout_s))
    except ConnectionError as exc:
        return Check("mqtt", FAIL, str(exc), "check mqtt.host/port and the broker is running; "
                     "a refused login: mqtt.username and the !secret password")
    except HeliosError as exc:
        return Check("mqtt", FAIL, str(exc), "fix the key named above")


def check_water_heater(cfg: config_mod.HeliosConfig, now: pd.Timestamp) -> Check:
    """``water_heater.delivered_today`` answers (the energy the heater took today)."""
    problems: list[str] = []
    try:
        kwh = heater_mod.delivered_today_kwh(cfg, now, problems.append)
    except HeliosError as exc:
        return Check("heater", FAIL, str(exc), "fix the key named above")
    if kwh is None:
        return Check("heater", FAIL, problems[0] if problems else "no value",
                     "check water_heater.delivered_today (entity_id, token in secrets.yaml); "
                     "meanwhile each plan asks for the heater's whole daily energy")
    return Check("heater", OK, f"water heater delivered {kwh:.2f} kWh today "
                 f"({cfg.water_heater.delivered_today.get('type')})")


def check_executor_config(path: str) -> tuple[Check, ex_config.ExecutorConfig | None]:
    """The ``executor:`` section as ``helios-executor`` reads it."""
    try:
        ecfg = ex_config.load(path)
    except ex_errors.ExecutorError as exc:
        return Check("executor", FAIL, str(exc), "fix the executor: key named above "
                     "(docs/executor.md, Configuration)"), None
    return Check("executor", OK, f"driver {ecfg.driver_type}, plan from {ecfg.plan.source}"), ecfg


def on_gx() -> bool:
    """Whether this machine is a Victron GX (Venus OS)."""
    return os.path.isdir("/opt/victronenergy")


def check_gx(ecfg: ex_config.ExecutorConfig) -> Check:
    """The GX answers through the executor's driver and lets Helios drive the ESS."""
    kind = ecfg.driver_type
    if kind in ("dry_run", "simulated"):
        return Check("gx", WARN, f"executor.driver is {kind}: no inverter is controlled",
                     "set executor.driver to victron_modbus (host: the GX) or victron_dbus "
                     "(on the GX) when ready to go live (docs/going-live.md)")
    where = (f"{ecfg.driver_options.get('host')}:{ecfg.driver_options.get('port', 502)} unit "
             f"{ecfg.driver_options.get('unit_id', 100)}" if kind == "victron_modbus"
             else "the system D-Bus")
    if kind == "victron_dbus" and not on_gx():
        return Check("gx", FAIL, "executor.driver is victron_dbus but this is not a GX "
                     "(/opt/victronenergy missing)",
                     "run helios-executor on the GX (bin/install-gx), or use victron_modbus "
                     "with the GX's address from this machine")
    driver = None
    try:
        driver = drivers.create(kind, dict(ecfg.driver_options),
                                clock=lambda: datetime.now(timezone.utc))
        m = driver.read()
        owner = getattr(driver, "check_ownership", None)
        if owner is not None:
            owner(take_over=False)
    except ex_errors.ForeignControllerError as exc:
        return Check("gx", FAIL, f"{where} answers but the ESS is not in the right mode: {exc}",
                     "change it on the GX (Settings > ESS / Dynamic ESS), see docs/executor.md")
    except ex_errors.ConfigError as exc:
        return Check("gx", FAIL, f"executor.driver: {exc}", "fix the driver options")
    except ex_errors.ExecutorError as exc:
        fix = ("check the GX's address and that Modbus-TCP is on (Settings > Services > "
               "Modbus TCP) and the unit id (100 = system/settings/hub4)"
               if kind == "victron_modbus" else "check that the GX's D-Bus services run")
        return Check("gx", FAIL, f"cannot read {where}: {exc}", fix)
    finally:
        close = getattr(driver, "close", None)
        if close is not None:
            close()
    soc = "unknown" if m.soc_pct is None else f"{m.soc_pct:.1f} %"
    mode = ecfg.driver_options.get("mode", "dess" if kind == "victron_modbus" else "setpoint")
    status, fix = OK, ""
    if m.soc_pct is None:
        status, fix = WARN, "the GX reports no SoC: check the battery monitor / BMS on the GX"
    return Check("gx", status, f"{where} answers (SoC {soc}); ESS ready for mode {mode}", fix)


def check_database(cfg: config_mod.HeliosConfig) -> Check:
    """``storage.url`` answers and is at :data:`SCHEMA_REVISION` (read-only)."""
    if not cfg.storage.enabled:
        return Check("database", WARN, "storage.enabled is false: no plan history, no "
                     "measurements", "enable storage: for the report, serve and state: "
                     "measurements")
    try:
        with Store.from_config(cfg) as store:
            url = store.safe_url
            db_file = store.url.database if store.url.get_backend_name() == "sqlite" else None
            if db_file and db_file != ":memory:" and not os.path.exists(db_file):
                return Check("database", WARN, f"{url}: no database file yet",
                             "`helios db upgrade` (or the first `helios plan` creates it)")
            current = store.revision()
    except HeliosError as exc:
        return Check("database", FAIL, str(exc),
                     "check storage.url / storage.password and that the server runs")
    if current == SCHEMA_REVISION:
        return Check("database", OK, f"{url} at schema {current}")
    if current is None:
        return Check("database", WARN, f"{url} answers but has no schema yet",
                     "`helios db upgrade` (or the first `helios plan` creates it)")
    if current.isdigit() and int(current) < int(SCHEMA_REVISION):
        return Check("database", WARN, f"{url} at schema {current}, this Helios is at "
                     f"{SCHEMA_REVISION}", "`helios db upgrade` (the next plan does it too)")
    return Check("database", FAIL, f"{url} at schema {current!r}, newer than or unknown to "
                 f"this Helios ({SCHEMA_REVISION})", "upgrade Helios on this machine")


def _systemctl_is_enabled(unit: str) -> str:
    try:
        out = subprocess.run(["systemctl", "is-enabled", unit], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"error ({type(exc).__name__})"
    return (out.stdout.strip() or out.stderr.strip() or "unknown").splitlines()[0]


def check_systemd(is_enabled: Callable[[str], str] = _systemctl_is_enabled) -> list[Check]:
    """The units of ``bin/install-systemd``: files present and enabled."""
    if shutil.which("systemctl") is None or not os.path.isdir(SYSTEMD_RUNTIME):
        return [Check("systemd", WARN, "this machine does not run systemd: the timer and "
                      "units are not checked", "run `helios plan` every 5 min and "
                      "helios-executor some other way (on a GX: bin/install-gx)")]
    checks = []
    for unit in UNITS_REQUIRED + UNITS_OPTIONAL:
        present = any(os.path.exists(os.path.join(d, unit)) for d in UNIT_DIRS)
        state = is_enabled(unit) if present else "not installed"
        if state == "enabled":
            checks.append(Check("systemd", OK, f"{unit} enabled"))
        elif unit in UNITS_OPTIONAL:
            checks.append(Check("systemd", WARN, f"{unit}: {state} (optional)",
                                f"to run helios serve: systemctl enable --now {unit}"))
        elif not present:
            checks.append(Check("systemd", FAIL, f"{unit} not installed",
                                "sudo bin/install-systemd"))
        else:
            checks.append(Check("systemd", FAIL, f"{unit}: {state}",
                                f"sudo systemctl enable --now {unit}"))
    return checks


def check_plan(ecfg: ex_config.ExecutorConfig, now: datetime) -> Check:
    """The plan the executor reads: present, valid, generated within ``plan.max_age_s``."""
    plan = ecfg.plan
    where = plan.path if plan.source == "file" else (plan.url or "")
    try:
        source = make_source(plan.source, plan.path, plan.url or "", min(plan.timeout_s, 5.0))
        schedule = source.fetch()
    except Exception as exc:  # every source raises its own kinds: report, do not crash
        return Check("plan", FAIL, f"no plan from {plan.source} {where}: {exc}",
                     "run `helios plan` (and enable helios-plan.timer)")
    age_s = (now - schedule.generated_at).total_seconds()
    if age_s > plan.max_age_s or now > schedule.valid_until:
        return Check("plan", FAIL, f"the plan from {plan.source} is stale: generated "
                     f"{age_s / 60:.0f} min ago (max {plan.max_age_s / 60:.0f} min)",
                     "check helios-plan.timer (`journalctl -u helios-plan`) or run `helios "
                     "plan`")
    return Check("plan", OK, f"{plan.source} {where}: generated {age_s / 60:.0f} min ago, "
                 f"valid until {schedule.valid_until:%H:%M}Z")


def check_vehicle(cfg: config_mod.HeliosConfig, now: pd.Timestamp, timeout_s: float) -> Check:
    """One live read of ``ev.vehicle`` (no SQL cache: nothing written, the token is tried)."""
    got = vehicle_config(cfg.ev, [])
    if got is None:  # pragma: no cover - the config step validated it
        return Check("vehicle", FAIL, "ev.vehicle is invalid", "helios check-config")
    typ, options = got
    label = f"vehicle ({typ})"
    try:
        cls = providers._lookup("vehicle", typ)
        kwargs = ({"policy": _provider_policy(timeout_s)}
                  if "policy" in inspect.signature(cls.__init__).parameters else {})
        state = cls(options, ProviderContext(site=cfg.site, now=now, config=None),
                    **kwargs).read(now)
    except ProviderConfigError as exc:
        return Check("vehicle", FAIL, f"{label}: {exc}",
                     "check ev.vehicle's token and ids in secrets.yaml / config.yaml")
    except ProviderUnavailable as exc:
        return Check("vehicle", WARN, f"{label}: {exc}",
                     "the car is asleep or its cloud unreachable: plans treat it as not "
                     "plugged in until it answers; try again when it is awake")
    except HeliosError as exc:
        return Check("vehicle", FAIL, f"{label}: {exc}", _provider_fix("vehicle", typ, exc))
    home = {True: "at home", False: "away", None: "location unknown"}[state.at_home]
    found = (f"{label}: SoC {state.soc_pct:.0f} %, "
             f"{'plugged in' if state.plugged_in else 'not plugged in'}, {home} "
             f"({state.source})")
    if typ == "manual":
        return Check("vehicle", WARN, f"{found}: from the config, not the car",
                     "configure ev.vehicle: tesla or kia_hyundai (docs/ev.md)")
    return Check("vehicle", OK, found)


def check_charger(ecfg: ex_config.ExecutorConfig) -> Check:
    """One read of ``executor.ev_charger`` (car-side: one state call, never a command)."""
    typ = ecfg.ev_charger_type
    charger = None
    try:
        charger = evse.create(typ, ecfg.ev_charger, clock=lambda: datetime.now(timezone.utc))
        probe = getattr(charger, "probe", None)
        state = probe() if probe is not None else charger.read()
    except ex_errors.ExecutorError as exc:
        fix = ("check the token / ids under executor.ev_charger (secrets.yaml)"
               if "check executor.ev_charger" in str(exc) else
               "check the charger's address and that it allows external control "
               "(docs/ev.md: Alfen needs the Active Load Balancing licence and Modbus TCP)")
        return Check("charger", FAIL, f"ev charger ({typ}): {exc}", fix)
    finally:
        close = getattr(charger, "close", None)
        if close is not None:
            close()
    if state.status == "asleep":
        return Check("charger", WARN, f"ev charger ({typ}): the car answers asleep",
                     "commands wait until it wakes (wake_to_start: true wakes it to start)")
    return Check("charger", OK, f"ev charger ({typ}) answers: {state.status}")


def run_checks(path: str | None, now: pd.Timestamp, timeout_s: float = 5.0,
               systemd: bool = True) -> list[Check]:
    """Every step in install order; a step whose input failed is skipped."""
    checks, cfg = check_config(path)
    if cfg is None:
        return checks
    ecfg = None
    if cfg.source and os.path.exists(cfg.source):
        check, ecfg = check_executor_config(cfg.source)
        checks.append(check)
    for kind in ("prices", "pv", "load"):
        checks.append(check_provider(kind, cfg, now, timeout_s))
    if ecfg is not None:
        checks.append(check_gx(ecfg))
    checks.append(check_provider("state", cfg, now, timeout_s))
    if cfg.water_heater is not None and cfg.water_heater.delivered_today is not None:
        checks.append(check_water_heater(cfg, now))
    checks.append(check_database(cfg))
    if cfg.mqtt is not None:
        checks.append(check_mqtt(cfg, timeout_s))
    if systemd:
        checks += check_systemd()
    if ecfg is not None:
        checks.append(check_plan(ecfg, now.to_pydatetime()))
    if cfg.ev is not None:
        checks.append(check_vehicle(cfg, now, timeout_s))
    if ecfg is not None and ecfg.ev_charger is not None:
        checks.append(check_charger(ecfg))
    return checks


@click.command("doctor")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--timeout-s", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Timeout of each provider call [s].")
@click.option("--no-systemd", is_flag=True, help="Skip the systemd step.")
def doctor(config_path: str | None, as_json: bool, timeout_s: float, no_systemd: bool) -> None:
    """Check each step of an install: config, providers, GX, database, systemd, plan.

    One line per check (OK / WARN / FAIL and what to do); exit 0 when nothing failed, else 1.
    Reads only: nothing is written to the GX, the database or the plan."""
    now = pd.Timestamp.now(tz="UTC").floor("s")
    checks = run_checks(config_path, now, timeout_s, systemd=not no_systemd)
    failed = sum(c.status == FAIL for c in checks)
    if as_json:
        click.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(c.line())
        warned = sum(c.status == WARN for c in checks)
        click.echo(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    raise SystemExit(1 if failed else 0)


__all__ = ["Check", "check_charger", "check_config", "check_database", "check_gx", "check_mqtt",
           "check_plan", "check_provider", "check_systemd", "check_vehicle", "check_water_heater",
           "doctor", "run_checks"]
