"""The backtest tests' data: the CoSSMic summer week (tests/data, CC-BY) with DK1 prices.

Shared by tests/planner/test_simulate.py, test_backtest_real_forecast.py and
test_backtest_cli.py (see tests/data/README for sources and licences).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from planner.evaluate.physics import Series
from planner.inputs import gather as inputs
from planner.providers.files.csv import read_series

DATA_DIR = Path(__file__).parent / "data"
PRICES_CSV = DATA_DIR / "prices_dk1_2023-07-02_1h.csv"


def summer_week(n: int | None = None):
    """(index, spot, pv_kw, load_kw) of the summer week, hourly; DK1 spot repeated to fit.

    ``n`` slots from the start (default: the whole week).
    """
    pv = read_series(DATA_DIR / "cossmic_summer_week_pv_1h.csv", "pv_kw", "pv", True)
    load = read_series(DATA_DIR / "cossmic_summer_week_load_1h.csv", "load_kw", "load", True)
    price = read_series(PRICES_CSV, "price_eur_per_kwh", "prices", False)
    n = len(pv.values) if n is None else n
    spot = np.resize(price.values.to_numpy(), len(pv.values))[:n]
    return pv.values.index[:n], spot, pv.values.to_numpy()[:n], load.values.to_numpy()[:n]


def write_week_prices(path: Path) -> Path:
    """The DK1 price file moved onto the summer week's dates (2016-05-06, local midnight)."""
    prices = pd.read_csv(PRICES_CSV)
    shift = pd.Timestamp("2023-07-01T22:00Z") - pd.Timestamp("2016-05-05T22:00Z")
    ts = pd.to_datetime(prices["ts_utc"], utc=True) - shift
    prices["ts_utc"] = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    prices.to_csv(path, index=False)
    return path


def week_series(week, cfg, *, spot=None, pv=None, load=None, outage=None) -> Series:
    """A :class:`planner.evaluate.physics.Series` of ``week`` (from :func:`summer_week`) under
    ``cfg``'s tariff, hourly slots; ``spot``/``pv``/``load`` replace the week's arrays."""
    index, spot0, pv0, load0 = week
    spot = spot0 if spot is None else spot
    data = inputs.from_arrays(index[0], 3600, spot, pv0 if pv is None else pv,
                              load0 if load is None else load, 50, cfg)
    return Series.build(index, 3600, spot, data.buy_eur_per_kwh,
                                 data.sell_eur_per_kwh, data.pv_kw, data.load_kw, outage)
