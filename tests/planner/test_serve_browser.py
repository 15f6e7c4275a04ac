"""helios serve in a real headless Chromium: the live page follows ``measurements``, a pause
or an override made in the page reaches the executor, no console errors, usable at 390 px
wide.

The Chromium fixture is the report's (tests/planner/test_report.py); with CI=true a missing
/usr/bin/chromium fails instead of skipping.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest
from test_report import chromium  # noqa: F401 - the fixture, shared with the report's test
from test_serve import demo_folder, start  # noqa: F401 - fixtures and the server starter

from executor import config as executor_config
from executor import overrides, pause
from executor.__main__ import build as build_executor
from executor.control import Apply, Release

WIDTH = 390


def _errors(cdp) -> list[dict]:
    return [e for e in cdp.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded"
                and e["params"]["entry"]["level"] == "error")]


def _js(cdp, expression: str):
    res = cdp.call("Runtime.evaluate", expression=expression, returnByValue=True)
    assert "exceptionDetails" not in res, res
    return res["result"].get("value")


def _wait(cdp, expression: str, timeout_s: float = 8.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = _js(cdp, expression)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {expression}")


def _open(cdp, url: str) -> None:
    cdp.events.clear()
    cdp.call("Page.navigate", url=url)
    cdp.wait_event("Page.loadEventFired")


def _click(cdp, selector: str) -> None:
    """A real mouse click in the middle of an element (scrolled into view): it must be
    inside the 390 px viewport to be clickable at all."""
    rect = _js(cdp, f"""(() => {{ const e = document.querySelector({selector!r});
        e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
        return {{x: r.left + r.width / 2, y: r.top + r.height / 2, right: r.right,
                 left: r.left}}; }})()""")
    assert 0 <= rect["left"] and rect["right"] <= WIDTH, (selector, rect)
    for kind in ("mousePressed", "mouseReleased"):
        cdp.call("Input.dispatchMouseEvent", type=kind, x=rect["x"], y=rect["y"],
                 button="left", clickCount=1)


@pytest.fixture
def phone(chromium):  # noqa: F811 - the imported fixture
    cdp = chromium
    for domain in ("Runtime", "Log", "Page"):
        cdp.call(f"{domain}.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=844,
             deviceScaleFactor=1, mobile=True)
    return cdp


@pytest.fixture
def site(demo_folder, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    folder = tmp_path / "site"
    shutil.copytree(demo_folder, folder)
    s, server = start(folder, monkeypatch, poll_s=0.3)
    yield s
    server.shutdown()
    server.server_close()
    s.home.history.store.dispose()


def test_live_page_follows_measurements_and_its_pause_reaches_the_executor(site, phone):
    cdp = phone
    executor = build_executor(executor_config.default(str(site.folder)))
    try:
        assert "paused" not in executor.tick().reason
        _open(cdp, site.url + "/")
        assert _js(cdp, "document.body.dataset.measuredAt") == ""
        assert "(plan)" in _js(cdp, "document.getElementById('soc').textContent")
        at = datetime.now(timezone.utc) - timedelta(seconds=2)
        site.add_measurements([{"measured_at": at, "soc_pct": 42.4, "battery_power_w": 800.0,
                                "grid_power_w": -150.0, "pv_power_w": 1900.0,
                                "load_power_w": 2550.0, "source": "test"}])
        _wait(cdp, "document.getElementById('soc').textContent === '42.4 %'")
        assert _js(cdp, "document.getElementById('pv').textContent") == "1.90 kW"
        assert _js(cdp, "document.getElementById('grid').textContent") == "-0.15 kW"
        assert _js(cdp, "document.getElementById('load').textContent") == "2.55 kW"

        # pause from the page: type the token, choose 2 hours, click Pause
        _click(cdp, "#token")
        cdp.call("Input.insertText", text=site.token)
        _js(cdp, "document.getElementById('until').value = '2h'")
        _click(cdp, "#pause")
        _wait(cdp, "document.getElementById('control-msg').className === 'good'")
        assert _js(cdp, "document.body.dataset.paused") == "1"
        until = pause.read(site.home.pause_path)
        assert until is not None and until > datetime.now(timezone.utc) + timedelta(minutes=119)
        decision = executor.tick()  # the executor reads the same file on its next tick
        assert isinstance(decision, Release) and decision.reason.startswith("paused until")

        _click(cdp, "#resume")
        _wait(cdp, "document.body.dataset.paused === '0'")
        assert pause.read(site.home.pause_path) is None
        assert "paused" not in executor.tick().reason

        assert _errors(cdp) == []
        # a wrong token is refused and says so in the page (the browser logs the 403)
        _js(cdp, "document.getElementById('token').value = 'wrong-token-wrong-token'")
        _click(cdp, "#pause")
        _wait(cdp, "document.getElementById('control-msg').className === 'bad'")
        assert _js(cdp, "document.getElementById('control-msg').textContent") == "wrong token"
        assert pause.read(site.home.pause_path) is None
        assert _js(cdp, "document.documentElement.scrollWidth") <= WIDTH
        assert [(e["params"]["entry"]["url"], e["params"]["entry"]["text"][-15:])
                for e in _errors(cdp)] == [(site.url + "/api/pause", "403 (Forbidden)")]
    finally:
        executor.shutdown()


def test_every_page_fits_390_px_without_console_errors(site, phone):
    cdp = phone
    now = datetime.now(timezone.utc)
    site.add_measurements([{"measured_at": now - timedelta(minutes=m), "soc_pct": 50.0 + m,
                            "battery_power_w": -500.0, "grid_power_w": 200.0,
                            "pv_power_w": 900.0, "load_power_w": 600.0, "source": "test"}
                           for m in range(1, 6)])
    for path, charts in (("/", 0), ("/plan", 5), ("/history", 1)):
        _open(cdp, site.url + path)
        state = _js(cdp, """(() => {
            const canvases = [...document.querySelectorAll('.uplot canvas')];
            return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                    charts: (window.heliosCharts || []).length,
                    painted: canvases.map(c => {
                        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
                        return n; }),
                    nav: [...document.querySelectorAll('nav a')].map(a => {
                        const r = a.getBoundingClientRect(); return r.right <= 390 && r.width > 0;
                    })};
        })()""")
        assert state["inner"] == WIDTH and state["scroll"] <= WIDTH, (path, state)
        assert state["charts"] == charts, (path, state)
        assert all(n > 500 for n in state["painted"]), (path, state["painted"])
        assert all(state["nav"]) and len(state["nav"]) == 3, path
        assert _errors(cdp) == [], (path, _errors(cdp))
    # the history table scrolls inside its box, not the page
    assert _js(cdp, "document.querySelectorAll('#days tbody tr').length") >= 1


def test_an_override_made_in_the_page_reaches_the_executor(site, phone):
    """Add a ``hold`` in the live page: it is listed, written to the executor's overrides
    file, and the executor (dry-run driver: the simulated plant) never discharges on its next
    ticks; cleared in the page, it is gone from the file."""
    cdp = phone
    executor = build_executor(executor_config.default(str(site.folder)))
    try:
        assert executor.overrides_path == site.home.overrides_path
        _open(cdp, site.url + "/")
        assert _js(cdp, "document.body.dataset.overrides") == ""
        _click(cdp, "#token")
        cdp.call("Input.insertText", text=site.token)
        _js(cdp, "document.getElementById('ovr-kind').value = 'hold'")
        _js(cdp, "document.getElementById('ovr-for').value = '2h'")
        _click(cdp, "#ovr-reason")
        cdp.call("Input.insertText", text="guests tonight")
        _click(cdp, "#ovr-add")
        _wait(cdp, "document.getElementById('override-msg').className === 'good'")
        assert _js(cdp, "document.body.dataset.overrides") == "1"
        assert "guests tonight" in _js(cdp, "document.getElementById('overrides').textContent")
        found, problem = overrides.read(site.home.overrides_path)
        assert problem is None and [(o.kind, o.reason) for o in found] == [
            ("hold", "guests tonight")]
        for _ in range(3):  # the executor reads the same file on every tick
            decision = executor.tick()
            assert isinstance(decision, Apply), decision.reason
            assert "override #1 hold" in decision.reason
            assert decision.setpoint.battery_power_w <= 1e-6
        _click(cdp, "#ovr-clear-1")
        _wait(cdp, "document.body.dataset.overrides === ''")
        assert overrides.read(site.home.overrides_path) == ([], None)
        assert "override" not in executor.tick().reason
        assert _errors(cdp) == []
        assert _js(cdp, "document.documentElement.scrollWidth") <= WIDTH
    finally:
        executor.shutdown()
