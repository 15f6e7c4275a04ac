"""``helios-executor``: follow the current plan on the inverter, safely.

Usage::

    helios-executor [--config FILE] [--once] [--dry-run] [--store-simulated]   # the loop
    helios-executor [--config FILE] pause --until 2h          # or an ISO time, or forever
    helios-executor [--config FILE] resume
    helios-executor [--config FILE] status                    # plan, pause, one reading

Exit codes: 0 ok (also after SIGTERM/SIGINT, once control is released), 2 bad configuration,
3 device error at start-up, 5 another controller owns the inverter (e.g. Dynamic ESS in VRM
mode). Standard library only; runs on Python 3.8+ (Venus OS).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from executor import config as cfgmod
from executor import drivers, evse, pause, relays
from executor.errors import ConfigError, DriverError, ExecutorError
from executor.evse.base import EvFollower
from executor.plansource import PlanTracker, make_source
from executor.relays.base import RelayFollower
from executor.runner import Executor, utc_now
from executor.schedule import format_utc
from executor.telemetry import SqlSink, Telemetry

log = logging.getLogger("helios.executor")

#: where the config is looked for when --config is not given (first that exists)
DEFAULT_CONFIGS = ("config.yaml", "config.json", "/data/helios/config.json",
                   "/etc/helios/config.yaml")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="helios-executor",
                                description="Follow the Helios plan on the inverter.")
    p.add_argument("--config", help="config.yaml or config.json (default: $HELIOS_CONFIG, "
                   "./config.yaml, ./config.json, /data/helios/config.json)")
    p.add_argument("--once", action="store_true", help="run one tick, release, exit")
    p.add_argument("--dry-run", action="store_true",
                   help="read the device but only log what would be sent")
    p.add_argument("--store-simulated", action="store_true",
                   help="store the readings of a simulated plant (driver simulated, or dry_run "
                   "alone) as measurements tagged simulated (default: not stored)")
    sub = p.add_subparsers(dest="command")
    sp = sub.add_parser("pause", help="release control until a time (survives restarts)")
    sp.add_argument("--until", required=True,
                    help="ISO 8601 with offset (2026-05-01T18:00:00Z), 30m/2h/1d, or forever")
    sub.add_parser("resume", help="end a pause")
    sub.add_parser("status", help="show the plan, the pause state and one reading")
    return p


def find_config(explicit: str | None) -> str | None:
    """The config file to use, or None for the built-in defaults."""
    if explicit:
        return explicit
    env = os.environ.get("HELIOS_CONFIG")
    if env:
        return env
    for candidate in DEFAULT_CONFIGS:
        if os.path.exists(candidate):
            return candidate
    return None


def build(cfg: cfgmod.ExecutorConfig, *, dry_run: bool = False, clock=utc_now,
          store_simulated: bool = False) -> Executor:
    """Wire driver, plan source and telemetry from a validated config.

    A simulated plant's readings (``driver.simulated``) are not measurements: they are not
    stored unless ``store_simulated``, and then tagged (the planner never learns from them).
    """
    driver = drivers.create(cfg.driver_type, cfg.driver_options, clock=clock, limits=cfg.limits)
    if dry_run and cfg.driver_type != "dry_run":
        driver = drivers.get("dry_run")(clock=clock, inner=driver)
    source = make_source(cfg.plan.source, cfg.plan.path, cfg.plan.url or "", cfg.plan.timeout_s)
    telemetry = None
    simulated = bool(getattr(driver, "simulated", False))
    if cfg.telemetry.enabled and simulated and not store_simulated:
        log.info("driver %s reads a simulated plant: its readings are not stored as "
                 "measurements (--store-simulated stores them, tagged)", cfg.driver_type)
    elif cfg.telemetry.enabled:
        sink = SqlSink(cfg.telemetry.sql_url) if cfg.telemetry.sql_url else None
        telemetry = Telemetry(cfg.buffer_path, sink, cfg.telemetry.interval_s,
                              simulated=simulated)
    ev = None if dry_run or cfg.ev_charger is None else EvFollower(
        evse.create(cfg.ev_charger_type, cfg.ev_charger, clock=clock), cfg.limits.max_plan_age_s)
    switched = [] if dry_run else [
        RelayFollower(relays.create(kind, rcfg, clock=clock), cfg.limits.max_plan_age_s)
        for kind, rcfg in cfg.relays]
    return Executor(driver, PlanTracker(source), cfg.limits, cfg.pause_path, telemetry,
                    clock=clock, interval_s=cfg.interval_s, ev_charger=ev, relays=switched,
                    overrides_path=cfg.overrides_path)


def _install_signals(executor: Executor) -> None:
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        executor.stop(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    path = find_config(args.config)
    try:
        cfg = cfgmod.load(path) if path else cfgmod.default()
    except ConfigError as exc:
        print(f"helios-executor: {exc}", file=sys.stderr)
        return exc.exit_code
    logging.basicConfig(level=cfg.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.command == "pause":
        now = utc_now()
        try:
            until = pause.parse_until(args.until, now)
        except ValueError as exc:
            print(f"helios-executor: {exc}", file=sys.stderr)
            return 2
        pause.pause(cfg.pause_path, until)
        print(f"paused until {format_utc(until)} (control released within one tick)")
        return 0
    if args.command == "resume":
        was = pause.resume(cfg.pause_path)
        print("resumed" if was else "was not paused")
        return 0

    try:
        executor = build(cfg, dry_run=args.dry_run or args.command == "status",
                         store_simulated=args.store_simulated)
        check = getattr(executor.driver, "check_ownership", None)
        if check is not None:
            check()
    except ExecutorError as exc:
        print(f"helios-executor: {exc}", file=sys.stderr)
        return exc.exit_code

    if args.command == "status":
        until = pause.read(cfg.pause_path)
        plan = executor.tracker.poll()
        print(f"config: {path or 'built-in defaults'}")
        print(f"paused until: {format_utc(until) if until else 'not paused'}")
        print(f"plan: {executor.tracker.reason}"
              + (f", valid until {format_utc(plan.valid_until)}" if plan else ""))
        try:
            m = executor.driver.read()
            print(f"reading: {m.to_dict()}")
        except DriverError as exc:
            print(f"reading: failed ({exc})")
        return 0

    _install_signals(executor)
    log.info("helios-executor starting: driver %s%s, plan %s, every %.0f s",
             cfg.driver_type, " (dry run)" if args.dry_run else "",
             executor.tracker.source.describe(), cfg.interval_s)
    try:
        executor.run(max_ticks=1 if args.once else None)
    except ExecutorError as exc:  # e.g. a foreign controller took over mid-run
        print(f"helios-executor: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
