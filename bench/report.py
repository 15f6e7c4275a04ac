"""Report benchmark: size and generation time of the HTML report for a 48 h x 15 min plan.

Plans once on the built-in demo data (config.yaml: tariff, reserve, wear) for a 48 h horizon,
then times, each as the median of ``--repeat`` runs:

* baselines  -- both baselines simulated on the plan's inputs (``planner.plan.baselines.compare``)
* record     -- the plan as history rows (``record.record_from_result``)
* render     -- Jinja2 template -> one HTML string (``report.render``)
* write      -- render + atomic write (what ``helios plan`` adds for the report)
* save       -- one transaction into a fresh SQLite history (``Store.save``)
* from DB    -- ``Store.load`` + render + write (what ``helios report --plan ID`` does)

Run: python3 bench/report.py [--repeat 20] [--out /tmp/helios-report.html]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", default=None, help="keep the report here")
    args = parser.parse_args()

    from planner import config as config_mod
    from planner.history import store as store_mod
    from planner.plan import baselines, run
    from planner.plan import record as record_mod
    from planner.report import html as report

    cfg = config_mod.load(ROOT / "config.yaml")
    now = pd.Timestamp.now(tz="UTC").floor("D")
    result = run.plan_once(cfg, now)
    n = len(result.schedule.slots)
    hours = n * result.schedule.slot_s / 3600

    tmp = Path(tempfile.mkdtemp(prefix="helios-bench-"))
    out = Path(args.out) if args.out else tmp / "report.html"
    comparison = baselines.compare(result.plan, cfg)
    record = record_mod.record_from_result(result, cfg, comparison)

    t_base = _median_ms(lambda: baselines.compare(result.plan, cfg), args.repeat)
    t_rec = _median_ms(lambda: record_mod.record_from_result(result, cfg, comparison),
                       args.repeat)
    t0 = time.perf_counter()
    html = report.render(record)  # first render: compiles the template
    t_first = (time.perf_counter() - t0) * 1000
    t_render = _median_ms(lambda: report.render(record), args.repeat)
    t_write = _median_ms(lambda: report.write(record, str(out)), args.repeat)
    size = out.stat().st_size

    with store_mod.Store(f"sqlite:///{tmp}/helios.db") as store:
        store.ensure_schema()
        t_save = _median_ms(lambda: store.save(record), args.repeat)
        plan_id = store.save(record)
        from_db = tmp / "from-db.html"
        t_db = _median_ms(lambda: report.write(store.load(plan_id), str(from_db)), args.repeat)
        same = from_db.read_bytes() == report.render(
            store_mod.RunRecord(record.run, record.slots, plan_id)).encode()

    print(f"plan: {n} slots of {result.schedule.slot_s // 60} min = {hours:.0f} h, "
          f"status {result.schedule.status}")
    print(f"report: {size} bytes ({len(html.encode())} rendered), of which uPlot "
          f"{len(report._vendor('uPlot.iife.min.js'))} bytes")
    print(f"baselines {t_base:.1f} ms | record {t_rec:.1f} ms | first render {t_first:.1f} ms | "
          f"render {t_render:.1f} ms | render+write {t_write:.1f} ms")
    print(f"history save (SQLite, one transaction) {t_save:.1f} ms | "
          f"load + render + write from DB {t_db:.1f} ms | identical to fresh: {same}")
    print(f"report added to `helios plan` (baselines + record + render + write): "
          f"{t_base + t_rec + t_write:.1f} ms (median of {args.repeat})")
    print(f"report file: {out}")


if __name__ == "__main__":
    main()
