"""What the planner's inputs are: :class:`Inputs` on one slot grid and the :class:`InputStatus`
of each provider.

Kept apart from :mod:`planner.inputs.gather` (which calls the providers) and
:mod:`planner.inputs.degraded` (which stands in for them) so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import DataError
from planner.core.tariff import compile_tariff


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
    #: when the data were fetched, for data from the price cache; None = during this run
    fetched_at: pd.Timestamp | None = None


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
    co2_g_per_kwh: np.ndarray | None = None  # grid carbon intensity (carbon:), None = none

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
