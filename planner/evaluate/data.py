"""``helios backtest`` inputs: recorded CSVs onto the slot grid, outages, what-if scenarios.

Reads the recorded CSVs (the planner's own CSV format,
:func:`planner.providers.files.csv.read_series`), puts them on the slot grid (prices held,
powers averaged, :func:`planner.core.timegrid.to_slot_grid`), applies the configured tariff
and marks outage slots (:func:`load_data`); a :class:`Scenario` is one what-if of a sweep
(battery size × PV scale). Recorded 1-minute CSVs are read by
:func:`planner.evaluate.minute_truth.read_minute_csv`.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import DataError, MissingSlotsError
from planner.core.tariff import compile_tariff
from planner.evaluate.minute_truth import read_minute_csv
from planner.evaluate.physics import Series
from planner.providers.files.csv import read_series
from planner.providers.files.yamlfile import read_text, read_yaml


@dataclass(frozen=True)
class Data:
    """Recorded data on the slot grid, the simulated period and the outage intervals."""

    series: Series
    start: int  # first simulated slot
    stop: int  # one past the last simulated slot (the data may go on: the planner sees it)
    sources: dict
    outages: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    # recorded minutes of the period: {"pv": (n, k) array or None, "load": ..., "sources"}
    minute: dict | None = None


def parse_when(text: str, tz: str, what: str) -> pd.Timestamp:
    """A CLI date or instant → UTC: ``YYYY-MM-DD`` is local midnight in the site's zone.

    Raises
    ------
    DataError
        Unparsable, or a date-time without an offset.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return timegrid.to_utc(text, what)
    return pd.Timestamp(day).tz_localize(tz).tz_convert("UTC")


def read_outages(path: str | Path) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Outage intervals ``[start, end)`` from CSV (``start_utc,end_utc``) or YAML.

    YAML: a list of mappings ``{start: ..., end: ...}`` (or a mapping with key ``outages``
    holding that list). Timestamps need an offset (``Z`` or ``+02:00``).

    Raises
    ------
    DataError
        Unreadable file, missing column, naive timestamp, end not after start.
    """
    path = Path(path)
    what = f"outages {path}"
    rows: list[tuple[str, str]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        doc = read_yaml(path, what)
        if isinstance(doc, dict):
            doc = doc.get("outages")
        if not isinstance(doc, list):
            raise DataError(f"{what}: expected a list of {{start, end}} mappings")
        for i, item in enumerate(doc):
            if not isinstance(item, dict) or "start" not in item or "end" not in item:
                raise DataError(f"{what}: item {i + 1}: expected a mapping with start and end")
            rows.append((str(item["start"]), str(item["end"])))
    else:
        reader = csv.DictReader(read_text(path, what).splitlines())
        names = [c.strip() for c in (reader.fieldnames or [])]
        if "start_utc" not in names or "end_utc" not in names:
            raise DataError(f"{what}: expected columns start_utc,end_utc; found "
                            f"{', '.join(names) or '(none)'}")
        for rec in reader:
            rec = {(k or "").strip(): (v or "").strip() for k, v in rec.items()}
            rows.append((rec["start_utc"], rec["end_utc"]))
    out = []
    for i, (a, b) in enumerate(rows):
        start = timegrid.to_utc(a, f"{what} row {i + 1} start")
        end = timegrid.to_utc(b, f"{what} row {i + 1} end")
        if end <= start:
            raise DataError(f"{what}: row {i + 1}: end {b} is not after start {a}")
        out.append((start, end))
    return out


def outage_mask(index: pd.DatetimeIndex, slot_s: int,
                outages: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray:
    """True for every slot that overlaps an outage (the grid is down in the whole slot)."""
    mask = np.zeros(len(index), dtype=bool)
    ends = index + pd.Timedelta(seconds=slot_s)
    for start, end in outages:
        mask |= np.asarray((index < end) & (ends > start))
    return mask


def load_data(cfg: HeliosConfig, prices_csv: str, pv_csv: str, load_csv: str,
              start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
              outages: list[tuple[pd.Timestamp, pd.Timestamp]] | None = None,
              minute_pv_csv: str | None = None, minute_load_csv: str | None = None,
              carbon_csv: str | None = None) -> Data:
    """Read the three CSVs and put them on the slot grid from ``start`` to the data's end.

    Without ``start``/``end`` the period is everything the three files cover together.
    The planner may look past ``end`` (up to its horizon) where the files go on.
    ``minute_pv_csv``/``minute_load_csv``: recorded 1-minute truth for the period
    (:func:`planner.evaluate.minute_truth.read_minute_csv`; it must cover every minute of it).
    ``carbon_csv``: ``ts_utc`` and ``co2_g_per_kwh`` (the plan's carbon CSV), held on the
    slots; it must cover the whole grid (the planner's look-ahead included).

    Raises
    ------
    ProviderConfigError, DataError, MissingSlotsError
        Unreadable files, bad rows, or a period the files do not cover (names the slot).
    """
    slot_s = cfg.planning.slot_s
    prices = read_series(prices_csv, "price_eur_per_kwh", "prices (csv)", False)
    pv = read_series(pv_csv, "pv_kw", "pv (csv)", True)
    load = read_series(load_csv, "load_kw", "load (csv)", True)
    first = max(ts.values.index[0] for ts in (prices, pv, load))
    last = min(ts.end for ts in (prices, pv, load))
    first = first.ceil(f"{slot_s}s")
    last = last.floor(f"{slot_s}s")
    begin = first if start is None else timegrid.to_utc(start).ceil(f"{slot_s}s")
    finish = last if end is None else timegrid.to_utc(end).floor(f"{slot_s}s")
    if begin < first:
        raise MissingSlotsError(f"--from {begin.isoformat()} is before the data start "
                                f"{first.isoformat()} (all three files must cover it)")
    if finish > last:
        raise MissingSlotsError(f"--to {finish.isoformat()} is after the data end "
                                f"{last.isoformat()} (all three files must cover it)")
    if finish <= begin:
        raise DataError(f"empty period: {begin.isoformat()} .. {finish.isoformat()}")
    n_total = int((last - begin).total_seconds() // slot_s)
    index = timegrid.make_index(begin, n_total, slot_s)
    spot = timegrid.to_slot_grid(prices.values, prices.resolution_s, index, slot_s, "hold",
                                 "prices (csv)")
    pv_kw = timegrid.to_slot_grid(pv.values, pv.resolution_s, index, slot_s, "mean", "pv (csv)")
    load_kw = timegrid.to_slot_grid(load.values, load.resolution_s, index, slot_s, "mean",
                                    "load (csv)")
    buy = compile_tariff(cfg.tariff.buy)(spot)
    sell = compile_tariff(cfg.tariff.sell)(spot)
    outages = list(outages or [])
    series = Series.build(index, slot_s, spot, buy, sell, pv_kw, load_kw,
                              outage_mask(index, slot_s, outages))
    if carbon_csv:
        co2 = read_series(carbon_csv, "co2_g_per_kwh", "carbon (csv)", True)
        series = replace(series, co2_g_per_kwh=timegrid.to_slot_grid(
            co2.values, co2.resolution_s, index, slot_s, "hold", "carbon (csv)"))
    stop = int((finish - begin).total_seconds() // slot_s)
    sources = {"prices": str(prices_csv), "pv": str(pv_csv), "load": str(load_csv)}
    if carbon_csv:
        sources["carbon"] = str(carbon_csv)
    minute = None
    if minute_pv_csv or minute_load_csv:
        minute = {"sources": {}}
        for name, path in (("pv", minute_pv_csv), ("load", minute_load_csv)):
            minute[name] = (None if not path else read_minute_csv(
                path, f"{name}_kw", index[:stop], slot_s))
            if path:
                minute["sources"][name] = f"recorded ({path})"
                sources[f"minute_{name}"] = str(path)
    return Data(series, 0, stop, sources, tuple(outages), minute)



@dataclass(frozen=True)
class Scenario:
    """One what-if: battery capacity and PV scale (None = as configured / as recorded)."""

    battery_kwh: float | None = None
    pv_scale: float = 1.0

    @property
    def label(self) -> str:
        """Directory-safe name, e.g. ``battery10kWh_pv1.5x``."""
        bat = "config" if self.battery_kwh is None else f"{self.battery_kwh:g}kWh"
        return f"battery{bat}_pv{self.pv_scale:g}x"

    def apply(self, cfg: HeliosConfig, series: Series) -> tuple[HeliosConfig, Series]:
        """The config and data of this scenario (power limits stay as configured)."""
        if self.battery_kwh is not None:
            cfg = replace(cfg, battery=replace(cfg.battery, capacity_kwh=self.battery_kwh))
        return cfg, (series.scaled(self.pv_scale) if self.pv_scale != 1.0 else series)


def scenarios(battery_kwh: list[float] | None, pv_scale: list[float] | None) -> list[Scenario]:
    """Every combination of the given capacities and PV scales."""
    bats: list[float | None] = list(battery_kwh) if battery_kwh else [None]
    scales = list(pv_scale) if pv_scale else [1.0]
    return [Scenario(b, s) for b, s in itertools.product(bats, scales)]
