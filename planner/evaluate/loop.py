"""One backtest: Helios in closed loop, the baselines and the perfect-foresight limit on the
same data (:func:`run_backtest`), with the options that say how Helios sees the future."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from planner.config import HeliosConfig
from planner.core.errors import DataError
from planner.evaluate import ev as ev_mod
from planner.evaluate import heater as heater_mod
from planner.evaluate.metrics import compare, metrics
from planner.evaluate.minute import judge
from planner.evaluate.minute_truth import minute_data
from planner.evaluate.mpc import MpcStrategy
from planner.evaluate.perfect import Terms, perfect_foresight
from planner.evaluate.physics import Home, Series, Trace, simulate
from planner.evaluate.strategies import NoBattery, PriceRule, SelfConsumption


@dataclass(frozen=True)
class Options:
    """How the closed loop sees the future and how often it re-plans."""

    forecast: str = "perfect"  # perfect | noisy | real
    noise_pct: float = 10.0
    seed: int = 0
    replan_every: int = 1
    outage_notice_h: float = 48.0
    control: str = "intent"  # intent | battery | grid | hybrid: how the executor follows
    soc_start_pct: float = 50.0
    noisy_too: bool = False  # also run the planner with noisy forecasts (for comparison)
    # also judge every strategy at 1-minute truth (planner.evaluate.minute): off | synthetic (seeded
    # minutes under the slot profile) | recorded (minute data given to run_backtest)
    minute: str = "off"
    minute_seed: int = 0
    # with an ev: section: the car's presence and driving (planner.evaluate.ev): commuter or
    # a CSV path; its SoC at the start (None: the target)
    ev_profile: str = "commuter"
    ev_soc_start_pct: float | None = None
    # with a water_heater: section: the timer baseline's local start time (planner.evaluate.heater)
    heater_fixed: str = "02:00"


@dataclass
class Result:
    """All strategies' traces on one period, their metrics and the comparisons."""

    traces: dict[str, Trace]
    metrics: dict[str, dict]
    comparison: dict
    terms: Terms
    home: Home
    start: int
    info: dict


STRATEGY_ORDER = ("helios", "no_battery", "self_consumption", "price_rule", "perfect_foresight")
#: with an electric car: the home battery planned by Helios alone, the car charged by a rule
EV_STRATEGIES = ("helios_ev_at_plugin", "helios_ev_cheapest")
#: with a water heater: the house planned by Helios alone, the heater on a timer / thermostat
HEATER_STRATEGIES = heater_mod.STRATEGIES


def run_backtest(cfg: HeliosConfig, series: Series, start: int, stop: int,
                 options: Options = Options(),
                 progress: Callable[[int], None] | None = None, minute=None) -> Result:
    """Helios in closed loop, the three baselines and the perfect-foresight limit.

    ``progress`` receives slot counts of the Helios run(s) (the long part). With
    ``options.minute`` (``synthetic``, or ``minute``: a
    :class:`planner.evaluate.minute_truth.MinuteData`) every strategy is also judged at
    1-minute truth (:func:`planner.evaluate.minute.judge`; the slot series is first conformed
    to the minute means): ``info["minute"]`` holds that
    :class:`planner.evaluate.minute.MinuteResult`.
    """
    t_all = time.perf_counter()
    home = Home.from_config(cfg)
    if series.slot_s != home.slot_s:
        raise DataError(f"series slot {series.slot_s} s differs from planning.slot_s "
                        f"{home.slot_s} s")
    if minute is None and options.minute == "synthetic":
        minute = minute_data(series, start, stop, options.minute_seed)
    elif minute is None and options.minute != "off":
        raise ValueError(f"minute: {options.minute!r} needs the minute data")
    if minute is not None:
        series = minute.conform(series)
    soc0 = min(max(options.soc_start_pct, 0.0), 100.0) / 100 * home.capacity_kwh
    terms = Terms.for_period(cfg, series, start, stop)
    traces: dict[str, Trace] = {}
    cars = ev_mod.Cars.make(cfg, series, start, stop, options) if cfg.ev is not None else None
    if cars is not None and minute is not None:
        raise DataError("an electric car in the backtest is simulated at slot resolution "
                        "only (no --minute)")
    heaters = None
    if cfg.water_heater is not None:
        if cars is not None:
            raise DataError("the backtest simulates an ev: or a water_heater:, not both at once")
        if minute is not None:
            raise DataError("a water heater in the backtest is simulated at slot resolution "
                            "only (no --minute)")
        heaters = heater_mod.Heaters.make(cfg, series, start, stop, options)
    plain = series  # what the baselines see: the car charged at plug-in is part of the load
    if cars is not None:
        plain = cars.series_with(series, "at_plugin")
    if heaters is not None:  # the heater on its thermostat is part of the load
        plain = heaters.series_with(series, "thermostat")

    def mpc(forecast: str, on: Series | None = None, car=None, heater=None) -> MpcStrategy:
        return MpcStrategy(cfg, on if on is not None else plain, forecast, options.noise_pct,
                           options.seed, options.replan_every, options.outage_notice_h,
                           options.control, car=car, heater=heater)

    if heaters is not None:
        wh = heaters.heater()
        traces["helios"] = simulate(home, series, start, stop, soc0,
                                    mpc(options.forecast, series, heater=wh), progress)
        first, last = heaters.days()
        traces["helios"].info["water_heater"] = wh.summary(first, last)
        for name, rule in zip(heater_mod.STRATEGIES, heater_mod.RULES, strict=True):
            on = heaters.series_with(series, rule)
            tr = simulate(home, on, start, stop, soc0, mpc(options.forecast, on))
            tr.name, tr.heater_kw = name, heaters.kw[rule]
            traces[name] = tr
    elif cars is None:
        traces["helios"] = simulate(home, series, start, stop, soc0, mpc(options.forecast),
                                    progress)
    else:
        car = cars.car()
        traces["helios"] = simulate(home, series, start, stop, soc0,
                                    mpc(options.forecast, series, car), progress)
        traces["helios"].info["ev"] = car.summary(cars.soc0_kwh)
        for name, rule in zip(EV_STRATEGIES, ("at_plugin", "cheapest"), strict=True):
            tr = simulate(home, cars.series_with(series, rule), start, stop, soc0,
                          mpc(options.forecast, cars.series_with(series, rule)))
            tr.name, tr.ev_kw = name, cars.kw[rule]
            tr.info["ev"] = cars.summaries[rule]
            traces[name] = tr
    traces["helios"].info["forecast"] = options.forecast
    if (options.noisy_too and options.forecast == "perfect" and cars is None
            and heaters is None):
        traces["helios_noisy"] = simulate(home, series, start, stop, soc0, mpc("noisy"))
        traces["helios_noisy"].info["forecast"] = "noisy"
    traces["no_battery"] = simulate(home.without_battery(), plain, start, stop, soc0,
                                    NoBattery())
    traces["self_consumption"] = simulate(home, plain, start, stop, soc0,
                                          SelfConsumption(home, plain))
    traces["price_rule"] = simulate(home, plain, start, stop, soc0,
                                    PriceRule(home, plain, cfg.site.timezone))
    t_pf = time.perf_counter()
    traces["perfect_foresight"], _ = perfect_foresight(home, plain, start, stop, soc0,
                                                             terms)
    traces["perfect_foresight"].info["run_s"] = round(time.perf_counter() - t_pf, 3)
    if cars is not None:
        for name in ("no_battery", "self_consumption", "price_rule", "perfect_foresight"):
            traces[name].ev_kw = cars.kw["at_plugin"]
            traces[name].info["ev"] = cars.summaries["at_plugin"]
    if heaters is not None:
        for name in ("no_battery", "self_consumption", "price_rule", "perfect_foresight"):
            traces[name].heater_kw = heaters.kw["thermostat"]
    table = {name: metrics(tr, heater_mod.with_load(series, start, tr.ev_kw, tr.heater_kw),
                           start, home, terms)
             for name, tr in traces.items()}
    if heaters is not None:
        for name, tr in traces.items():
            table[name].update(heaters.metrics(tr, start))
    if cars is not None:
        for name, tr in traces.items():
            # net cost: also minus the value of the energy added to the car
            row = table[name]
            row.update(cars.metrics(tr, start, terms.end_value_eur_per_kwh))
            row["net_cost_eur"] = round(row["net_cost_eur"] - row["ev_stored_value_eur"], 6)
    comparison = compare(table)
    info = {"run_s": round(time.perf_counter() - t_all, 3), "slots": stop - start,
            "slot_s": series.slot_s, "start": series.index[start].isoformat(),
            "end": (series.index[stop - 1] + pd.Timedelta(seconds=series.slot_s)).isoformat()}
    if cars is not None:  # the car's comparison (summary.json "ev")
        info["ev"] = {**ev_mod.compare(table), "profile": cars.profile.source,
                      "soc_start_pct": round(100 * cars.soc0_kwh / cars.spec.capacity_kwh, 3)}
    if heaters is not None:  # the heater's comparison (summary.json "water_heater")
        s = heaters.spec
        info["water_heater"] = {**heater_mod.compare(table), "power_kw": s.power_kw,
                                "daily_kwh": s.need_kwh, "modulating": s.modulating,
                                "window": cfg.water_heater.window,
                                "fixed_at": heaters.fixed_at,
                                "thermostat": "daily energy along the morning/evening draw "
                                              "profile (heater.THERMOSTAT_PCT)"}
    if minute is not None:
        info["minute"] = judge(home, series, start, stop, soc0, terms, traces,
                                          minute, lambda: mpc(options.forecast),
                                          cfg.site.timezone, progress)
        info["run_s"] = round(time.perf_counter() - t_all, 3)
    return Result(traces, table, comparison, terms, home, start, info)
