"""MQTT publishing with Home Assistant discovery, against the real Mosquitto broker on
127.0.0.1:1883 (`.ci/run` starts it; with CI=true an unreachable broker is a failure).

Each test uses its own device id and topic prefix, and clears its retained messages after.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from executor import pause
from executor.schedule import format_utc
from executor.schedule import read as read_schedule
from planner.cli import doctor
from planner.cli.common import load_config
from planner.config import MqttConfig
from planner.core.errors import ConfigError
from planner.history.store import Store
from planner.serve.data import Home
from planner.serve.mqtt import ENTITIES, Publisher, check_config

BROKER = ("127.0.0.1", 1883)


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def broker():
    if not _broker_up():
        if os.environ.get("CI") == "true":
            pytest.fail("no MQTT broker on 127.0.0.1:1883 (.ci/run starts mosquitto)")
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (apt-get install mosquitto)")


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mqttdemo")
    proc = subprocess.run([sys.executable, "-m", "planner", "plan", "--demo", "--quiet"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HELIOS_CONFIG": ""})
    assert proc.returncode == 0, proc.stderr
    return folder


class Listener:
    """A real subscriber: every message on the given filters, the newest per topic."""

    def __init__(self, *filters: str):
        self.messages: dict[str, bytes] = {}
        self.retained: dict[str, bool] = {}
        self.seen = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a, **k: ready.set()
        self.client.connect(*BROKER, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        assert ready.wait(5), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg) -> None:
        with self.seen:
            self.messages[msg.topic] = msg.payload
            self.retained[msg.topic] = bool(msg.retain)
            self.seen.notify_all()

    def wait(self, predicate, timeout_s: float = 10.0) -> None:
        end = time.monotonic() + timeout_s
        with self.seen:
            while not predicate(self.messages):
                left = end - time.monotonic()
                assert left > 0, f"timed out; have {sorted(self.messages)}"
                self.seen.wait(left)

    def text(self, topic: str) -> str:
        return self.messages[topic].decode()

    def close(self, clear_retained: bool = True) -> None:
        if clear_retained:  # leave nothing behind on the shared broker
            for topic in list(self.messages):
                self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


def _site(demo_folder: Path, tmp_path: Path, monkeypatch) -> Home:
    folder = tmp_path / "site"
    shutil.copytree(demo_folder, folder)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HELIOS_CONFIG", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return Home.from_config(load_config(None, demo=True))


def _ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"helios_test_{tag}", f"heliostest/{tag}"


def test_discovery_and_state_reach_a_subscriber(demo_folder, tmp_path, monkeypatch):
    home = _site(demo_folder, tmp_path, monkeypatch)
    now = datetime.now(timezone.utc)
    with Store(home.cfg.storage.url) as store:
        store.add_measurements([{"measured_at": now - timedelta(seconds=20), "soc_pct": 55.5,
                                 "battery_power_w": -1200.0, "grid_power_w": 300.0,
                                 "pv_power_w": 2500.0, "load_power_w": None, "source": "test"}])
    device, prefix = _ids()
    cfg = MqttConfig(client_id=device, device_id=device, topic_prefix=prefix, interval_s=1,
                     next_slots=5)
    disc = f"homeassistant/+/{device}/+/config"
    listener = Listener(disc, f"{prefix}/#")
    publisher = Publisher(cfg, home, version="9.9")
    try:
        publisher.start()
        want = {f"homeassistant/{e.component}/{device}/{e.key}/config" for e in ENTITIES}
        want |= {f"{prefix}/{e.key}/state" for e in ENTITIES}
        want |= {f"{prefix}/slots", f"{prefix}/status", f"{prefix}/availability"}
        listener.wait(lambda m: want <= set(m))
        # -- discovery: HA's MQTT discovery format
        soc = json.loads(listener.messages[f"homeassistant/sensor/{device}/soc/config"])
        assert soc["unique_id"] == f"{device}_soc" and soc["state_topic"] == f"{prefix}/soc/state"
        assert soc["unit_of_measurement"] == "%" and soc["device_class"] == "battery"
        assert soc["state_class"] == "measurement"
        assert soc["availability_topic"] == f"{prefix}/availability"
        assert soc["device"] == {"identifiers": [device], "name": "Helios",
                                 "manufacturer": "Helios", "model": "helios serve",
                                 "sw_version": "9.9"}
        grid = json.loads(listener.messages[f"homeassistant/sensor/{device}/grid_power/config"])
        assert (grid["unit_of_measurement"], grid["device_class"]) == ("W", "power")
        cost = json.loads(listener.messages[f"homeassistant/sensor/{device}/expected_cost/config"])
        assert (cost["unit_of_measurement"], cost["device_class"]) == ("EUR", "monetary")
        paused = json.loads(listener.messages[f"homeassistant/binary_sensor/{device}/paused/"
                                              "config"])
        assert (paused["payload_on"], paused["payload_off"]) == ("ON", "OFF")
        slots_cfg = json.loads(listener.messages[f"homeassistant/sensor/{device}/next_slots/"
                                                 "config"])
        assert slots_cfg["json_attributes_topic"] == f"{prefix}/slots"
        uniques = [json.loads(listener.messages[t])["unique_id"] for t in want
                   if t.endswith("/config")]
        assert len(set(uniques)) == len(ENTITIES)
        late = Listener(disc, f"{prefix}/#")  # HA restarting: everything comes retained
        try:
            late.wait(lambda m: want <= set(m))
            assert all(late.retained[t] for t in want)
        finally:
            late.close(clear_retained=False)
        # -- state: the measurement, the current slot, the next slots
        plan = read_schedule(home.schedule_path)
        slot = plan.slot_at(datetime.now(timezone.utc))
        assert listener.text(f"{prefix}/availability") == "online"
        assert listener.text(f"{prefix}/soc/state") == "55.5"
        assert listener.text(f"{prefix}/grid_power/state") == "300"
        assert listener.text(f"{prefix}/load_power/state") == "1600"  # pv + grid + battery
        assert listener.text(f"{prefix}/action/state") == slot.action
        assert listener.text(f"{prefix}/reason/state") == slot.reason[:255]
        assert float(listener.text(f"{prefix}/buy_price/state")) == pytest.approx(
            slot.buy_eur_per_kwh, abs=1e-4)
        assert float(listener.text(f"{prefix}/planned_soc/state")) == pytest.approx(
            slot.soc_pct, abs=1e-3)
        assert listener.text(f"{prefix}/paused/state") == "OFF"
        assert listener.text(f"{prefix}/plan_stale/state") == "OFF"
        slots = json.loads(listener.messages[f"{prefix}/slots"])["slots"]
        assert len(slots) == 5 and listener.text(f"{prefix}/next_slots/state") == "5"
        assert slots[0]["start"] == format_utc(slot.start)
        assert [s["action"] for s in slots] == [s.action for s in
                                                plan.slots[plan.slots.index(slot):][:5]]
        status = json.loads(listener.messages[f"{prefix}/status"])
        assert status["slot"]["action"] == slot.action
        # -- a pause shows on the next round (interval_s = 1)
        pause.pause(home.pause_path, datetime.now(timezone.utc) + timedelta(hours=1))
        listener.wait(lambda m: m.get(f"{prefix}/paused/state") == b"ON", 5)
    finally:
        publisher.stop()
        listener.wait(lambda m: m.get(f"{prefix}/availability") == b"offline", 5)
        listener.close()
        home.history.store.dispose()


def test_no_measurement_publishes_none_and_discovery_can_be_off(demo_folder, tmp_path,
                                                                  monkeypatch):
    home = _site(demo_folder, tmp_path, monkeypatch)
    device, prefix = _ids()
    cfg = MqttConfig(client_id=device, device_id=device, topic_prefix=prefix,
                     discovery_prefix="", interval_s=60)
    listener = Listener(f"+/+/{device}/+/config", f"{prefix}/#")
    publisher = Publisher(cfg, home)
    try:
        publisher.start()
        listener.wait(lambda m: f"{prefix}/status" in m)
        assert listener.text(f"{prefix}/soc/state") == "None"  # HA: unknown
        assert listener.text(f"{prefix}/pv_power/state") == "None"
        assert not [t for t in listener.messages if t.endswith("/config")]
        assert publisher.published == 1
    finally:
        publisher.stop()
        listener.close()
        home.history.store.dispose()


def test_serve_publishes_and_its_last_will_says_offline(demo_folder, tmp_path):
    """The real `helios serve` with an `mqtt:` section (user + !secret password): publishes,
    never prints the password, and a killed serve leaves `offline` (the last will)."""
    folder = tmp_path / "cli"
    shutil.copytree(demo_folder, folder)
    device, prefix = _ids()
    secret = "mqtt-pass-" + uuid.uuid4().hex
    (folder / "secrets.yaml").write_text(f"mqtt_password: {secret}\n")
    (folder / "config.yaml").write_text(
        "prices: {type: demo}\npv: {type: demo}\nload: {type: demo}\n"
        "state: {type: static, soc_pct: 50}\ntariff: {buy: price, sell: price}\n"
        f"mqtt: {{username: helios, password: !secret mqtt_password, client_id: {device},\n"
        f"       device_id: {device}, topic_prefix: {prefix}, interval_s: 1}}\n")
    listener = Listener(f"homeassistant/+/{device}/+/config", f"{prefix}/#")
    env = {k: v for k, v in os.environ.items() if k not in ("HELIOS_CONFIG", "STATE_DIRECTORY")}
    proc = subprocess.Popen([sys.executable, "-m", "planner", "serve", "--port", "0"],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        listener.wait(lambda m: m.get(f"{prefix}/availability") == b"online"
                      and f"{prefix}/action/state" in m
                      and f"homeassistant/sensor/{device}/soc/config" in m, 30)
        os.kill(proc.pid, signal.SIGKILL)  # no clean disconnect: the broker sends the will
        listener.wait(lambda m: m.get(f"{prefix}/availability") == b"offline", 10)
        out, err = proc.communicate(timeout=10)
        assert f"publishing to MQTT 127.0.0.1:1883 every 1 s (topics {prefix}/..." in out
        assert secret not in out + err
        assert all(secret.encode() not in v for v in listener.messages.values())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        listener.close()


def test_an_unreachable_broker_is_retried_without_stopping(demo_folder, tmp_path, monkeypatch):
    home = _site(demo_folder, tmp_path, monkeypatch)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    publisher = Publisher(MqttConfig(port=port, interval_s=1), home)
    publisher.start()
    time.sleep(1.5)
    assert not publisher.connected.is_set() and publisher.published == 0
    assert not publisher.publish_state()
    began = time.monotonic()
    publisher.stop()
    assert time.monotonic() - began < 3
    home.history.store.dispose()


@pytest.mark.parametrize("changes, key", [
    ({"device_id": "my helios"}, "mqtt.device_id"),
    ({"client_id": "a/b"}, "mqtt.client_id"),
    ({"topic_prefix": "helios/#"}, "mqtt.topic_prefix"),
    ({"topic_prefix": ""}, "mqtt.topic_prefix"),
    ({"discovery_prefix": "homeassistant/"}, "mqtt.discovery_prefix"),
    ({"password": "x"}, "mqtt.username"),
])
def test_bad_ids_and_prefixes_are_config_errors_naming_the_key(changes, key):
    with pytest.raises(ConfigError) as info:
        check_config(dataclasses.replace(MqttConfig(), **changes))
    assert [p.key_path for p in info.value.problems] == [key]


def test_mqtt_section_validates_like_every_section(tmp_path):
    (tmp_path / "config.yaml").write_text("mqtt: {port: 0, retian: true}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "config.yaml"), demo=True)
    text = str(info.value)
    assert "mqtt.port" in text and "mqtt.retian" in text and "did you mean 'retain'" in text


def test_the_doctor_connects_once(tmp_path):
    cfg = load_config(None, demo=True)
    ok = doctor.check_mqtt(dataclasses.replace(cfg, mqtt=MqttConfig(username="helios",
                                                                     password="pw-s3cret")),
                           2.0)
    assert (ok.step, ok.status) == ("mqtt", "OK")
    assert ok.message == "MQTT broker 127.0.0.1:1883 accepts a connection as helios"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bad = doctor.check_mqtt(dataclasses.replace(cfg, mqtt=MqttConfig(port=port)), 2.0)
    assert bad.status == "FAIL" and f"MQTT broker 127.0.0.1:{port}" in bad.message
    assert "mqtt.host/port" in bad.fix and "pw-s3cret" not in ok.message + bad.message
