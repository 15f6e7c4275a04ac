"""``helios simulate`` over a week: wall time, speed reached and where the time goes.

Usage::

    python bench/simulate.py [--days 7] [--speed 500x] [--from 2016-06-13] [--out DIR]

Data: the aligned Konstanz 2016 household (CoSSMic residential4, CC-BY) with the DE-AT-LU
day-ahead prices (epftoolbox) from ``../shared/data/aligned`` (benchmark use only, never
copied into the project), cut into the three CSV files ``helios simulate`` reads (the few
slightly negative load hours of the derived file clipped to 0); a 10 kWh battery with a 30 %
reserve, an on/off water heater, an outage announced 24 h ahead. Prints the summary (the
same text as the CLI) and the run figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml
from click.testing import CliRunner

from planner.cli.main import main

ALIGNED = (Path(__file__).resolve().parents[2] / "shared" / "data" / "aligned"
           / "DE_KN_residential4_2016_with_DE-AT-LU_dayahead_1h.csv")


def write_inputs(out: Path, start: pd.Timestamp, days: float) -> None:
    """prices.csv, pv.csv, load.csv (days + 2 for the horizon), config.yaml, outages.yaml."""
    frame = pd.read_csv(ALIGNED, parse_dates=["ts_utc"])
    end = start + pd.Timedelta(days=days + 2)
    frame = frame[(frame.ts_utc >= start) & (frame.ts_utc < end)]
    ts = frame.ts_utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    pd.DataFrame({"ts_utc": ts, "price_eur_per_kwh": frame.price_eur_mwh / 1000}).to_csv(
        out / "prices.csv", index=False)
    for name, column in (("pv", "pv_kwh"), ("load", "load_kwh")):  # hourly kWh = mean kW
        pd.DataFrame({"ts_utc": ts, f"{name}_kw": frame[column].clip(lower=0)}).to_csv(
            out / f"{name}.csv", index=False)
    (out / "config.yaml").write_text(yaml.safe_dump({
        "site": {"timezone": "Europe/Berlin"},
        "battery": {"capacity_kwh": 10, "min_soc_pct": 10, "reserve_soc_pct": 30},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        "water_heater": {"power_kw": 2.0, "daily_kwh": 4.0, "modulating": False},
        "prices": {"type": "flat"}, "pv": {"type": "none"}, "load": {"type": "constant"},
        "state": {"type": "static"},
    }))
    outage = start + pd.Timedelta(days=min(days / 2, 3), hours=17)  # an evening, local
    (out / "outages.yaml").write_text(yaml.safe_dump([{
        "start": outage.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (outage + pd.Timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "announced_h": 24}]))


def run(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--speed", default="500x")
    p.add_argument("--from", dest="start", default="2016-06-12T22:00:00Z")
    p.add_argument("--out", default="/tmp/helios-bench-simulate")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_inputs(out, pd.Timestamp(args.start), args.days)
    result = CliRunner().invoke(main, [
        "simulate", "--prices", str(out / "prices.csv"), "--pv", str(out / "pv.csv"),
        "--load", str(out / "load.csv"), "--config", str(out / "config.yaml"),
        "--outages", str(out / "outages.yaml"), "--from", args.start, "--days", str(args.days),
        "--speed", args.speed, "--out", str(out / "run")])
    print(result.output)
    if result.exit_code != 0:
        return result.exit_code
    summary = json.loads((out / "run" / "summary.json").read_text())
    print(json.dumps({"run": summary["run"], "planner": summary["planner"],
                      "executor": summary["executor"], "outages": summary["outages"]},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run())
