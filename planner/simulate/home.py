"""The simulated home: recorded PV, load and prices, scheduled outages, appliances, the bill.

* :class:`Recorded`: the backtest's CSV files (``ts_utc,price_eur_per_kwh`` / ``pv_kw`` /
  ``load_kw``, read and checked by :func:`planner.providers.files.csv.read_series`), looked up
  at any instant (each row holds for its interval), with the config's tariff applied to the
  spot price.
* :func:`read_outages`: a YAML list of ``{start, end, announced_h}`` (``announced_h``: how many
  hours before ``start`` the planner is told; 0 = it learns of the outage when it begins).
* :class:`SimPlant`: the ``simulated`` driver's :class:`executor.drivers.simulated.Plant` (so
  :func:`executor.plant.step`, the one home physics) with the site's grid limits, the grid cut
  to 0 during an outage (islanded: the battery covers the load, what it cannot is unserved),
  the recorded PV and load plus the appliances' draw, and the bookkeeping of every ≤ 10-s step:
  energy, bill, self-consumption, SoC during outages.
* :class:`SimRelay` + :class:`Appliance`: a relay the executor's real
  :class:`executor.relays.base.RelayFollower` switches from the plan's ``devices.<name>``
  entries, and the load behind it (the configured power while on, until its thermostat or
  programme has had the day's energy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from executor.drivers.simulated import Plant
from executor.plant import PlantLimits
from executor.relays.base import RelayConfig
from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import DataError
from planner.core.site import SiteSpec
from planner.core.tariff import compile_tariff
from planner.providers.files.csv import read_series
from planner.providers.files.yamlfile import read_yaml

# --------------------------------------------------------------------------------------------
# outages


@dataclass(frozen=True)
class Outage:
    """A grid outage ``[start, end)`` the planner hears of ``announced_h`` before it starts."""

    start: pd.Timestamp
    end: pd.Timestamp
    announced_h: float = 0.0

    @property
    def known_from(self) -> pd.Timestamp:
        """When the planner is told. [UTC]"""
        return self.start - pd.Timedelta(hours=self.announced_h)


def read_outages(path: str | Path) -> list[Outage]:
    """Outages from YAML: a list of ``{start, end, announced_h}`` (or ``{outages: [...]}``).

    Timestamps need an offset (``Z`` or ``+02:00``); ``announced_h`` ≥ 0 (default 0).

    Raises
    ------
    DataError
        Naming the file, the item and the key (missing, naive, end not after start, ...).
    """
    path = Path(path)
    what = f"outages {path}"
    doc = read_yaml(path, what)
    if isinstance(doc, dict):
        doc = doc.get("outages")
    if not isinstance(doc, list):
        raise DataError(f"{what}: expected a list of {{start, end, announced_h}} mappings")
    out = []
    for i, item in enumerate(doc, 1):
        if not isinstance(item, dict):
            raise DataError(f"{what}: item {i}: expected a mapping {{start, end, announced_h}}")
        unknown = sorted(set(item) - {"start", "end", "announced_h"})
        if unknown:
            raise DataError(f"{what}: item {i}: unknown key {unknown[0]!r} (expected start, "
                            "end, announced_h)")
        for key in ("start", "end"):
            if key not in item:
                raise DataError(f"{what}: item {i}: missing key {key!r}")
        start = timegrid.to_utc(str(item["start"]), f"{what} item {i} start")
        end = timegrid.to_utc(str(item["end"]), f"{what} item {i} end")
        if end <= start:
            raise DataError(f"{what}: item {i}: end {item['end']} is not after start "
                            f"{item['start']}")
        notice = item.get("announced_h", 0.0)
        if isinstance(notice, bool) or not isinstance(notice, (int, float)) \
                or not math.isfinite(notice) or notice < 0:
            raise DataError(f"{what}: item {i}: announced_h = {notice!r}, expected hours >= 0")
        out.append(Outage(start, end, float(notice)))
    return sorted(out, key=lambda o: o.start)


def known_outages(outages: list[Outage], now: pd.Timestamp) -> list[tuple]:
    """The ``(start, end)`` of the outages the planner knows of at ``now`` (announced, not
    over)."""
    return [(o.start, o.end) for o in outages if o.known_from <= now < o.end]


# --------------------------------------------------------------------------------------------
# recorded data


class _Lookup:
    """A regular series as plain lists: the value of the interval containing an instant."""

    def __init__(self, values: pd.Series, resolution_s: int, what: str):
        self.t0 = values.index[0].timestamp()
        self.res = float(resolution_s)
        self.values = [float(v) for v in values.to_numpy()]
        self.end = self.t0 + self.res * len(self.values)
        self.what = what

    def at(self, t: float) -> float:
        i = int((t - self.t0) // self.res)
        if not 0 <= i < len(self.values):
            raise DataError(f"{self.what}: no value for "
                            f"{pd.Timestamp(t, unit='s', tz='UTC').isoformat()}")
        return self.values[i]

    def covers(self, start: float, end: float) -> bool:
        return self.t0 <= start and end <= self.end


class Recorded:
    """Recorded spot prices (with the tariff's buy/sell), PV and load. [EUR/kWh, kW]"""

    def __init__(self, cfg: HeliosConfig, prices_csv: str | Path, pv_csv: str | Path,
                 load_csv: str | Path):
        self.paths = {"prices": str(prices_csv), "pv": str(pv_csv), "load": str(load_csv)}
        spot = read_series(prices_csv, "price_eur_per_kwh", "prices (--prices)", False)
        pv = read_series(pv_csv, "pv_kw", "pv (--pv)", True)
        load = read_series(load_csv, "load_kw", "load (--load)", True)
        arr = spot.values.to_numpy(dtype=float)
        index = spot.values.index
        self.spot = _Lookup(spot.values, spot.resolution_s, "prices (--prices)")
        self.buy = _Lookup(pd.Series(compile_tariff(cfg.tariff.buy)(arr), index),
                           spot.resolution_s, "buy price")
        self.sell = _Lookup(pd.Series(compile_tariff(cfg.tariff.sell)(arr), index),
                            spot.resolution_s, "sell price")
        self.pv = _Lookup(pv.values, pv.resolution_s, "pv (--pv)")
        self.load = _Lookup(load.values, load.resolution_s, "load (--load)")

    def require(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        """Every series covers ``[start, end)``.

        Raises
        ------
        DataError
            Naming the option whose file does not cover the period.
        """
        for opt_name, lk in (("--prices", self.spot), ("--pv", self.pv), ("--load", self.load)):
            if not lk.covers(start.timestamp(), end.timestamp()):
                first = pd.Timestamp(lk.t0, unit="s", tz="UTC")
                last = pd.Timestamp(lk.end, unit="s", tz="UTC")
                raise DataError(f"{opt_name}: the file covers {first.isoformat()} to "
                                f"{last.isoformat()}, not the simulated period "
                                f"{start.isoformat()} to {end.isoformat()}")


# --------------------------------------------------------------------------------------------
# appliances


class SimRelay:
    """A relay in memory, for :class:`executor.relays.base.RelayFollower`."""

    def __init__(self, config: RelayConfig):
        self.config = config
        self.on = False
        self.switches = 0

    def read(self) -> bool:
        return self.on

    def set(self, on: bool) -> None:
        if bool(on) != self.on:
            self.switches += 1
        self.on = bool(on)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "simulated"


@dataclass
class Appliance:
    """A switched load: ``power_kw`` while its relay is on, until ``daily_kwh`` is in (its
    thermostat or programme stops it), counted per local day."""

    name: str
    power_kw: float
    daily_kwh: float
    relay: SimRelay
    delivered_today_kwh: float = 0.0
    delivered_kwh: float = 0.0
    days: dict = field(default_factory=dict)  # local date -> kWh

    def draw_kw(self, dt_h: float) -> float:
        if not self.relay.on:
            return 0.0
        left = self.daily_kwh - self.delivered_today_kwh
        return max(0.0, min(self.power_kw, left / dt_h)) if left > 1e-9 else 0.0


def appliances(cfg: HeliosConfig) -> list[Appliance]:
    """The water heater and the deferrable loads of the config, each behind a relay that
    follows ``devices.<name>.power_kw`` (default relay keys: ``executor.relays``' defaults)."""
    out = []
    heater = cfg.water_heater
    if heater is not None:
        daily = heater.daily_kwh if heater.daily_kwh is not None else \
            (heater.daily_run_h or 0.0) * heater.power_kw
        out.append(Appliance("water_heater", heater.power_kw, daily,
                             SimRelay(RelayConfig(device="water_heater"))))
    for load in cfg.loads:
        daily = load.energy_kwh if load.energy_kwh is not None else \
            (load.run_h or 0.0) * load.power_kw
        out.append(Appliance(load.name, load.power_kw, daily,
                             SimRelay(RelayConfig(device=load.name))))
    return out


# --------------------------------------------------------------------------------------------
# the plant


@dataclass
class OutageStats:
    """What the battery did in one outage."""

    outage: Outage
    soc_start_pct: float | None = None
    soc_min_pct: float | None = None
    soc_end_pct: float | None = None
    unserved_kwh: float = 0.0
    load_kwh: float = 0.0


@dataclass
class Totals:
    """Energy and money since the start. [kWh, EUR]"""

    import_kwh: float = 0.0
    export_kwh: float = 0.0
    pv_kwh: float = 0.0
    pv_used_kwh: float = 0.0
    pv_exported_kwh: float = 0.0
    curtailed_kwh: float = 0.0
    load_kwh: float = 0.0
    unserved_kwh: float = 0.0
    charge_kwh: float = 0.0
    discharge_kwh: float = 0.0
    cost_eur: float = 0.0
    soc_min_pct: float = math.inf
    soc_min_normal_pct: float = math.inf  # outside outages


class SimPlant(Plant):
    """The simulated driver's plant with the site's grid, outages, recorded data, appliances
    and the bill (see the module docstring)."""

    def __init__(self, cfg: HeliosConfig, recorded: Recorded, outages: list[Outage],
                 devices: list[Appliance], soc_pct: float, now: datetime):
        self.site = SiteSpec.from_config(cfg)
        self.recorded = recorded
        self.outages = outages
        self.devices = devices
        self.tz = ZoneInfo(cfg.site.timezone)
        self.totals = Totals()
        self.outage_stats = [OutageStats(o) for o in outages]
        self._outage_s = [(o.start.timestamp(), o.end.timestamp()) for o in outages]
        self._draws_kw = [0.0] * len(devices)
        self._dt_s = 10.0
        self._day = None
        self._next_midnight = now
        b = cfg.battery
        super().__init__(soc_pct, b.capacity_kwh, now, profile=self._profile,
                         max_charge_w=b.max_charge_kw * 1000.0,
                         max_discharge_w=b.max_discharge_kw * 1000.0,
                         charge_efficiency=b.charge_efficiency,
                         discharge_efficiency=b.discharge_efficiency,
                         min_soc_pct=b.min_soc_pct, max_soc_pct=b.max_soc_pct)

    def outage_at(self, now: datetime) -> OutageStats | None:
        """The outage in force at ``now`` (None: the grid is up)."""
        t = now.timestamp()
        for (a, b), st in zip(self._outage_s, self.outage_stats, strict=True):
            if a <= t < b:
                return st
        return None

    def limits(self) -> PlantLimits:
        base = replace(super().limits(), max_import_kw=self.site.max_import_kw,
                       max_export_kw=self.site.max_export_kw)
        if self.outage_at(self.now) is not None:  # islanded
            return replace(base, max_import_kw=0.0, max_export_kw=0.0)
        return base

    def _new_day(self, now: datetime) -> None:
        local = now.astimezone(self.tz)
        self._day = local.date()
        midnight = datetime.combine(self._day + timedelta(days=1), datetime.min.time(),
                                    self.tz)
        self._next_midnight = midnight
        for dev in self.devices:
            dev.delivered_today_kwh = 0.0

    def _profile(self, now: datetime) -> tuple:
        if now >= self._next_midnight:
            self._new_day(now)
        t = now.timestamp()
        dt_h = self._dt_s / 3600.0
        self._draws_kw = [dev.draw_kw(dt_h) for dev in self.devices]
        self.appliance_w = sum(self._draws_kw) * 1000.0
        return (self.recorded.pv.at(t) * 1000.0,
                self.recorded.load.at(t) * 1000.0 + self.appliance_w)

    def _step(self, dt_s: float) -> None:
        self._dt_s = dt_s
        start, soc0 = self.now, self.soc_pct
        super()._step(dt_s)
        self._account(start, dt_s, soc0)

    def _account(self, start: datetime, dt_s: float, soc0: float) -> None:
        dt_h = dt_s / 3600.0
        tot = self.totals
        pv, load = self.pv_power_w / 1000.0, self.load_power_w / 1000.0
        grid, batt = self.grid_power_w / 1000.0, self.battery_power_w / 1000.0
        rest = load - pv - grid - batt  # > 0: unserved, < 0: curtailed PV
        unserved = rest if rest > 1e-9 else 0.0
        curtailed = -rest if rest < -1e-9 else 0.0
        imp, exp = max(grid, 0.0), max(-grid, 0.0)
        charge = max(-batt, 0.0)
        pv_used = pv - curtailed
        pv_exported = min(exp, max(pv_used - (load - unserved) - charge, 0.0))
        t = start.timestamp()
        tot.import_kwh += imp * dt_h
        tot.export_kwh += exp * dt_h
        tot.pv_kwh += pv * dt_h
        tot.pv_used_kwh += pv_used * dt_h
        tot.pv_exported_kwh += pv_exported * dt_h
        tot.curtailed_kwh += curtailed * dt_h
        tot.load_kwh += load * dt_h
        tot.unserved_kwh += unserved * dt_h
        tot.charge_kwh += charge * dt_h
        tot.discharge_kwh += max(batt, 0.0) * dt_h
        tot.cost_eur += (imp * self.recorded.buy.at(t) - exp * self.recorded.sell.at(t)) * dt_h
        soc_low = min(soc0, self.soc_pct)
        tot.soc_min_pct = min(tot.soc_min_pct, soc_low)
        if self.appliance_w > 0.0:
            for dev, kw in zip(self.devices, self._draws_kw, strict=True):
                kwh = kw * dt_h
                dev.delivered_today_kwh += kwh
                dev.delivered_kwh += kwh
                dev.days[self._day] = dev.days.get(self._day, 0.0) + kwh
        st = self.outage_at(start)
        if st is None:
            tot.soc_min_normal_pct = min(tot.soc_min_normal_pct, soc_low)
            return
        if st.soc_start_pct is None:
            st.soc_start_pct = soc0
        st.soc_min_pct = soc_low if st.soc_min_pct is None else min(st.soc_min_pct, soc_low)
        st.soc_end_pct = self.soc_pct
        st.unserved_kwh += unserved * dt_h
        st.load_kwh += load * dt_h
