"""Gather every input onto one slot grid: the planner's "coordinator".

Calls the configured providers, fixes the horizon (from "now", floored to the slot, to
min(``planning.horizon_h``, the last known price)), puts prices, PV and load on the slot grid
(prices held, powers averaged), applies the tariff and reads the state of charge. Records
what each provider delivered in :class:`InputStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner import providers
from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import DataError, MissingSlotsError
from planner.core.tariff import compile_tariff
from planner.providers.base import ProviderContext, TimeSeries


@dataclass(frozen=True)
class InputStatus:
    """What one provider delivered: shown in the plan summary, report and history."""

    kind: str
    provider: str
    source: str
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    degraded: bool = False
    detail: str = ""


@dataclass(frozen=True)
class Inputs:
    """Everything the optimiser needs, on one UTC slot grid (arrays of length ``n``)."""

    index: pd.DatetimeIndex
    slot_s: int
    spot_eur_per_kwh: np.ndarray
    buy_eur_per_kwh: np.ndarray
    sell_eur_per_kwh: np.ndarray
    pv_kw: np.ndarray
    load_kw: np.ndarray
    soc_start_pct: float
    now: pd.Timestamp
    status: tuple[InputStatus, ...] = ()

    @property
    def n(self) -> int:
        """Number of slots."""
        return len(self.index)

    @property
    def dt_h(self) -> float:
        """Slot length. [h]"""
        return self.slot_s / 3600.0

    @property
    def end(self) -> pd.Timestamp:
        """End of the horizon (exclusive). [UTC]"""
        return self.index[-1] + pd.Timedelta(seconds=self.slot_s)


def from_arrays(start: pd.Timestamp, slot_s: int, spot_eur_per_kwh, pv_kw, load_kw,
                soc_start_pct: float, cfg: HeliosConfig,
                buy_eur_per_kwh=None, sell_eur_per_kwh=None) -> Inputs:
    """Build :class:`Inputs` directly from arrays (tests, backtests, benchmarks).

    The tariff in ``cfg`` turns the spot price into buy/sell prices unless they are given.
    """
    spot = np.asarray(spot_eur_per_kwh, dtype=float)
    n = len(spot)
    index = timegrid.make_index(start, n, slot_s)
    buy = (compile_tariff(cfg.tariff.buy)(spot) if buy_eur_per_kwh is None
           else np.asarray(buy_eur_per_kwh, dtype=float))
    sell = (compile_tariff(cfg.tariff.sell)(spot) if sell_eur_per_kwh is None
            else np.asarray(sell_eur_per_kwh, dtype=float))
    pv = np.asarray(pv_kw, dtype=float)
    load = np.asarray(load_kw, dtype=float)
    for name, arr in (("buy", buy), ("sell", sell), ("pv_kw", pv), ("load_kw", load)):
        if arr.shape != (n,):
            raise DataError(f"{name}: expected {n} values, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{name}: contains non-finite values")
    if (pv < 0).any() or (load < 0).any():
        raise DataError("pv_kw and load_kw must be >= 0")
    return Inputs(index, slot_s, spot, buy, sell, pv, load, float(soc_start_pct),
                  index[0], ())


def _status(kind: str, name: str, ts: TimeSeries) -> InputStatus:
    return InputStatus(kind, name, ts.source, ts.values.index[0], ts.end)


def gather(cfg: HeliosConfig, now: pd.Timestamp) -> Inputs:
    """Call the configured providers and align their data on the slot grid.

    Raises
    ------
    MissingSlotsError
        No price covers "now", or PV/load do not cover the horizon (names the first slot).
    ProviderError, DataError
        From the providers.
    """
    slot_s = cfg.planning.slot_s
    now = timegrid.to_utc(now, "now")
    start = timegrid.floor_to_slot(now, slot_s)
    wanted_end = start + pd.Timedelta(hours=cfg.planning.horizon_h)
    ctx = ProviderContext(cfg.site, now, cfg)

    price_provider = providers.create("prices", cfg.prices, ctx)
    prices = price_provider.fetch(start, wanted_end)
    if prices.values.index[0] > start:
        raise MissingSlotsError(
            f"prices ({cfg.prices.type}): first price is for "
            f"{prices.values.index[0].isoformat()}, after the current slot {start.isoformat()}")
    n = timegrid.horizon_slots(start, prices.end, cfg.planning.horizon_h, slot_s)
    if n == 0:
        raise MissingSlotsError(
            f"prices ({cfg.prices.type}): no price for the current slot {start.isoformat()}; "
            f"the last known price ends {prices.end.isoformat()}")
    index = timegrid.make_index(start, n, slot_s)
    spot = timegrid.to_slot_grid(prices.values, prices.resolution_s, index, slot_s, "hold",
                                 f"prices ({cfg.prices.type})")

    # PV and load are optional: a failing or short forecast degrades (planner.inputs.degraded)
    from planner.inputs import degraded

    pv, pv_status = degraded.forecast_or_fallback("pv", cfg, ctx, start, index, slot_s)
    load, load_status = degraded.forecast_or_fallback("load", cfg, ctx, start, index, slot_s)
    soc = float(providers.create("state", cfg.state, ctx).read(now))

    status = (_status("prices", cfg.prices.type, prices), pv_status, load_status)
    buy = compile_tariff(cfg.tariff.buy)(spot)
    sell = compile_tariff(cfg.tariff.sell)(spot)
    return Inputs(index, slot_s, spot, buy, sell, pv, load, soc, now, status)
