"""Gather every input onto one slot grid: the planner's "coordinator".

Calls the configured providers, fixes the horizon (from "now", floored to the slot, to
min(``planning.horizon_h``, the last known price)), puts prices, PV and load on the slot grid
(prices held, powers averaged), applies the tariff and reads the state of charge. Records
what each provider delivered in :class:`InputStatus` (the state too: a ``static`` SoC is
flagged). A failing PV or load forecast is
replaced here (:func:`planner.inputs.degraded.forecast_or_fallback`), then the last hours'
measurements are blended into both (:mod:`planner.inputs.nowcast`); a failing price
provider is the business of :mod:`planner.inputs.fallback` (cache, then flat prices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from planner import providers
from planner.config import HeliosConfig
from planner.config.devices import carbon_config
from planner.config.sections import ProviderConfig
from planner.core import timegrid
from planner.core.errors import MissingSlotsError
from planner.core.tariff import compile_tariff
from planner.inputs import nowcast
from planner.inputs.cache import fetch_limited
from planner.inputs.degraded import forecast_or_fallback
from planner.inputs.types import Inputs, InputStatus, from_arrays
from planner.providers.base import ProviderContext, TimeSeries

__all__ = ["Inputs", "InputStatus", "carbon_input", "from_arrays", "gather", "state_status"]


def _status(kind: str, name: str, ts: TimeSeries,
            fetched_at: pd.Timestamp | None = None) -> InputStatus:
    if fetched_at is not None:  # the provider's last answer, not asked again (min_interval_s)
        return InputStatus(kind, f"{name} (cached)", ts.source, ts.values.index[0], ts.end,
                           fetched_at=fetched_at)
    return InputStatus(kind, name, ts.source, ts.values.index[0], ts.end)


def state_status(cfg: HeliosConfig, soc_pct: float, now: pd.Timestamp) -> InputStatus:
    """The state of charge as an input: ``state: static`` is a number from the config, not a
    measurement, so it is flagged like a degraded input (summary, report, ``plan_history``)."""
    if cfg.state.type == "static":
        return InputStatus("state", "static", f"state.soc_pct = {soc_pct:g} %", now, now,
                           degraded=True, detail="a fixed state of charge from the config, not "
                           "measured (use state: gx or measurements)")
    return InputStatus("state", cfg.state.type, f"SoC {soc_pct:.1f} %", now, now)


def gather(cfg: HeliosConfig, now: pd.Timestamp, prices: TimeSeries | None = None) -> Inputs:
    """Call the configured providers and align their data on the slot grid.

    ``prices`` replaces the price provider's series (the price cache plans on it).

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

    prices_fetched_at = None
    if prices is None:  # the provider, or its last answer within its min_interval_s
        got = fetch_limited("prices", cfg, now, start, lambda: providers.create(
            "prices", cfg.prices, ctx).fetch(start, wanted_end))
        prices, prices_fetched_at = got.series, got.fetched_at
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
    pv, pv_status = forecast_or_fallback("pv", cfg, ctx, start, index, slot_s)
    load, load_status = forecast_or_fallback("load", cfg, ctx, start, index, slot_s)
    # the last hours' measurements blended into the first hours (forecast.nowcast)
    pv, load, pv_status, load_status = nowcast.apply(cfg, now, index, slot_s, pv, load,
                                                     pv_status, load_status)
    soc = float(providers.create("state", cfg.state, ctx).read(now))

    status = (_status("prices", cfg.prices.type, prices, prices_fetched_at), pv_status,
              load_status,
              state_status(cfg, soc, now))
    buy = compile_tariff(cfg.tariff.buy)(spot)
    sell = compile_tariff(cfg.tariff.sell)(spot)
    co2, co2_status = carbon_input(cfg, ctx, start, index)
    if co2_status is not None:
        status = (*status, co2_status)
    return Inputs(index, slot_s, spot, buy, sell, pv, load, soc, now, status, co2)


def carbon_input(cfg: HeliosConfig, ctx: ProviderContext, start: pd.Timestamp,
                 index: pd.DatetimeIndex) -> tuple[np.ndarray | None, InputStatus | None]:
    """The grid's carbon intensity on the slot grid [g CO2/kWh] and its status; ``(None,
    None)`` without a ``carbon:`` section. A series that ends before the horizon is held at
    its last value (flagged degraded); one that starts after "now" is an error.

    Raises
    ------
    MissingSlotsError
        The series does not cover the current slot.
    ProviderError, DataError
        From the provider.
    """
    if cfg.carbon is None:
        return None, None
    problems: list = []
    base_dir = Path(cfg.source).parent if cfg.source else None
    typ, options = carbon_config(cfg.carbon, problems, base_dir)  # checked at load time
    slot_s = cfg.planning.slot_s
    end = index[-1] + pd.Timedelta(seconds=slot_s)
    ts = providers.create("carbon", ProviderConfig(typ, options), ctx).fetch(start, end)
    values = ts.values.sort_index()
    if values.index[0] > start:
        raise MissingSlotsError(f"carbon ({typ}): first value is for "
                                f"{values.index[0].isoformat()}, after the current slot "
                                f"{start.isoformat()}")
    status = _status("carbon", typ, ts)
    if ts.end < end:  # hold the last value to the horizon end
        step = pd.Timedelta(seconds=ts.resolution_s)
        more = pd.date_range(ts.end, end - pd.Timedelta(seconds=1), freq=step)
        values = pd.concat([values, pd.Series(float(values.iloc[-1]), index=more)])
        status = InputStatus("carbon", typ, ts.source, ts.values.index[0], ts.end,
                             degraded=True, detail=f"held at {float(values.iloc[-1]):.0f} "
                             f"g/kWh after {ts.end.isoformat()}")
    co2 = timegrid.to_slot_grid(values, ts.resolution_s, index, slot_s, "hold",
                                f"carbon ({typ})")
    return np.asarray(co2, dtype=float), status
