"""Run `helios plan` on bad configs and CSVs as a user would; print a Markdown table of the
exit code and the first message line for each, and check schedule.json was left untouched.

Run: python3 bench/bad_inputs.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

GOOD = {
    "prices": {"type": "csv", "path": "prices.csv"},
    "pv": {"type": "csv", "path": "pv.csv"},
    "load": {"type": "csv", "path": "load.csv"},
    "state": {"type": "static", "soc_pct": 50},
}

CONFIGS = [
    ("capacity as text", {"battery": {"capacity_kwh": "ten"}}),
    ("typo in a key", {"battery": {"capacitty_kwh": 10}}),
    ("min SoC > max SoC", {"battery": {"min_soc_pct": 80, "max_soc_pct": 20}}),
    ("slot not dividing an hour", {"planning": {"slot_s": 700}}),
    ("recalc interval > horizon", {"planning": {"horizon_h": 1, "recalc_interval_s": 7200}}),
    ("efficiency > 1", {"battery": {"charge_efficiency": 1.3}}),
    ("cycle cost given twice", {"battery": {"cycle_cost_eur_per_kwh": 0.02, "cost_eur": 5000,
                                            "cycle_life": 6000}}),
    ("unknown time zone", {"site": {"timezone": "Europe/Atlantis"}}),
    ("formula calling a function", {"tariff": {"buy": "__import__('os').system('id')"}}),
    ("formula with unknown name", {"tariff": {"buy": "spot * 1.2"}}),
    ("unknown provider type", {"prices": {"type": "tibbber"}}),
    ("export switch as text", {"grid": {"export_enabled": "yes"}}),
]

CSV_CHANGES = [
    ("naive timestamps", "prices.csv", lambda t: t.replace("Z,", ",")),
    ("a missing hour (gap)", "prices.csv", lambda t: "\n".join(
        line for i, line in enumerate(t.splitlines()) if i != 6) + "\n"),
    ("a duplicated row", "load.csv", lambda t: t + t.splitlines()[-1] + "\n"),
    ("EUR/MWh instead of EUR/kWh", "prices.csv", lambda t: t.replace(",0.", ",8")),
    ("a non-numeric value", "pv.csv", lambda t: t.replace("0.0\n", "n/a\n", 1)),
    ("negative load", "load.csv", lambda t: t.replace(",0.", ",-0.", 1)),
    ("wrong column name", "pv.csv", lambda t: t.replace("pv_kw", "pv_w", 1)),
    ("prices end before now", "prices.csv", lambda t: "\n".join(t.splitlines()[:3]) + "\n"),
]


def _write_inputs(d: Path) -> None:
    hours = [f"2026-05-01T{h:02d}:00:00Z" for h in range(24)] + \
            [f"2026-05-02T{h:02d}:00:00Z" for h in range(24)]
    (d / "prices.csv").write_text("ts_utc,price_eur_per_kwh\n" + "".join(
        f"{ts},0.{10 + i % 20}\n" for i, ts in enumerate(hours)))
    (d / "pv.csv").write_text("ts_utc,pv_kw\n" + "".join(
        f"{ts},{max(0.0, 3 - abs(12 - i % 24) / 2):.1f}\n" for i, ts in enumerate(hours)))
    (d / "load.csv").write_text("ts_utc,load_kw\n" + "".join(f"{ts},0.{4 + i % 5}\n"
                                                             for i, ts in enumerate(hours)))


def _run(d: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "planner", "plan", "--config",
                           str(d / "config.yaml"), "--now", "2026-05-01T06:00:00Z", "-q"],
                          capture_output=True, text=True)
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    detail = lines[1] if len(lines) > 1 and lines[0].endswith(":") else (lines[0] if lines else "")
    if lines and lines[0].startswith("helios: error: invalid configuration"):
        detail = " / ".join(lines[1:])
    return proc.returncode, detail


def main() -> None:
    print("| bad input | exit | message | schedule.json untouched |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _write_inputs(d)
        (d / "config.yaml").write_text(yaml.safe_dump(GOOD))
        assert _run(d)[0] == 0
        before = (d / "schedule.json").read_bytes()
        for label, change in CONFIGS:
            doc = {**GOOD, **{k: {**GOOD.get(k, {}), **v} if k in GOOD else v
                              for k, v in change.items()}}
            (d / "config.yaml").write_text(yaml.safe_dump(doc))
            code, msg = _run(d)
            same = (d / "schedule.json").read_bytes() == before
            print(f"| config: {label} | {code} | `{msg}` | {'yes' if same else 'NO'} |")
        (d / "config.yaml").write_text(yaml.safe_dump(GOOD))
        for label, name, edit in CSV_CHANGES:
            _write_inputs(d)
            path = d / name
            path.write_text(edit(path.read_text()))
            code, msg = _run(d)
            same = (d / "schedule.json").read_bytes() == before
            print(f"| CSV {name}: {label} | {code} | `{msg}` | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
