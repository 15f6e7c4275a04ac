"""The HTML report: self-contained, escaped, local time, same from a fresh plan and from the DB,
and rendered in a real headless Chromium without console errors (screenshot saved)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from planner import config as config_mod
from planner.cli.main import main
from planner.history import rows as rows_mod
from planner.history import schema
from planner.plan import record as record_mod
from planner.plan import run
from planner.report import html as report

NOW = "2026-05-01T10:07:00Z"
CHROMIUM = "/usr/bin/chromium"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report-screenshot.png"


def _record(site_dir, **config) -> tuple[rows_mod.RunRecord, config_mod.HeliosConfig]:
    cfg = config_mod.load(site_dir(config=config or None))
    result = run.plan_once(cfg, pd.Timestamp(NOW))
    return record_mod.record_from_result(result, cfg), cfg


def test_report_is_one_self_contained_file(site_dir):
    rec, _ = _record(site_dir)
    html = report.render(rec)
    lowered = html.lower()
    # no external resource of any kind: no src/href to a network, no CDN, no @import
    assert "<script src" not in lowered and "<link" not in lowered
    assert "cdn" not in lowered and "@import" not in lowered
    for attr in ("src=\"http", "href=\"http", "src='http", "href='http", "url(http"):
        assert attr not in lowered
    assert "uPlot" in html and "The MIT License" in html  # vendored with its licence
    # every chart has its placeholder; the data are inlined as JSON
    for chart in ("prices", "pv", "battery", "soc", "grid"):
        assert f'id="chart-{chart}"' in html
    data = json.loads(html.split('id="plan-data">', 1)[1].split("</script>", 1)[0])
    assert len(data["x"]) == len(rec.slots) + 1
    assert data["tz"] == "Europe/Berlin"


def test_report_shows_local_time_costs_and_inputs(site_dir):
    rec, _ = _record(site_dir)
    html = report.render(rec)
    # 10:00 UTC is 12:00 CEST in Berlin: the first slot row and the window say so
    assert "Fri 01 May 12:00 CEST" in html
    assert ">Fri 12:00 <small>CEST</small>" in html
    assert "10:00 UTC" not in html
    for label in ("Helios plan", "Battery in plain self-consumption", "No battery",
                  "Helios saves"):
        assert label in html
    assert "prices" in html and "csv" in html and "fresh (fetched this run)" in html
    costs = rec.run["baselines"]
    assert f"{costs['plan']['net_cost_eur']:,.2f}" in html


def test_report_escapes_everything(site_dir):
    rec, _ = _record(site_dir)
    slots = rec.slots.copy()
    slots.iloc[0, slots.columns.get_loc("reason")] = "<script>alert(1)</script> & co"
    run_row = dict(rec.run)
    run_row["inputs"] = [dict(run_row["inputs"][0], source="</script><b>x</b>")]
    html = report.render(rows_mod.RunRecord(run_row, slots, 7))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "</script><b>x</b>" not in html


def _slot_cells(html: str) -> list[list[str]]:
    """The slot table's cells, row by row, as text (tags stripped)."""
    import re

    body = html.split('id="slots"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_report_shows_each_slots_intent_and_band(site_dir):
    rec, _ = _record(site_dir)
    html = report.render(rec)
    assert "<th>action</th><th>intent</th>" in html
    cells = _slot_cells(html)
    assert len(cells) == len(rec.slots)
    full = report.full_range(rec.slots)
    assert full == (-5.0, 5.0)  # the site's battery: 5 kW each way
    seen = set()
    for row, (_, slot) in zip(cells, rec.slots.iterrows(), strict=True):
        action, intent = row[1], row[2]
        assert action == slot.action
        band = report.band_text(slot.battery_min_kw, slot.battery_max_kw, full)
        expected = f"{slot.intent} battery {band}" if band else slot.intent
        assert intent == expected, (intent, expected)
        seen.add((slot.intent, band))
    # every intent this plan uses is shown with the part of its band that binds
    assert ("hold", "≤ +0.00 kW") in seen  # no discharge
    assert ("charge_grid", "= −5.00 kW") in seen  # full power from the grid
    assert any(i == "discharge_grid" and b.startswith(("≥ +", "= +")) for i, b in seen)
    assert "Intent: what the executor does in the slot" in html


def test_band_text():
    full = (-5.0, 5.0)
    assert report.band_text(-5.0, 5.0, full) == ""  # the full range: nothing to say
    assert report.band_text(-5.0, 0.0, full) == "≤ +0.00 kW"
    assert report.band_text(1.2, 5.0, full) == "≥ +1.20 kW"
    assert report.band_text(-2.0, 5.0, full) == "≥ −2.00 kW"
    assert report.band_text(-3.0, -0.5, full) == "−3.00 … −0.50 kW"
    assert report.band_text(0.0, 0.0, full) == "= +0.00 kW"
    assert report.full_range(pd.DataFrame({"intent": ["hold", "self_consume"],
                                           "battery_min_kw": [-4.0, -3.0],
                                           "battery_max_kw": [0.0, 2.5]})) == (-3.0, 2.5)


def test_report_of_a_plan_without_intents(site_dir):
    rec, _ = _record(site_dir)
    slots = rec.slots.copy()
    for name in schema.INTENT_SLOT_FIELDS:  # a plan saved before schedule 1.1
        slots[name] = pd.Series([None] * len(slots), index=slots.index, dtype=object)
    html = report.render(rows_mod.RunRecord(rec.run, slots, 3))
    assert {row[2] for row in _slot_cells(html)} == {"—"}
    assert "derives each slot's intent from its flows" in html


def test_dst_autumn_day_shows_both_offsets(site_dir):
    cfg = config_mod.load(site_dir(start="2026-10-24T00:00:00Z", hours=72))
    result = run.plan_once(cfg, pd.Timestamp("2026-10-24T22:00:00Z"))
    html = report.render(record_mod.record_from_result(result, cfg))
    assert "<small>CEST</small>" in html and "<small>CET</small>" in html
    # the repeated local hour 02:00-03:00 appears twice, once per offset
    assert html.count(">Sun 02:00 <small>") == 2


def test_plan_writes_report_identical_to_report_from_db(site_dir):
    cfg_path = site_dir(config={"report": {"path": "out/report.html"}})
    (cfg_path.parent / "out").mkdir()
    runner = CliRunner()
    res = runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", NOW])
    assert res.exit_code == 0, res.output
    assert "saved plan 1" in res.output and "report.html" in res.output
    fresh = (cfg_path.parent / "out" / "report.html").read_bytes()
    again = cfg_path.parent / "again.html"
    res = runner.invoke(main, ["report", "--config", str(cfg_path), "--plan", "1",
                               "--out", str(again)])
    assert res.exit_code == 0, res.output
    assert again.read_bytes() == fresh


def test_report_unknown_plan_is_a_clear_error(site_dir):
    cfg_path = site_dir()
    runner = CliRunner()
    assert runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", NOW,
                                "-q"]).exit_code == 0
    res = runner.invoke(main, ["report", "--config", str(cfg_path), "--plan", "99"])
    assert res.exit_code == 6
    assert "no plan with id 99 (newest is 1)" in res.output


# --------------------------------------------------------------------------------------------
# a real browser


class _DevTools:
    """A tiny Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout_s: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout_s
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def chromium(tmp_path):
    """A headless Chromium with remote debugging on a random loopback port."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    profile = tempfile.mkdtemp(prefix="helios-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1",
         "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = Path(profile) / "DevToolsActivePort"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("chromium did not open its DevTools port within 20 s")
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as resp:
            targets = json.load(resp)
        page = next(t for t in targets if t["type"] == "page")
        tools = _DevTools(page["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_in_headless_chromium(site_dir, chromium, tmp_path):
    rec, _ = _record(site_dir, tariff={"buy": "(price + 0.15) * 1.19", "sell": "price"},
                     battery={"reserve_soc_pct": 25, "cycle_cost_eur_per_kwh": 0.02})
    page = tmp_path / "report.html"
    # the solve time is the one number that changes from run to run; fixing it keeps the
    # screenshot in docs/ byte-identical across test runs (no dirty work tree)
    run_row = {**rec.run, "solve_s": 0.025}
    report.write(rows_mod.RunRecord(run_row, rec.slots, 1), str(page))
    cdp = chromium
    cdp.call("Runtime.enable")
    cdp.call("Log.enable")
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000,
             deviceScaleFactor=1, mobile=False)
    cdp.call("Page.navigate", url=page.as_uri())
    cdp.wait_event("Page.loadEventFired")
    state = cdp.call("Runtime.evaluate", returnByValue=True, expression="""(() => {
        const canvases = [...document.querySelectorAll('.uplot canvas')];
        const painted = canvases.map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
            return n;
        });
        const u = window.heliosCharts[0];
        u.setCursor({left: 1, top: 10});  // hover the first slot: the legend shows its time
        const intents = [...document.querySelectorAll('#slots tbody td.intent')];
        return {charts: window.heliosCharts.length, canvases: canvases.length, painted,
                legends: document.querySelectorAll('.u-legend').length,
                rows: document.querySelectorAll('#slots tbody tr').length,
                first: document.querySelector('#chart-prices .u-legend .u-value').textContent,
                heads: [...document.querySelectorAll('#slots thead th')].map(t => t.textContent),
                intents: intents.map(td => td.querySelector('.tag').textContent),
                bands: intents.map(td => (td.querySelector('.band') || {}).textContent || ''),
                bandShown: intents.map(td => {
                    const b = td.querySelector('.band');
                    return b ? b.getBoundingClientRect().height > 0 : null;
                }),
                titles: intents.map(td => td.title)};
    })()""")["result"]["value"]
    errors = [e for e in cdp.events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled"
                  and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    assert state["charts"] == 5 and state["canvases"] == 5 and state["legends"] == 5
    assert all(n > 2000 for n in state["painted"]), state["painted"]  # lines were drawn
    assert state["rows"] == len(rec.slots)
    # the charts speak local time: the first slot, 10:00Z, is shown as Fri 12:00 (CEST)
    assert state["first"] == "Fri 12:00", state["first"]
    # the slot table shows each slot's intent right after its action, with its band when the
    # band is narrower than the battery's full range (what the executor will do)
    assert state["heads"][1:3] == ["action", "intent"]
    assert state["intents"] == list(rec.slots["intent"])
    full = report.full_range(rec.slots)
    bands = [report.band_text(lo, hi, full) for lo, hi in
             zip(rec.slots["battery_min_kw"], rec.slots["battery_max_kw"], strict=True)]
    assert state["bands"] == [f"battery {b}" if b else "" for b in bands]
    assert any(state["bands"]) and all(shown is not False for shown in state["bandShown"])
    assert all(t.startswith("battery ") and t.endswith("kW (+ = discharge)")
               for t in state["titles"])
    shot = cdp.call("Page.captureScreenshot", format="png",
                    clip={"x": 0, "y": 0, "width": 1280, "height": 1500, "scale": 1},
                    captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    out = tmp_path / "report-screenshot.png"
    out.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    # refresh the picture the README and docs show only when asked: a test run must never
    # dirty the work tree (HELIOS_UPDATE_SCREENSHOT=1 python3 -m pytest -k screenshot)
    if os.environ.get("HELIOS_UPDATE_SCREENSHOT") == "1" and len(png) < 300_000:
        DOCS_SCREENSHOT.write_bytes(png)
