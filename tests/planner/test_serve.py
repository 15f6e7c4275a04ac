"""helios serve: the JSON API and the security rules against a real server on 127.0.0.1.

Every test runs on a copy of a folder where ``helios plan --demo`` ran (schedule.json +
helios.db), with the server on a random free port in a thread.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from executor import pause
from executor.plansource import HttpSource, Unchanged
from executor.schedule import format_utc
from executor.schedule import read as read_schedule
from planner.cli.common import load_config
from planner.core.errors import ConfigError
from planner.core.site import SiteSpec
from planner.history.store import Store
from planner.serve import security
from planner.serve.app import App, make_server
from planner.serve.data import Home


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory) -> Path:
    """A folder where ``helios plan --demo`` ran (once per session, ~2 s)."""
    folder = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([sys.executable, "-m", "planner", "plan", "--demo", "--quiet"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HELIOS_CONFIG": ""})
    assert proc.returncode == 0, proc.stderr
    assert {"schedule.json", "helios.db"} <= {p.name for p in folder.iterdir()}
    return folder


@dataclass
class Served:
    """A running server and what a test needs to talk to it."""

    url: str
    port: int
    folder: Path
    home: Home
    app: App
    token: str

    def request(self, path: str, method: str = "GET", body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def get_json(self, path: str) -> dict:
        status, _, body = self.request(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def post(self, path: str, doc: dict | None = None, token: str | None = "",
             headers: dict | None = None) -> tuple[int, dict]:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token or self.token}"
        status, _, body = self.request(path, "POST", json.dumps(doc or {}).encode(), hdrs)
        return status, json.loads(body)

    def add_measurements(self, rows: list[dict]) -> None:
        with Store(self.home.cfg.storage.url) as store:
            store.add_measurements(rows)


def start(folder: Path, monkeypatch, poll_s: float = 3.0) -> tuple[Served, object]:
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HELIOS_CONFIG", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    cfg = load_config(None, demo=True) if not (folder / "config.yaml").exists() \
        else load_config(str(folder / "config.yaml"))
    home = Home.from_config(cfg)
    token = security.load_token(folder, folder / security.TOKEN_FILE)
    app = App(home, token, poll_s=poll_s, demo=True)
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served = Served(f"http://127.0.0.1:{app.port}", app.port, folder, home, app, token.value)
    return served, server


@pytest.fixture
def served(demo_folder, tmp_path, monkeypatch):
    folder = tmp_path / "site"
    shutil.copytree(demo_folder, folder)
    s, server = start(folder, monkeypatch)
    yield s
    server.shutdown()
    server.server_close()
    s.home.history.store.dispose()


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------------------------
# the API


def test_status_reads_the_current_slot_and_the_newest_measurement(served):
    doc = served.get_json("/api/status")
    plan = read_schedule(served.folder / "schedule.json")
    slot = plan.slot_at(_now())
    assert doc["slot"]["start"] == format_utc(slot.start)
    assert doc["slot"]["action"] == slot.action and doc["slot"]["reason"] == slot.reason
    assert doc["slot"]["buy_eur_per_kwh"] == slot.buy_eur_per_kwh
    assert doc["plan"]["generated_at"] == format_utc(plan.generated_at)
    assert doc["next"] and doc["next"].endswith(".")
    assert doc["measurement"] is None and doc["pause"] == {"paused": False, "until": None,
                                                           "forever": False}
    at = _now() - timedelta(seconds=20)
    served.add_measurements([{"measured_at": at, "soc_pct": 55.5, "battery_power_w": -1200.0,
                              "grid_power_w": 300.0, "pv_power_w": 2500.0,
                              "load_power_w": None, "source": "test"}])
    m = served.get_json("/api/status")["measurement"]
    assert m["soc_pct"] == 55.5 and m["grid_power_w"] == 300.0 and m["pv_power_w"] == 2500.0
    assert m["load_power_w"] == 2500.0 + 300.0 - 1200.0  # the AC balance, signs + = into home
    assert 15 <= m["age_s"] <= 60 and m["stale"] is False and m["source"] == "test"
    assert m["simulated"] is False


def test_schedule_is_the_file_byte_for_byte_with_an_etag(served):
    status, headers, body = served.request("/api/schedule")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == (served.folder / "schedule.json").read_bytes()
    status, _, body = served.request("/api/schedule",
                                     headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""


def test_the_executor_fetches_its_plan_from_serve(served):
    source = HttpSource(served.url + "/api/schedule")
    plan = source.fetch()
    assert plan == read_schedule(served.folder / "schedule.json")
    with pytest.raises(Unchanged):
        source.fetch()


def test_plans_lists_the_history_newest_first(served):
    doc = served.get_json("/api/plans")
    assert [p["id"] for p in doc["plans"]] == [1]
    p = doc["plans"][0]
    assert p["status"] == "optimal" and p["created_at"].endswith("Z")
    assert p["savings_vs_no_battery_eur"] == pytest.approx(
        p["baseline_no_battery_eur"] - p["net_cost_eur"])
    assert served.get_json("/api/plans?limit=1")["plans"][0]["id"] == 1


def test_savings_from_measurements_against_both_counterfactuals(served):
    """One slot: the battery covers a 1 kW load from 60 % (grid 0); priced with the plan."""
    plan = read_schedule(served.folder / "schedule.json")
    slot = plan.slot_at(_now())
    spec = SiteSpec.from_config(served.home.cfg)
    rows = []
    for minute in range(1, 15):
        soc = 60.0 - 2.5 * (minute - 1) / 13  # 60 % -> 57.5 %: 0.25 kWh of 10 kWh
        rows.append({"measured_at": slot.start + timedelta(minutes=minute), "soc_pct": soc,
                     "battery_power_w": 1000.0, "grid_power_w": 0.0, "pv_power_w": 0.0,
                     "load_power_w": 1000.0, "source": "test"})
    # a simulated plant's row in the same slot is never counted as what the home paid
    served.add_measurements(rows)
    served.add_measurements([{  # (its own insert: an executemany takes the first row's keys)
        "measured_at": slot.start + timedelta(minutes=7), "soc_pct": 5.0,
        "battery_power_w": 0.0, "grid_power_w": 90000.0, "pv_power_w": 0.0,
        "load_power_w": 90000.0, "source": "simulated", "simulated": True}])
    doc = served.get_json("/api/savings?days=1")
    assert len(doc["days"]) == 1 and doc["days"][0]["slots_measured"] == 1
    d = doc["days"][0]
    tv = served.home.history.newest().run["terminal_value_eur_per_kwh"]
    buy, dt_h, cap = slot.buy_eur_per_kwh, 0.25, spec.capacity_kwh
    wear = spec.wear_eur_per_kwh
    actual = wear * 0.25 - tv * (-2.5 / 100 * cap)      # no grid; 0.25 kWh out of the battery
    none = buy * 1.0 * dt_h                              # the load from the grid
    drawn = 1.0 * dt_h / spec.discharge_efficiency       # self-consumption discharges too
    self_c = wear * 0.25 - tv * (-drawn)
    assert d["actual"]["bill_eur"] == pytest.approx(0.0, abs=1e-9)
    assert d["actual"]["net_cost_eur"] == pytest.approx(actual, abs=1e-4)
    assert d["no_battery"]["bill_eur"] == pytest.approx(none, abs=1e-4)
    assert d["self_consumption"]["net_cost_eur"] == pytest.approx(self_c, abs=1e-4)
    assert d["savings_vs_no_battery_eur"] == pytest.approx(none - actual, abs=1e-4)
    assert d["savings_vs_self_consumption_eur"] == pytest.approx(self_c - actual, abs=1e-4)
    assert doc["total"]["savings_vs_no_battery_eur"] == pytest.approx(none - actual, abs=1e-4)
    # the SoC series has the planned and the actual SoC of that slot (at its end)
    end = int((slot.start + timedelta(seconds=plan.slot_s)).timestamp())
    i = doc["soc"]["x"].index(end)
    assert doc["soc"]["actual"][i] == pytest.approx(57.5, abs=0.01)
    assert doc["soc"]["planned"][i] == pytest.approx(slot.soc_pct, abs=0.01)


def test_pause_and_resume_write_the_executors_pause_file(served):
    status, doc = served.post("/api/pause", {"until": "2h"})
    assert status == 200, doc
    until = pause.read(served.home.pause_path)
    assert until is not None and timedelta(minutes=119) < until - _now() <= timedelta(hours=2)
    assert doc["status"]["pause"]["paused"] is True
    assert served.get_json("/api/status")["pause"]["until"] == format_utc(until)
    status, doc = served.post("/api/pause", {"until": "forever"})
    assert status == 200 and pause.read(served.home.pause_path) == pause.FOREVER
    status, doc = served.post("/api/resume")
    assert status == 200 and doc["message"] == "resumed"
    assert pause.read(served.home.pause_path) is None
    # curl-style form input works too
    status, _, body = served.request("/api/pause", "POST", b"until=30m", {
        "Authorization": f"Bearer {served.token}",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert pause.read(served.home.pause_path) > _now() + timedelta(minutes=29)


def test_pages_render(served):
    for path, marker in (("/", b'id="pause"'), ("/plan", b'id="chart-soc"'),
                         ("/history", b'id="days"')):
        status, headers, body = served.request(path)
        assert status == 200 and headers["Content-Type"].startswith("text/html"), path
        assert marker in body, path
        assert b"<script src" not in body and b"cdn" not in body.lower()  # all inlined


def test_serve_demo_cli_in_the_plan_demo_folder(demo_folder, tmp_path):
    folder = tmp_path / "cli"
    shutil.copytree(demo_folder, folder)
    env = {k: v for k, v in os.environ.items() if k not in ("HELIOS_CONFIG", "STATE_DIRECTORY")}
    with subprocess.Popen([sys.executable, "-m", "planner", "serve", "--demo", "--port", "0"],
                          cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env) as proc:
        try:
            lines = [proc.stdout.readline(), proc.stdout.readline()]
            assert "created a new API token in" in lines[0], lines
            url = lines[1].split()[1]
            assert url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(url + "api/status", timeout=10) as resp:
                assert json.load(resp)["slot"] is not None
            token = (folder / security.TOKEN_FILE).read_text().strip()
            assert token not in "".join(lines)  # never printed
            assert stat.S_IMODE((folder / security.TOKEN_FILE).stat().st_mode) == 0o600
        finally:
            proc.terminate()
            proc.communicate(timeout=10)


# --------------------------------------------------------------------------------------------
# security


def test_state_changes_need_the_token(served):
    status, doc = served.post("/api/pause", {"until": "1h"}, token=None)
    assert status == 401 and "token required" in doc["error"]
    status, doc = served.post("/api/pause", {"until": "1h"}, token="not-the-token-at-all")
    assert status == 403 and doc["error"] == "wrong token"
    status, _, _ = served.request("/api/resume", "POST", b"{}", {
        "X-Helios-Token": "x" * 43, "Content-Type": "application/json"})
    assert status == 403
    assert not os.path.exists(served.home.pause_path)
    # a token in the URL is not a token
    status, _, _ = served.request(f"/api/pause?token={served.token}", "POST", b"{}",
                                  {"Content-Type": "application/json"})
    assert status == 401 and not os.path.exists(served.home.pause_path)


def test_cross_origin_posts_are_refused(served):
    for headers in ({"Origin": "http://evil.example"},
                    {"Origin": f"http://localhost:{served.port + 1}"},
                    {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}):
        status, doc = served.post("/api/pause", {"until": "1h"}, headers=headers)
        assert status == 403 and "cross-origin" in doc["error"], headers
    assert not os.path.exists(served.home.pause_path)
    status, _ = served.post("/api/pause", {"until": "1h"},
                            headers={"Origin": served.url, "Sec-Fetch-Site": "same-origin"})
    assert status == 200


def test_host_header_must_name_this_server(served):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    for host in ("evil.example", f"evil.example:{served.port}", f"127.0.0.1:{served.port + 1}"):
        status, _, body = served.request("/api/status", headers={"Host": host})
        assert status == 403 and b"Host header not allowed" in body, host
    for host in (f"localhost:{served.port}", f"127.0.0.1:{served.port}", f"[::1]:{served.port}"):
        assert served.request("/api/status", headers={"Host": host})[0] == 200, host


def test_no_state_change_on_get_and_no_cors(served):
    status, headers, _ = served.request("/api/pause")
    assert status == 405 and headers["Allow"] == "POST"
    status, _ = served.post("/api/status", {})
    assert status == 405
    status, headers, _ = served.request("/api/pause", "OPTIONS", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 405 and not any(k.lower().startswith("access-control") for k in headers)
    assert not os.path.exists(served.home.pause_path)


def test_bad_input_is_400_naming_the_field(served):
    cases = [({"until": "banana"}, "until:"), ({"until": 5}, "until:"),
             ({"until": "2020-01-01T00:00:00Z"}, "until: must be in the future"),
             ({"until": ""}, "until:")]
    for body, message in cases:
        status, doc = served.post("/api/pause", body)
        assert status == 400 and doc["error"].startswith(message), (body, doc)
    status, _, body = served.request("/api/pause", "POST", b"{not json", {
        "Authorization": f"Bearer {served.token}", "Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["error"].startswith("body:")
    for path, field in (("/api/plans?limit=abc", "limit"), ("/api/plans?limit=0", "limit"),
                        ("/api/savings?days=-1", "days"), ("/history?days=9999", "days")):
        status, _, body = served.request(path)
        assert status == 400 and json.loads(body)["error"].startswith(f"{field}:"), path
    assert not os.path.exists(served.home.pause_path)


def test_headers_forbid_framing_sniffing_and_foreign_scripts(served):
    status, headers, body = served.request("/plan")
    csp = headers["Content-Security-Policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1] \
        .split(";")[0]
    assert body.count(f'nonce="{nonce}"'.encode()) >= 2  # uPlot + the charts
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"


def test_no_secret_in_any_page_or_response(demo_folder, tmp_path, monkeypatch):
    folder = tmp_path / "secret-site"
    shutil.copytree(demo_folder, folder)
    secrets = {"serve_token": "serve-token-0123456789abcdef",
               "tibber_token": "tibber-secret-5f3e9a",
               "db_password": "db-pass-77c1e0"}
    (folder / "secrets.yaml").write_text(yaml.safe_dump(secrets))
    (folder / "config.yaml").write_text(
        "site: {timezone: Europe/Berlin}\n"
        "prices: {type: tibber, token: !secret tibber_token}\n"
        "pv: {type: none}\nload: {type: constant, load_kw: 0.5}\n"
        "state: {type: static, soc_pct: 50}\n"
        "storage: {url: 'sqlite:///helios.db', password: !secret db_password}\n")
    s, server = start(folder, monkeypatch)
    try:
        assert s.token == secrets["serve_token"]  # secrets.yaml wins over a token file
        s.add_measurements([{"measured_at": _now() - timedelta(seconds=5), "soc_pct": 50.0,
                             "battery_power_w": 0.0, "grid_power_w": 100.0,
                             "pv_power_w": 0.0, "load_power_w": 100.0, "source": "test"}])
        bodies = []
        for path in ("/", "/plan", "/history", "/api/status", "/api/schedule", "/api/plans",
                     "/api/savings", "/nope", "/api/plans?limit=x"):
            status, headers, body = s.request(path)
            bodies.append(json.dumps(headers).encode() + body)
        for doc in ({"until": "1h"}, {"until": "banana"}):
            status, headers, body = s.request("/api/pause", "POST", json.dumps(doc).encode(), {
                "Authorization": f"Bearer {s.token}", "Content-Type": "application/json"})
            bodies.append(json.dumps(headers).encode() + body)
        bodies.append(s.request("/api/pause", "POST", b"{}")[2])
        assert all(bodies)
        for value in secrets.values():
            assert not any(value.encode() in b for b in bodies), value
    finally:
        server.shutdown()
        server.server_close()
        s.home.history.store.dispose()


def test_token_file_is_created_once_private_and_reused(tmp_path):
    path = tmp_path / "state" / security.TOKEN_FILE
    first = security.load_token(tmp_path, path)
    assert first.created and len(first.value) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = security.load_token(tmp_path, path)
    assert again.value == first.value and not again.created
    assert first.value not in repr(first)


def test_a_short_serve_token_in_secrets_is_a_config_error(tmp_path):
    (tmp_path / "secrets.yaml").write_text("serve_token: short\n")
    with pytest.raises(ConfigError, match="serve_token: expected a token of at least 16"):
        security.load_token(tmp_path, tmp_path / "t")


def test_the_history_is_never_migrated_or_created(demo_folder, tmp_path, monkeypatch):
    folder = tmp_path / "old-schema"
    shutil.copytree(demo_folder, folder)
    with Store(f"sqlite:///{folder / 'helios.db'}") as store:
        store.downgrade("0002")
    s, server = start(folder, monkeypatch)
    try:
        doc = s.get_json("/api/status")
        assert any("schema is 0002" in p and "helios db upgrade" in p for p in doc["problems"])
        assert doc["slot"] is not None  # schedule.json still serves the live page
        status, _, body = s.request("/api/plans")
        assert status == 503 and b"helios db upgrade" in body
        assert s.request("/plan")[0] == 200 and s.request("/history")[0] == 200
        with Store(f"sqlite:///{folder / 'helios.db'}") as store:
            assert store.revision() == "0002"  # untouched
    finally:
        server.shutdown()
        server.server_close()
        s.home.history.store.dispose()
    (folder / "helios.db").unlink()
    for extra in ("helios.db-wal", "helios.db-shm"):
        (folder / extra).unlink(missing_ok=True)
    s, server = start(folder, monkeypatch)
    try:
        assert "no plan history yet" in " ".join(s.get_json("/api/status")["problems"])
        assert not (folder / "helios.db").exists()
    finally:
        server.shutdown()
        server.server_close()
