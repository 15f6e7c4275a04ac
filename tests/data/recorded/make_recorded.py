# ruff: noqa: E501  (vendor XML quoted verbatim)
"""Write the recorded provider payloads in tests/data/recorded/ (run once; output committed).

The payloads are in each vendor's real response format, trimmed to what Helios reads; the
price values are real day-ahead prices from ../shared/data/cases (Energinet SE3 CC-BY-4.0,
ENTSO-E NL and DE-LU). Tibber's ``energy`` is taken as spot/1000 plus a 0.01 EUR/kWh margin
and ``total`` adds 0.12 EUR/kWh of tax and fees, like a German Tibber home.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

CASES = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cases")
OUT = Path(__file__).parent


def load(name: str, tz: str) -> pd.Series:
    df = pd.read_csv(CASES / name)
    idx = pd.to_datetime(df["ts_utc"], utc=True).dt.tz_convert(tz)
    return pd.Series(df["price_eur_mwh"].to_numpy(), index=idx)


def local_day(s: pd.Series, day: str) -> pd.Series:
    return s[s.index.strftime("%Y-%m-%d") == day]


def tibber_entries(s: pd.Series) -> list[dict]:
    out = []
    for ts, eur_mwh in s.items():
        energy = round(eur_mwh / 1000 + 0.01, 4)
        out.append({"total": round(energy + 0.12, 4), "energy": energy, "tax": 0.12,
                    "startsAt": ts.isoformat(timespec="milliseconds"), "currency": "EUR",
                    "level": "NORMAL"})
    return out


def tibber(today: pd.Series, tomorrow: pd.Series) -> dict:
    return {"data": {"viewer": {"homes": [{
        "id": "96a14971-525a-4420-aae9-e5aedaa129ff",
        "currentSubscription": {"priceInfo": {"today": tibber_entries(today),
                                              "tomorrow": tibber_entries(tomorrow)}}}]}}}


def nordpool(s: pd.Series, area: str, day: str, res_min: int) -> dict:
    return {"deliveryDateCET": day, "version": 3, "updatedAt": f"{day}T10:55:58.0934Z",
            "market": "DayAhead", "indexNames": [area], "currency": "EUR",
            "resolutionInMinutes": res_min,
            "areaStates": [{"state": "Final", "areas": [area]}],
            "multiIndexEntries": [
                {"deliveryStart": ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "deliveryEnd": (ts + pd.Timedelta(minutes=res_min)).tz_convert("UTC")
                 .strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "entryPerArea": {area: v}} for ts, v in s.items()]}


def entsoe(s: pd.Series, domain: str, res: str) -> str:
    step = pd.Timedelta(res.replace("PT", "").lower().replace("m", "min"))
    start = s.index[0].tz_convert("UTC")
    end = s.index[-1].tz_convert("UTC") + step
    fmt = "%Y-%m-%dT%H:%MZ"
    points = []
    prev = None
    for i, v in enumerate(s.to_numpy(), start=1):
        if v == prev:  # curveType A03: a point equal to the previous one is left out
            continue
        points.append(f"      <Point>\n        <position>{i}</position>\n"
                      f"        <price.amount>{v:g}</price.amount>\n      </Point>")
        prev = v
    body = "\n".join(points)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">
  <mRID>8f2e3b0c1d6a4e5f9a7b</mRID>
  <revisionNumber>1</revisionNumber>
  <type>A44</type>
  <sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>
  <createdDateTime>{start.strftime('%Y-%m-%dT%H:%M:%SZ')}</createdDateTime>
  <period.timeInterval>
    <start>{start.strftime(fmt)}</start>
    <end>{end.strftime(fmt)}</end>
  </period.timeInterval>
  <TimeSeries>
    <mRID>1</mRID>
    <auction.type>A01</auction.type>
    <businessType>A62</businessType>
    <in_Domain.mRID codingScheme="A01">{domain}</in_Domain.mRID>
    <out_Domain.mRID codingScheme="A01">{domain}</out_Domain.mRID>
    <contract_MarketAgreement.type>A01</contract_MarketAgreement.type>
    <currency_Unit.name>EUR</currency_Unit.name>
    <price_Measure_Unit.name>MWH</price_Measure_Unit.name>
    <curveType>A03</curveType>
    <Period>
      <timeInterval>
        <start>{start.strftime(fmt)}</start>
        <end>{end.strftime(fmt)}</end>
      </timeInterval>
      <resolution>{res}</resolution>
{body}
    </Period>
  </TimeSeries>
</Publication_MarketDocument>
"""


def main() -> None:
    nl = load("price_NL_2023-07-01_03_1h_minus500.csv", "Europe/Berlin")
    de15 = load("price_DE-LU_2026-04-30_05-02_15min_minus500.csv", "Europe/Berlin")
    se3 = load("price_SE3_2023-10-28_30_1h_DST_autumn_73h.csv", "Europe/Stockholm")
    t, d = OUT / "tibber", OUT / "nordpool"
    t.mkdir(exist_ok=True)
    d.mkdir(exist_ok=True)
    (OUT / "entsoe").mkdir(exist_ok=True)
    dump = lambda p, o: p.write_text(json.dumps(o, indent=1) + "\n")  # noqa: E731
    dump(t / "hourly_2023-07-01.json",
         tibber(local_day(nl, "2023-07-01"), local_day(nl, "2023-07-02")))
    dump(t / "tomorrow_unpublished_2023-07-01.json", tibber(local_day(nl, "2023-07-01"),
                                                           nl.iloc[:0]))
    dump(t / "dst_autumn_2023-10-29.json", tibber(local_day(se3, "2023-10-29"), se3.iloc[:0]))
    dump(t / "quarter_hourly_2026-04-30.json",
         tibber(local_day(de15, "2026-04-30"), local_day(de15, "2026-05-01")))
    dump(t / "unauthenticated.json", {"errors": [{"message": "Context creation failed: invalid "
                                                  "token", "extensions": {
                                                      "code": "UNAUTHENTICATED"}}]})
    for day in ("2023-10-28", "2023-10-29"):
        dump(d / f"SE3_{day}.json", nordpool(local_day(se3.tz_convert("Europe/Berlin"), day),
                                             "SE3", day, 60))
    dump(d / "SE3_2026-04-30_15min.json", nordpool(local_day(de15, "2026-04-30"), "SE3",
                                                   "2026-04-30", 15))
    (OUT / "entsoe" / "A44_NL_2023-07-02.xml").write_text(
        entsoe(local_day(nl, "2023-07-02"), "10YNL----------L", "PT60M"))
    (OUT / "entsoe" / "A44_DE-LU_2026-04-30_15min.xml").write_text(
        entsoe(local_day(de15, "2026-04-30"), "10Y1001A1001A82H", "PT15M"))
    (OUT / "entsoe" / "no_data.xml").write_text(
        """<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>5c3b6a0e-1f0c-4c2a</mRID>
  <createdDateTime>2023-07-02T10:11:12Z</createdDateTime>
  <Reason>
    <code>999</code>
    <text>No matching data found for Data item Day-ahead Prices [12.1.D] (10YNL----------L, 10YNL----------L) and interval 2023-07-03T22:00:00.000Z/2023-07-04T22:00:00.000Z.</text>
  </Reason>
</Acknowledgement_MarketDocument>
""")


if __name__ == "__main__":
    main()
