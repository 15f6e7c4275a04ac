"""Wiring and the loop of ``helios simulate``.

:func:`prepare` turns the user's config into the simulated home's: the same battery, grid,
tariff, planning and appliances, with the providers pointed at the simulation — prices and PV
from the recorded CSVs (``type: csv``), the load from the measured history (``type: history``,
the executor's rows; ``--load-forecast recorded``: the CSV, a perfect forecast), the state of
charge from the newest measurement (``state: measurements``) — and its storage in a fresh
SQLite file in the output directory. That database holds only this simulation, so the
executor's rows are stored as ordinary measurements (not tagged ``simulated``): the planner
must read them back, as it does in production. A production database is never touched.

:class:`Simulation` runs the real programs on one :class:`~planner.simulate.clock.SimClock`:

* the executor: :class:`executor.runner.Executor` with :meth:`~executor.runner.Executor.run`
  (its own loop, ``interval_s`` ticks, release on exit), the ``simulated`` driver over a
  :class:`~planner.simulate.home.SimPlant`, the plan from ``schedule.json``
  (:class:`executor.plansource.FileSource`), telemetry into SQL, a relay follower per
  appliance;
* the planner: :func:`planner.plan.run.plan_once` every ``plan_every_s`` (first run one
  telemetry window after the start, when the first measurement is stored), then
  :func:`~planner.plan.run.write_schedule` (atomic) and the history's ``save`` — what
  ``helios plan`` does — given the outages announced by then.

The executor's ``sleep`` is where simulated time passes: it runs the planner at its exact
times in between, paces to ``speed`` × wall time and updates the metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from executor import config as executor_config
from executor.control import Apply
from executor.drivers.simulated import SimulatedDriver
from executor.plansource import FileSource, PlanTracker
from executor.relays.base import RelayFollower
from executor.runner import Executor
from executor.telemetry import SqlSink, Telemetry
from planner import config as config_mod
from planner.config import HeliosConfig
from planner.core.errors import ConfigError, ConfigProblem, HeliosError
from planner.history.store import Store
from planner.plan import baselines
from planner.plan import run as plan_run
from planner.plan.record import record_from_result
from planner.simulate.clock import Pacer, SimClock
from planner.simulate.home import Outage, Recorded, SimPlant, appliances, known_outages
from planner.simulate.metrics import Metrics, MetricsServer

log = logging.getLogger("helios.simulate")

DB_NAME = "helios-sim.db"
SCHEDULE_NAME = "schedule.json"
#: trace sample period for the report [s]
SAMPLE_S = 300


@dataclass(frozen=True)
class Options:
    """What to simulate and how fast."""

    start: pd.Timestamp
    days: float
    speed: float | None = None  # simulated s per wall s; None = as fast as possible
    soc_start_pct: float = 50.0
    plan_every_s: float = 300.0
    load_forecast: str = "history"  # history (measurements) | recorded (the CSV)
    metrics_port: int | None = None


def prepare(cfg: HeliosConfig, recorded: Recorded, out_dir: Path, load_forecast: str
            ) -> HeliosConfig:
    """The simulated home's planner config (see the module docstring)."""
    if load_forecast not in ("history", "recorded"):
        raise ConfigError(ConfigProblem("--load-forecast", "history or recorded",
                                        str(load_forecast)))
    paths = {k: str(Path(v).resolve()) for k, v in recorded.paths.items()}
    load = ({"type": "history", "history_from": "measurements", "min_days": 1,
             "window_days": 7} if load_forecast == "history"
            else {"type": "csv", "path": paths["load"]})
    providers = config_mod.from_mapping({
        "prices": {"type": "csv", "path": paths["prices"]},
        "pv": {"type": "csv", "path": paths["pv"]},
        "load": load,
        "state": {"type": "measurements"},
    })
    db = (out_dir / DB_NAME).resolve()
    return dataclasses.replace(
        cfg, prices=providers.prices, pv=providers.pv, load=providers.load,
        state=providers.state,
        storage=dataclasses.replace(cfg.storage, enabled=True, required=True,
                                    url=f"sqlite:///{db}", password=None),
        output=dataclasses.replace(cfg.output, schedule_path=str(out_dir / SCHEDULE_NAME)),
        report=dataclasses.replace(cfg.report, enabled=False, path=None))


@dataclass
class Counters:
    """What the simulation counted."""

    plans: int = 0
    plan_failures: int = 0
    plan_fallbacks: int = 0
    plan_times: list = field(default_factory=list)  # simulated instants of the plans
    plan_wall_s: float = 0.0
    plan_cpu_s: float = 0.0
    failures: dict = field(default_factory=dict)  # message -> count
    degraded: dict = field(default_factory=dict)  # "kind: provider" -> count
    ticks: int = 0
    released: int = 0
    release_reasons: dict = field(default_factory=dict)
    plan_age_max_s: float = 0.0
    plan_age_sum_s: float = 0.0
    plan_age_n: int = 0
    stale_ticks: int = 0
    tick_wall_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    slept_s: float = 0.0
    behind_s: float = 0.0


class Simulation:
    """One run of the stack against the simulated home (see the module docstring)."""

    def __init__(self, cfg: HeliosConfig, exec_cfg: executor_config.ExecutorConfig,
                 recorded: Recorded, outages: list[Outage], out_dir: str | Path,
                 options: Options):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.start = options.start
        self.end = self.start + pd.Timedelta(days=options.days)
        recorded.require(self.start, self.end)
        b = cfg.battery
        if not b.min_soc_pct <= options.soc_start_pct <= b.max_soc_pct:
            raise ConfigError(ConfigProblem(
                "--soc-start-pct", f"a value between battery.min_soc_pct ({b.min_soc_pct:g}) "
                f"and battery.max_soc_pct ({b.max_soc_pct:g}) [%]", f"{options.soc_start_pct:g}"))
        self.user_cfg = cfg
        self.cfg = prepare(cfg, recorded, self.out_dir, options.load_forecast)
        self.recorded = recorded
        self.outages = outages
        self.schedule_path = self.cfg.output.schedule_path
        for name in (DB_NAME, SCHEDULE_NAME, "helios-measurements.jsonl", "pause.json"):
            (self.out_dir / name).unlink(missing_ok=True)  # this simulation's files only
        with Store.from_config(self.cfg) as store:
            store.ensure_schema()
        self.clock = SimClock(self.start.to_pydatetime())
        self.devices = appliances(cfg)
        self.plant = SimPlant(cfg, recorded, outages, self.devices, options.soc_start_pct,
                              self.clock())
        limits = exec_cfg.limits
        self.interval_s = float(exec_cfg.interval_s)
        sink = SqlSink(self.cfg.storage.url, source="helios-simulate")
        self.telemetry = Telemetry(str(self.out_dir / "helios-measurements.jsonl"), sink,
                                   exec_cfg.telemetry.interval_s, simulated=False)
        driver = SimulatedDriver(clock=self.clock, plant=self.plant)
        self.executor = Executor(
            driver, PlanTracker(FileSource(self.schedule_path)), limits,
            str(self.out_dir / "pause.json"), self.telemetry, clock=self.clock,
            interval_s=self.interval_s,
            relays=[RelayFollower(dev.relay, limits.max_plan_age_s) for dev in self.devices])
        self.metrics = Metrics()
        self.server: MetricsServer | None = None
        self.counters = Counters()
        self.trace: list[tuple] = []  # (t_unix, soc, grid_w, pv_w, load_w, buy, outage, age)
        # the timer's first run: one tick after the executor stored its first measurement
        first = exec_cfg.telemetry.interval_s + self.interval_s
        self._next_plan = self._first_plan = self.start.timestamp() + first
        self._next_sample = self.start.timestamp()
        self._t0 = self.start.timestamp()
        self.pacer: Pacer | None = None
        self._counted_tick = -1  # the executor tick whose decision and plan age are counted
        self._tick_started = time.perf_counter()

    # ---------------------------------------------------------------------------------------

    def start_metrics(self) -> str:
        """Serve the metrics on ``options.metrics_port`` (0: a free port); their URL."""
        if self.server is None:
            self.server = MetricsServer(self.metrics, self.options.metrics_port or 0)
        return self.server.url

    def run(self) -> Counters:
        """Run the whole period; the metrics server (when asked for) stays up until
        :meth:`close`."""
        if self.options.metrics_port is not None:
            self.start_metrics()
        # the last tick reads the plant at the end of the period
        ticks = int(round((self.end - self.start).total_seconds() / self.interval_s)) + 1
        self.pacer = Pacer(self.options.speed)
        started, cpu = time.perf_counter(), time.process_time()
        self._tick_started = started
        self.executor.run(max_ticks=ticks, sleep=self._sleep)
        self._after_tick()  # the last tick's metrics
        c = self.counters
        c.wall_s = time.perf_counter() - started
        c.cpu_s = time.process_time() - cpu
        c.slept_s, c.behind_s = self.pacer.slept_s, self.pacer.behind_s
        c.ticks = self.executor.ticks
        self.metrics.set(speed_ratio=(self.end - self.start).total_seconds() / max(c.wall_s,
                                                                                 1e-9))
        return c

    def close(self) -> None:
        """Stop the metrics server."""
        if self.server is not None:
            self.server.close()
            self.server = None

    # ---------------------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """The executor's wait: simulated time passes here, with the planner's runs."""
        self._after_tick()
        target = self.clock.now.timestamp() + seconds
        while self._next_plan <= target + 1e-9:
            self._move_to(self._next_plan)
            self.plan_step()
            self._next_plan += self.options.plan_every_s
        self._move_to(target)
        self._tick_started = time.perf_counter()

    def _move_to(self, t: float) -> None:
        self.pacer.wait_until(t - self._t0)
        when = datetime.fromtimestamp(t, tz=self.clock.now.tzinfo)
        if when > self.clock.now:
            self.clock.set(when)

    def plan_step(self) -> None:
        """One ``helios plan`` at the simulated now: plan, write schedule.json, save."""
        c = self.counters
        now = self.clock.timestamp
        started, cpu = time.perf_counter(), time.process_time()
        warnings: list[str] = []
        try:
            result = plan_run.plan_once(self.cfg, now, warn=warnings.append,
                                        outages=known_outages(self.outages, now))
            plan_run.write_schedule(result.schedule, self.schedule_path)
        except HeliosError as exc:
            c.plan_failures += 1
            key = f"{type(exc).__name__}: {str(exc)[:160]}"
            c.failures[key] = c.failures.get(key, 0) + 1
            log.warning("plan at %s failed: %s", now.isoformat(), exc)
            self.metrics.set(plan_failures_total=c.plan_failures)
            c.plan_wall_s += time.perf_counter() - started
            c.plan_cpu_s += time.process_time() - cpu
            return
        c.plans += 1
        c.plan_times.append(now)
        degraded = [f"{s.kind}: {s.provider}" for s in result.plan.inputs.status if s.degraded]
        if degraded or warnings:
            c.plan_fallbacks += 1
            for key in degraded or ["prices: cached or flat"]:
                c.degraded[key] = c.degraded.get(key, 0) + 1
        record = record_from_result(result, self.cfg, baselines.compare(result.plan, self.cfg),
                                    created_at=now)
        with Store.from_config(self.cfg) as store:
            store.save(record, prune_now=now)
        c.plan_wall_s += time.perf_counter() - started
        c.plan_cpu_s += time.process_time() - cpu
        self.metrics.set(plans_total=c.plans, plan_fallbacks_total=c.plan_fallbacks)

    def _after_tick(self) -> None:
        c = self.counters
        ex = self.executor
        c.tick_wall_s += time.perf_counter() - self._tick_started
        now = self.clock.now
        t = now.timestamp()
        decision = ex.last_decision
        fresh = self._counted_tick != ex.ticks
        if decision is not None and not isinstance(decision, Apply) and fresh:
            c.released += 1
            reason = decision.reason.split(" (")[0]
            c.release_reasons[reason] = c.release_reasons.get(reason, 0) + 1
        plan = ex.tracker.plan
        age = math.nan
        if plan is not None and fresh:
            age = (now - plan.generated_at).total_seconds()
            c.plan_age_max_s = max(c.plan_age_max_s, age)
            c.plan_age_sum_s += age
            c.plan_age_n += 1
            if age > ex.limits.max_plan_age_s:
                c.stale_ticks += 1
        self._counted_tick = ex.ticks
        p = self.plant
        outage = p.outage_at(now) is not None
        buy = self.recorded.buy.at(t) if t < self.end.timestamp() else math.nan
        self.metrics.set(
            time_seconds=t, soc_pct=p.soc_pct, grid_w=p.grid_power_w,
            battery_w=p.battery_power_w, pv_w=p.pv_power_w, load_w=p.load_power_w,
            price_eur_per_kwh=buy, plan_age_seconds=age, outage_active=float(outage),
            cost_eur=p.totals.cost_eur, unserved_kwh=p.totals.unserved_kwh,
            executor_ticks_total=ex.ticks, executor_fallbacks_total=c.released,
            measurements_total=self.telemetry.stored,
            speed_ratio=(t - self._t0) / max(self.pacer.elapsed_s(), 1e-9))
        if t >= self._next_sample:
            self.trace.append((t, p.soc_pct, p.grid_power_w, p.pv_power_w, p.load_power_w,
                               buy, outage, age))
            self._next_sample += SAMPLE_S


def load_configs(path: str | None, out_dir: Path) -> tuple[HeliosConfig,
                                                           executor_config.ExecutorConfig]:
    """The planner's and the executor's view of one config file (built-in defaults without
    one). The file's providers are not needed: the simulation sets its own.

    Raises
    ------
    ConfigError
        From either validator, naming the key.
    """
    if path is None:
        return config_mod.default(), executor_config.default(str(out_dir))
    cfg = config_mod.load(path)
    try:
        exec_cfg = executor_config.load(path)
    except executor_config.ConfigError as exc:  # the executor's own error class
        raise ConfigError(ConfigProblem("executor", "a valid executor: section", str(exc))
                          ) from None
    return cfg, exec_cfg


def measurement_rows(cfg: HeliosConfig) -> int:
    """Rows in the simulation's ``measurements`` table."""
    with Store.from_config(cfg) as store, store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM measurements").scalar())


def plan_rows(cfg: HeliosConfig) -> int:
    """Rows in the simulation's ``plan_history`` table."""
    with Store.from_config(cfg) as store, store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM plan_history").scalar())


__all__ = ["Counters", "Options", "Simulation", "load_configs", "measurement_rows",
           "plan_rows", "prepare"]
