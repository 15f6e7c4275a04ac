"""Regenerate the built-in demo data (planner/demo/), the test fixtures (tests/data/), their
READMEs and the root NOTICE from the team's shared real data (../shared/data; see its README
for sources and licences), then check every file and print a summary.

Only CC-BY-4.0 / MIT data are used: Energinet day-ahead prices (CC-BY-4.0), the CoSSMic
residential4 household from Open Power System Data (CC-BY-4.0; only its pv/load columns) and
NREL SERF-East PV from pvanalytics (MIT). The EPEX scrape, ENTSO-E and epftoolbox prices are
never read here (the price column of the household cases is epftoolbox and is dropped).

Transformations: EUR/MWh -> EUR/kWh (/1000, 5 decimals); energy per hour (kWh) -> average
power (kW, same number); W -> kW (/1000); powers rounded to 3 decimals and clipped at 0 (PV
night tare / meter skew); for the 15-min demo every hourly value is held on its 4 quarters.

Run: python3 bench/make_fixtures.py            (regenerate + check)
     python3 bench/make_fixtures.py --check    (only check the committed files)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO = ROOT / "planner" / "demo"
TESTS = ROOT / "tests" / "data"
MAX_BYTES = 100_000

# ----------------------------------------------------------------------------- sources
DK1_TIDY = "prices/tidy/DK1_energinet_2021-01-01_2024-03-31_1h.csv"
HOUSE_TIDY = "household/cossmic_residential4/residential4_hourly_energy_2015-10-12_2017-02-08.csv"
PVA_LICENSE = "pv/pvanalytics/LICENSE_pvanalytics_MIT.txt"

ENERGINET_ATTR = "Source: Energinet (www.energidataservice.dk)"
OPSD_ATTR = "Open Power System Data, Household Data package; ISC Konstanz / CoSSMic"
PVA_ATTR = "NREL SERF East PV array, from pvanalytics 0.2.2 (pvanalytics/data/serf_east_15min_ac_power.csv)"
CC_BY = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"

UPSTREAM = {
    "energinet_dk1": (
        "Energi Data Service dataset *Elspotprices* (Energinet), area DK1; copy from GitHub "
        "`Mohammed-Ibadullah/MBML` @ `20e2177095420c525e8a1646dc2938448d32acf3`, `Elspotprices.csv` "
        "(shared: `prices/raw/energinet_elspot_DK1_DK2_2021-2024Q1_hourly.csv`, tidy "
        f"`{DK1_TIDY}`)"),
    "energinet_se3": (
        "Energi Data Service dataset *Elspotprices* (Energinet), area SE3; copy from GitHub "
        "`EliasSchuhmacher/ML_Project_Electricity` @ `b8e821c707b4d3653b5fe309ab24083f52100430`, "
        "`data/Elspotprices.csv` (shared: `prices/raw/energinet_elspot_SE3_SE4_2023-2024_hourly.csv`, "
        "tidy `prices/tidy/SE3_energinet_2023-2024_1h.csv`)"),
    "cossmic": (
        "OPSD Household Data, CoSSMic residential4 (Konstanz, DE); copy of an early 2017 OPSD "
        "release from GitHub `adithya8/loadPrediction` @ `af19fa57ab50c31d98e98eb568498f3cc41f48e6`, "
        "`household_data_60min_singleindex.csv` (shared: `household/cossmic_residential4/"
        "raw_household_data_60min_singleindex_residential4_2017release.csv`, hourly energies with "
        f"the CEST timestamp fix in `{HOUSE_TIDY}`)"),
    "pvanalytics": (
        "NREL SERF East array (Golden, CO), AC power in W, 15-min, as shipped in PyPI "
        "`pvanalytics==0.2.2`, `pvanalytics/data/serf_east_15min_ac_power.csv` (shared: "
        "`pv/pvanalytics/serf_east_15min_ac_power.csv`; labels UTC-07:00 fixed)"),
}

# (fixture file, shared source, source column, target column, kind, upstream key, note)
PRICE_CASES = (
    ("prices_se3_2024-12-10_13_spike707_1h.csv", "cases/price_SE3_2024-12-10_13_1h_spike707.csv",
     "energinet_se3", "SE3 2024-12-10..13 local (96 h), Dunkelflaute spike 707.52 EUR/MWh"),
    ("prices_se3_2023-10-29_dst_autumn_1h.csv", "cases/price_SE3_2023-10-28_30_1h_DST_autumn_73h.csv",
     "energinet_se3", "SE3 2023-10-28..30 local (73 h), includes the 25-hour day 2023-10-29"),
    ("prices_dk1_2023-03-26_dst_spring_1h.csv", "cases/price_DK1_2023-03-25_27_1h_DST_spring_71h.csv",
     "energinet_dk1", "DK1 2023-03-25..27 local (71 h), includes the 23-hour day 2023-03-26"),
)
HOUSE_CASES = (
    ("cossmic_summer_week",
     "cases/household_DE_KN_r4_2016-05-06_05-12_1h_summer_negprice_with_price.csv",
     "summer week 2016-05-06..12 local (168 h), sunny"),
    ("cossmic_winter", "cases/household_DE_KN_r4_2016-01-18_01-22_1h_winter_with_price.csv",
     "winter 2016-01-18..22 local (120 h), heat-pump heavy"),
)
SERF_CASE = "cases/pv_NREL_SERF-East_2016-08-01_03_15min_with_GHI.csv"

# Demo: DK1 1-4 July 2023 (local), -440.10 EUR/MWh on 2 July = second day; household
# 6-9 July 2016 (local): 4 sunny days, no NaN, no negative values, no interpolated PV.
DEMO_PRICE_START = pd.Timestamp("2023-06-30T22:00Z")  # 2023-07-01 00:00 CEST
DEMO_HOUSE_START = pd.Timestamp("2016-07-05T22:00Z")  # 2016-07-06 00:00 CEST
DEMO_DAYS = 4

PRICE_COL, PV_COL, LOAD_COL = "price_eur_per_kwh", "pv_kw", "load_kw"
DECIMALS = {PRICE_COL: 5, PV_COL: 3, LOAD_COL: 3}

RECORDS: list[dict] = []  # one per written file, for the READMEs


# ----------------------------------------------------------------------------- helpers
def _read(rel: str) -> pd.DataFrame:
    frame = pd.read_csv(SHARED / rel)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame["ts_utc"], utc=True))
    return frame


def _window(frame: pd.DataFrame, start: pd.Timestamp, hours: int) -> pd.DataFrame:
    expected = pd.date_range(start, periods=hours, freq="1h")
    out = frame.reindex(expected)
    assert out.index.equals(expected) and len(frame.index.intersection(expected)) == hours, start
    return out


def _power(values) -> tuple[np.ndarray, int]:
    """Round to 3 decimals and clip at 0; returns the values and how many were clipped."""
    arr = np.asarray(values, float)
    clipped = int((np.round(arr, 3) < 0).sum())
    return np.round(np.clip(arr, 0.0, None), 3) + 0.0, clipped  # + 0.0 turns -0.0 into 0.0


def _quarters(index: pd.DatetimeIndex, values) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Hold every hourly value on its four quarter-hours."""
    q = pd.date_range(index[0], periods=4 * len(index), freq="15min")
    return q, np.repeat(np.asarray(values, float), 4)


def _write(path: Path, index: pd.DatetimeIndex, column: str, values, **meta) -> None:
    values = np.round(np.asarray(values, float), DECIMALS[column]) + 0.0
    frame = pd.DataFrame({"ts_utc": index.strftime("%Y-%m-%dT%H:%M:%SZ"), column: values})
    assert frame[column].notna().all(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    RECORDS.append({"file": path.name, "rows": len(frame), "first": frame.ts_utc.iloc[0],
                    "last": frame.ts_utc.iloc[-1], "column": column, **meta})


# ----------------------------------------------------------------------------- demo
def demo() -> pd.DataFrame:
    hours = 24 * DEMO_DAYS
    prices = _window(_read(DK1_TIDY), DEMO_PRICE_START, hours)
    house = _window(_read(HOUSE_TIDY), DEMO_HOUSE_START, hours)
    assert not house[["pv_kwh", "load_kwh"]].isna().any().any()
    shift = DEMO_PRICE_START - DEMO_HOUSE_START
    assert shift % pd.Timedelta(days=1) == pd.Timedelta(0)  # same UTC (and CEST) clock time
    index, price = _quarters(prices.index, prices.price_eur_mwh / 1000)
    pv, pv_clip = _power(house.pv_kwh)
    load, load_clip = _power(house.load_kwh)
    _, pv = _quarters(prices.index, pv)
    _, load = _quarters(prices.index, load)
    _write(DEMO / "prices.csv", index, PRICE_COL, price, src=DK1_TIDY, up="energinet_dk1",
           clipped=0)
    _write(DEMO / "pv.csv", index, PV_COL, pv, src=HOUSE_TIDY, up="cossmic", clipped=pv_clip)
    _write(DEMO / "load.csv", index, LOAD_COL, load, src=HOUSE_TIDY, up="cossmic",
           clipped=load_clip)
    local = index.tz_convert("Europe/Copenhagen")
    frame = pd.DataFrame({"price": np.round(price, 5), "pv": pv / 4, "load": load / 4},
                         index=local)
    daily = frame.groupby(local.date).agg(price_min=("price", "min"),
                                          price_mean=("price", "mean"),
                                          price_max=("price", "max"),
                                          pv_kwh=("pv", "sum"), load_kwh=("load", "sum"))
    daily["house_day"] = [str((pd.Timestamp(d) - shift).date()) for d in daily.index]
    assert daily.price_min.iloc[1] == daily.price_min.min() < -0.4, "2nd day must be the -440 day"
    day2 = frame[frame.index.date == daily.index[1]].price
    neg = day2[day2 < 0].index
    low = day2.idxmin()
    daily.attrs["negative"] = (
        f"negative from {neg[0]:%H:%M} to {neg[-1] + pd.Timedelta(minutes=15):%H:%M} local "
        f"({len(neg) // 4} hours), down to {day2.min():.5f} EUR/kWh at "
        f"{low:%H:%M}-{low + pd.Timedelta(hours=1):%H:%M} local ({low.tz_convert('UTC'):%H:%MZ})")
    return daily


# ----------------------------------------------------------------------------- fixtures
def fixtures() -> None:
    sel = _window(_read(DK1_TIDY), pd.Timestamp("2023-07-01T22:00Z"), 48)
    _write(TESTS / "prices_dk1_2023-07-02_1h.csv", sel.index, PRICE_COL,
           sel.price_eur_mwh / 1000, src=DK1_TIDY, up="energinet_dk1", clipped=0,
           note="DK1 2023-07-02..03 local (48 h), -440.10 EUR/MWh on 2023-07-02 12Z (14:00 local)")
    for dst, src, up, note in PRICE_CASES:
        frame = _read(src)
        _write(TESTS / dst, frame.index, PRICE_COL, frame.price_eur_mwh / 1000, src=src, up=up,
               clipped=0, note=note + "; only `price_eur_mwh` used")
    for name, src, note in HOUSE_CASES:
        frame = _read(src)
        assert not frame[["pv_kwh", "load_kwh"]].isna().any().any(), src
        for col, out_col in (("pv_kwh", PV_COL), ("load_kwh", LOAD_COL)):
            values, clipped = _power(frame[col])
            kind = out_col.split("_")[0]
            _write(TESTS / f"{name}_{kind}_1h.csv", frame.index, out_col, values, src=src,
                   up="cossmic", clipped=clipped,
                   note=f"{note}; only `{col}` used (the case's price column is NOT copied)")
    pv = _read(SERF_CASE)
    values, clipped = _power(pv.ac_power_w / 1000)
    _write(TESTS / "pv_serf_east_2016-08-01_03_15min.csv", pv.index, PV_COL, values,
           src=SERF_CASE, up="pvanalytics", clipped=clipped,
           note="2016-08-01..03 local (UTC-07:00), 288 quarters, clear + cloudy; only "
                "`ac_power_w` used (GHI columns are NSRDB PSM3, not copied)")


# ----------------------------------------------------------------------------- docs
def _md_table(rows: list[list[str]], head: list[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _licence(up: str) -> str:
    if up == "pvanalytics":
        return "MIT (Copyright (c) 2020, 2022 Alliance for Sustainable Energy, LLC and National " \
               "Technology and Engineering Solutions of Sandia, LLC)"
    return CC_BY


def _attribution(up: str) -> str:
    return {"energinet_dk1": ENERGINET_ATTR, "energinet_se3": ENERGINET_ATTR,
            "cossmic": OPSD_ATTR, "pvanalytics": PVA_ATTR}[up]


def _transform(rec: dict) -> str:
    col = rec["column"]
    if col == PRICE_COL:
        return "`price_eur_mwh` / 1000 -> EUR/kWh, rounded to 5 decimals"
    if rec["up"] == "pvanalytics":
        return (f"`ac_power_w` / 1000 -> kW, rounded to 3 decimals, {rec['clipped']} negative "
                "night values (inverter tare, >= -5.8 W) set to 0")
    src_col = "pv_kwh" if col == PV_COL else "load_kwh"
    return (f"`{src_col}` (kWh per hour) = average kW, rounded to 3 decimals, negatives clipped "
            f"to 0 ({rec['clipped']} clipped)")


def write_demo_readme(daily: pd.DataFrame) -> None:
    recs = [r for r in RECORDS if r["file"] in ("prices.csv", "pv.csv", "load.csv")]
    first, last = recs[0]["first"], recs[0]["last"]
    files = _md_table([[f"`{r['file']}`", f"`{r['column']}`", str(r["rows"]),
                        f"{r['first']} .. {r['last']}"] for r in recs],
                      ["file", "column", "rows", "slots (UTC start)"])
    days = _md_table([[str(d), r.house_day, f"{r.price_min:.5f}", f"{r.price_mean:.5f}",
                       f"{r.price_max:.5f}", f"{r.pv_kwh:.1f}", f"{r.load_kwh:.1f}"]
                      for d, r in daily.iterrows()],
                     ["local day (price)", "household day (2016)", "price min EUR/kWh",
                      "mean", "max", "PV kWh", "load kWh"])
    text = f"""# Built-in demo data (`helios plan --demo`)

Four consecutive real days at 15-minute resolution, all three files on the same UTC slots
{first} .. {last}
(= 1-4 July 2023, 00:00-24:00 local time Europe/Copenhagen, which has the same offsets as
Europe/Berlin). The demo provider moves the series by whole days so that "now"
falls on the first day. **The second day (2023-07-02) has strongly negative prices**: DK1 was
{daily.attrs["negative"]}.

{files}

Format: `ts_utc` = ISO 8601 UTC start of the 15-minute slot (`Z`) + one value column.

## Sources

* `prices.csv` - day-ahead spot price, bidding zone DK1, hourly, 2023-07-01..04 local.
  {UPSTREAM["energinet_dk1"]}.
  Licence {CC_BY}. Attribution: "{ENERGINET_ATTR}".
* `pv.csv`, `load.csv` - a real house in Konstanz (DE) with ~10 kWp PV, heat pump and EV,
  hourly, 2016-07-06..09 local (4 sunny days, no missing or interpolated PV values).
  {UPSTREAM["cossmic"]}.
  Licence {CC_BY}. Attribution: "{OPSD_ATTR}".
  `load` = grid import + PV - grid export (the house has no battery; heat pump and EV included).

## Transformation (exact; `bench/make_fixtures.py` regenerates these files)

1. Prices: the 96 hourly DK1 values from {DEMO_PRICE_START:%Y-%m-%dT%H:%MZ} (UTC start) of
   `{DK1_TIDY}`; EUR/MWh / 1000 -> EUR/kWh, rounded to 5 decimals.
2. Household: the 96 hourly rows from {DEMO_HOUSE_START:%Y-%m-%dT%H:%MZ} of `{HOUSE_TIDY}`;
   `pv_kwh` / `load_kwh` (kWh per hour) = average power in kW, rounded to 3 decimals, negative
   values clipped to 0 (none in this window).
3. Calendar shift: the household hours are moved by a whole number of days
   ({(DEMO_PRICE_START - DEMO_HOUSE_START).days} days, 2016-07-06 -> 2023-07-01) onto the price days, so local
   time of day is preserved (both periods are in CEST, UTC+2).
4. 15-minute resolution: every hourly value is held on the four quarter-hours of its hour
   (prices: the hour's price; PV/load: the hour's average kW).

## Daily summary (local days)

{days}
"""
    (DEMO / "README.md").write_text(text)


def write_tests_readme() -> None:
    recs = [r for r in RECORDS if r["file"] not in ("prices.csv", "pv.csv", "load.csv")]
    table = _md_table([[f"`{r['file']}`", str(r["rows"]), f"{r['first']} .. {r['last']}",
                        f"`{r['column']}`"] for r in recs],
                      ["file", "rows", "UTC range (interval starts)", "column"])
    per_file = "\n".join(
        f"* `{r['file']}` - {r['note']}.\n  Source: shared `{r['src']}`; {UPSTREAM[r['up']]}.\n"
        f"  Licence: {_licence(r['up'])}. Attribution: \"{_attribution(r['up'])}\".\n"
        f"  Transformation: {_transform(r)}."
        for r in recs)
    text = f"""# Test fixtures

Small slices of real third-party data (CC BY 4.0 / MIT only), regenerated by
`bench/make_fixtures.py` from the team's shared data (`../shared/data`); attribution also in
the root `NOTICE`. Format (the CSV provider contract): `ts_utc` = ISO 8601 UTC start of the
interval (`Z`) + exactly one value column (`price_eur_per_kwh`, `pv_kw` or `load_kw`);
contiguous, no duplicates, no NaN.

{table}

## Per file

{per_file}

Common rules: prices EUR/MWh / 1000 -> EUR/kWh (5 decimals); hourly energy in kWh = average kW;
W / 1000 = kW; powers rounded to 3 decimals, never negative. The household cases' `price_eur_mwh`
column (epftoolbox/EPEX) and the SERF case's irradiance columns are not copied.
"""
    (TESTS / "README.md").write_text(text)


def write_notice() -> None:
    mit = (SHARED / PVA_LICENSE).read_text().strip()
    text = f"""Helios
Copyright (c) 2026 the Helios authors. Licensed under the MIT licence.

This distribution contains data derived from third-party sources (built-in demo data in
planner/demo/ and test fixtures in tests/data/). Changes were made: the data were trimmed to a
few days and re-formatted (EUR/MWh -> EUR/kWh, kWh per interval or W -> average kW, hourly
values held on 15-minute slots, tiny negative powers set to 0, household days moved onto the
price calendar) by bench/make_fixtures.py; see planner/demo/README.md and tests/data/README.md.

* Day-ahead electricity prices, bidding zones DK1 and SE3 (dataset "Elspotprices").
  {ENERGINET_ATTR}.
  Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
  https://creativecommons.org/licenses/by/4.0/

* Household PV generation and consumption, CoSSMic residential4 (Konstanz, Germany).
  {OPSD_ATTR}.
  Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
  https://creativecommons.org/licenses/by/4.0/

* PV AC power, NREL SERF East array (Golden, Colorado), as shipped in pvanalytics 0.2.2
  (pvanalytics/data/serf_east_15min_ac_power.csv). Source: National Renewable Energy
  Laboratory (NREL) via pvanalytics. Licence: MIT, reproduced below:

{mit}
"""
    (ROOT / "NOTICE").write_text(text)


# ----------------------------------------------------------------------------- check
def check() -> None:
    """Re-read every committed CSV and check the provider contract; print a summary."""
    files = sorted(DEMO.glob("*.csv")) + sorted(TESTS.glob("*.csv"))
    assert files, "no files"
    demo_index = None
    for path in files:
        size = path.stat().st_size
        frame = pd.read_csv(path, dtype={"ts_utc": str})
        assert len(frame.columns) == 2 and frame.columns[0] == "ts_utc", path
        col = frame.columns[1]
        assert col in DECIMALS, (path, col)
        assert frame.ts_utc.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z").all(), path
        index = pd.DatetimeIndex(pd.to_datetime(frame.ts_utc, utc=True))
        steps = {int(x) for x in np.diff(index.as_unit("s").asi8)}
        assert len(steps) == 1 and steps <= {900, 3600}, (path, steps)
        assert not index.duplicated().any() and index.is_monotonic_increasing, path
        assert frame[col].notna().all() and np.isfinite(frame[col]).all(), path
        assert (frame[col].round(DECIMALS[col]) == frame[col]).all(), path
        if col != PRICE_COL:
            assert (frame[col] >= 0).all(), path
        assert size < MAX_BYTES, (path, size)
        if path.parent == DEMO:
            assert steps == {900} and len(frame) == 96 * DEMO_DAYS, path
            demo_index = index if demo_index is None else demo_index
            assert index.equals(demo_index), f"{path}: not on the same slots as the other demo files"
        v = frame[col]
        print(f"{path.relative_to(ROOT)!s:50} {len(frame):4d} rows {frame.ts_utc.iloc[0]} .. "
              f"{frame.ts_utc.iloc[-1]} step {steps.pop() // 60:2d} min {size:6d} B  {col:17} "
              f"min {v.min():9.5g} max {v.max():9.5g} mean {v.mean():9.5g}")


def main(argv: list[str]) -> None:
    if "--check" not in argv:
        daily = demo()
        fixtures()
        write_demo_readme(daily)
        write_tests_readme()
        write_notice()
        print("demo, local days (Europe/Copenhagen):")
        print(daily.round(5).to_string())
    check()


if __name__ == "__main__":
    main(sys.argv[1:])
