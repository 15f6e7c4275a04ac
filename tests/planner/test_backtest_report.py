"""The backtest report in a real headless Chromium: the four uPlot charts draw, no console
errors, the legend speaks local time, and it is usable at 390 px wide (the plan report's
pattern, tests/planner/test_report.py).

Data: the CoSSMic summer house (CC-BY) with the DK1 2023-07-02 prices (Energinet, CC-BY)
moved onto the house's dates (repeated every two days); three local days, hourly slots.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from backtest_data import write_week_prices
from click.testing import CliRunner
from test_report import chromium  # noqa: F401 - the fixture, shared with the report's test

from planner.cli.main import main


@pytest.fixture(scope="module")
def backtest_page(tmp_path_factory):
    data_dir = Path(__file__).resolve().parents[1] / "data"
    site = tmp_path_factory.mktemp("backtest-report")
    write_week_prices(site / "prices.csv")  # two days; repeated to cover the week
    two = pd.read_csv(site / "prices.csv")
    ts = pd.to_datetime(two["ts_utc"], utc=True)
    week = pd.concat([two.assign(ts_utc=(ts + pd.Timedelta(days=2 * k)).dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ")) for k in range(3)])
    week.to_csv(site / "prices.csv", index=False)
    (site / "config.yaml").write_text(yaml.safe_dump({
        "site": {"timezone": "Europe/Berlin"},
        "planning": {"slot_s": 3600, "horizon_h": 12},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
    }))
    out = site / "out"
    result = CliRunner().invoke(main, [
        "backtest", "--prices", str(site / "prices.csv"),
        "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
        "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
        "--config", str(site / "config.yaml"), "--from", "2016-05-06", "--to", "2016-05-09",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "report.html"


def _console_errors(cdp) -> list:
    return [e for e in cdp.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]


STATE = """(() => {
    const canvases = [...document.querySelectorAll('.uplot canvas')];
    const painted = canvases.map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
        return n;
    });
    const u = window.heliosCharts[0];
    u.setCursor({left: 1, top: 10});
    const soc = window.heliosCharts[2];
    soc.setCursor({left: 1, top: 10});
    return {charts: window.heliosCharts.length, canvases: canvases.length, painted,
            legends: [...document.querySelectorAll('.u-legend')].map(
                l => [...l.querySelectorAll('.u-label')].map(x => x.textContent)),
            firstDay: document.querySelector('#chart-daily .u-legend .u-value').textContent,
            firstSlot: document.querySelector('#chart-soc .u-legend .u-value').textContent,
            widest: Math.max(...[...document.querySelectorAll('.uplot')].map(
                e => e.getBoundingClientRect().right)),
            scrollW: document.documentElement.scrollWidth,
            rows: document.querySelectorAll('#results tbody tr').length,
            kpis: [...document.querySelectorAll('.kpi span')].map(s => s.textContent)};
})()"""


@pytest.mark.parametrize("width", [1280, 390])
def test_backtest_report_renders_in_headless_chromium(backtest_page, chromium, width):  # noqa: F811
    page = backtest_page.read_text()
    data = json.loads(page.split('id="backtest-data">', 1)[1].split("</script>", 1)[0])
    assert len(data["days"]) == 3 and len(data["soc_x"]) == 72
    cdp = chromium
    cdp.call("Runtime.enable")
    cdp.call("Log.enable")
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
             deviceScaleFactor=1, mobile=width < 500)
    cdp.call("Page.navigate", url=backtest_page.as_uri())
    cdp.wait_event("Page.loadEventFired")
    state = cdp.call("Runtime.evaluate", returnByValue=True, expression=STATE)["result"]["value"]
    assert _console_errors(cdp) == []
    assert state["charts"] == 4 and state["canvases"] == 4
    assert all(n > 1500 for n in state["painted"]), state["painted"]  # something was drawn
    assert state["legends"][0][1] == "Helios" and set(state["legends"][0][1:]) == {
        "Helios", "no battery", "self-consumption", "price rule", "perfect foresight"}
    assert state["legends"][2][1:] == ["Helios", "perfect foresight"]
    # local days and times: the first day is Fri 6 May 2016 (CEST), its first slot 00:00
    assert state["firstDay"] == "Fri 6 May 2016", state["firstDay"]
    assert state["firstSlot"] == "Fri 6 May 00:00", state["firstSlot"]
    assert state["rows"] == 5
    assert "Helios saves vs no battery" in state["kpis"]
    # usable at 390 px: the charts fit the viewport (the wide tables scroll in their own box)
    assert state["widest"] <= width + 1 and state["scrollW"] <= width + 1, state
