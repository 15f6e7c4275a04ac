"""Regenerate the built-in demo data (planner/demo/) and the test fixtures (tests/data/) from
the team's shared real data (../shared/data; see its README for sources and licences).

Only CC-BY-4.0 / MIT data are used: Energinet day-ahead prices (CC-BY-4.0), the CoSSMic
residential4 household from Open Power System Data (CC-BY-4.0) and NREL SERF-East PV from
pvanalytics (MIT). Transformations: EUR/MWh -> EUR/kWh (/1000, 5 decimals); energy per
interval -> average power in kW (hourly kWh = kW; W / 1000); tiny negative meter values
clipped to 0; hourly values held on the four quarters of the hour for the 15-min demo.

Run: python3 bench/make_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO = ROOT / "planner" / "demo"
TESTS = ROOT / "tests" / "data"


def _fmt(index: pd.DatetimeIndex) -> pd.Index:
    return index.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(path: Path, index: pd.DatetimeIndex, column: str, values, decimals: int) -> None:
    frame = pd.DataFrame({"ts_utc": _fmt(index), column: np.round(np.asarray(values, float),
                                                                   decimals)})
    assert frame[column].notna().all(), path
    steps = np.diff(index.as_unit("s").asi8)
    assert len(set(steps)) <= 1 and not index.duplicated().any(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    print(f"{path.relative_to(ROOT)}: {len(frame)} rows {frame.ts_utc.iloc[0]} .. "
          f"{frame.ts_utc.iloc[-1]}  {column} min {frame[column].min():g} "
          f"max {frame[column].max():g} mean {frame[column].mean():.4f}")


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame["ts_utc"], utc=True))
    return frame


def _quarters(frame: pd.DataFrame, column: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    index = pd.date_range(frame.index[0], periods=4 * len(frame), freq="15min", tz="UTC")
    return index, np.repeat(frame[column].to_numpy(dtype=float), 4)


def demo() -> None:
    prices = _read(SHARED / "prices/tidy/DK1_energinet_2021-01-01_2024-03-31_1h.csv")
    start = pd.Timestamp("2023-06-30T22:00Z")  # 2023-07-01 00:00 CEST; -440 EUR/MWh on 07-02
    prices = prices[(prices.index >= start) & (prices.index < start + pd.Timedelta(days=4))]
    house = _read(SHARED / "household/cossmic_residential4/"
                          "residential4_hourly_energy_2015-10-12_2017-02-08.csv")
    hstart = pd.Timestamp("2016-07-05T22:00Z")  # 2016-07-06 00:00 CEST, sunny, no gaps
    house = house[(house.index >= hstart) & (house.index < hstart + pd.Timedelta(days=4))]
    assert len(prices) == len(house) == 96
    house.index = prices.index  # calendar shift onto the price days (same local clock)
    index, price = _quarters(prices, "price_eur_mwh")
    _write(DEMO / "prices.csv", index, "price_eur_per_kwh", price / 1000, 5)
    _, pv = _quarters(house.assign(pv=house.pv_kwh.clip(lower=0)), "pv")
    _write(DEMO / "pv.csv", index, "pv_kw", pv, 3)
    _, load = _quarters(house.assign(load=house.load_kwh.clip(lower=0)), "load")
    _write(DEMO / "load.csv", index, "load_kw", load, 3)
    local = index.tz_convert("Europe/Copenhagen")
    daily = pd.DataFrame({"pv_kwh": pv / 4, "load_kwh": load / 4, "price": price / 1000},
                         index=local).groupby(local.date).agg(
        {"pv_kwh": "sum", "load_kwh": "sum", "price": ["min", "mean"]})
    print(daily.round(3))


def fixtures() -> None:
    dk1 = _read(SHARED / "prices/tidy/DK1_energinet_2021-01-01_2024-03-31_1h.csv")
    sel = dk1[(dk1.index >= "2023-07-01T22:00Z") & (dk1.index < "2023-07-03T22:00Z")]
    _write(TESTS / "prices_dk1_2023-07-02_1h.csv", sel.index, "price_eur_per_kwh",
           sel.price_eur_mwh / 1000, 5)
    for src, dst in (("price_SE3_2024-12-10_13_1h_spike707.csv",
                      "prices_se3_2024-12-10_13_spike707_1h.csv"),
                     ("price_SE3_2023-10-28_30_1h_DST_autumn_73h.csv",
                      "prices_se3_2023-10-29_dst_autumn_1h.csv"),
                     ("price_DK1_2023-03-25_27_1h_DST_spring_71h.csv",
                      "prices_dk1_2023-03-26_dst_spring_1h.csv")):
        frame = _read(SHARED / "cases" / src)
        _write(TESTS / dst, frame.index, "price_eur_per_kwh", frame.price_eur_mwh / 1000, 5)
    for src, name in (("household_DE_KN_r4_2016-05-06_05-12_1h_summer_negprice_with_price.csv",
                       "cossmic_summer_week"),
                      ("household_DE_KN_r4_2016-01-18_01-22_1h_winter_with_price.csv",
                       "cossmic_winter")):
        frame = _read(SHARED / "cases" / src)
        _write(TESTS / f"{name}_pv_1h.csv", frame.index, "pv_kw", frame.pv_kwh.clip(lower=0), 3)
        _write(TESTS / f"{name}_load_1h.csv", frame.index, "load_kw",
               frame.load_kwh.clip(lower=0), 3)
    pv = _read(SHARED / "cases/pv_NREL_SERF-East_2016-08-01_03_15min_with_GHI.csv")
    _write(TESTS / "pv_serf_east_2016-08-01_03_15min.csv", pv.index, "pv_kw",
           (pv.ac_power_w / 1000).clip(lower=0), 4)


if __name__ == "__main__":
    demo()
    fixtures()
