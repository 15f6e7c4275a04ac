"""MQTT publishing with Home Assistant discovery, run by ``helios serve`` (``mqtt:`` section).

One long-lived connection (paho-mqtt, the optional extra ``helios-ems[mqtt]``) publishes, every
``mqtt.interval_s`` and right after each (re)connect:

* discovery configs (``<discovery_prefix>/<component>/<device_id>/<entity>/config``, JSON,
  retained) in Home Assistant's MQTT discovery format: ``name``, ``unique_id``,
  ``state_topic``, ``availability_topic``, ``device`` (one "Helios" device), and where they
  apply ``unit_of_measurement``, ``device_class``, ``state_class``, ``json_attributes_topic``;
* one plain state topic per entity (``<topic_prefix>/<entity>/state``): a number, a word, or
  ``None`` when there is no value (HA shows *unknown*; a stale measurement counts as none);
* ``<topic_prefix>/status``: the whole ``GET /api/status`` document (JSON), and
  ``<topic_prefix>/slots``: ``{"slots": [...]}`` — the next ``mqtt.next_slots`` slots of the
  plan (start, end, action, reason, SoC, prices, grid and battery power), the attributes of
  the ``next_slots`` sensor;
* ``<topic_prefix>/availability``: ``online`` on connect, ``offline`` on a clean stop and as
  the connection's last will (so HA greys the entities out when serve dies).

Published from ``serve`` rather than after each ``helios plan``: the status changes with every
measurement (once a minute), not every 5 minutes; availability needs a connection that lives
as long as the service; and ``helios plan`` stays a batch job a broker can neither slow down
nor fail. The password comes from ``!secret`` and is never logged.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from planner.config import MqttConfig
from planner.core.errors import ConfigError, ConfigProblem
from planner.serve import data
from planner.serve.data import Home

try:  # the optional extra: helios-ems[mqtt]
    import paho.mqtt.client as paho
except ImportError:  # pragma: no cover - exercised only where paho-mqtt is missing
    paho = None

log = logging.getLogger("helios.serve.mqtt")

#: Home Assistant's longest state [characters]
HA_STATE_MAX = 255

_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity: where its value comes from and how HA should show it."""

    key: str                    # object id and state topic segment
    name: str
    component: str = "sensor"   # sensor | binary_sensor
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    attributes: bool = False    # json_attributes_topic = <prefix>/slots


ENTITIES: tuple[Entity, ...] = (
    Entity("action", "Action", icon="mdi:battery-sync"),
    Entity("reason", "Reason", icon="mdi:information-outline"),
    Entity("next", "Next", icon="mdi:calendar-arrow-right"),
    Entity("buy_price", "Buy price", unit="EUR/kWh", state_class="measurement",
           icon="mdi:cash-minus"),
    Entity("sell_price", "Sell price", unit="EUR/kWh", state_class="measurement",
           icon="mdi:cash-plus"),
    Entity("soc", "Battery SoC", unit="%", device_class="battery", state_class="measurement"),
    Entity("pv_power", "PV power", unit="W", device_class="power", state_class="measurement"),
    Entity("load_power", "Load power", unit="W", device_class="power",
           state_class="measurement"),
    Entity("grid_power", "Grid power", unit="W", device_class="power",
           state_class="measurement"),
    Entity("battery_power", "Battery power", unit="W", device_class="power",
           state_class="measurement"),
    Entity("planned_soc", "Planned SoC", unit="%", device_class="battery",
           state_class="measurement"),
    Entity("planned_grid_power", "Planned grid power", unit="W", device_class="power",
           state_class="measurement"),
    Entity("planned_battery_power", "Planned battery power", unit="W", device_class="power",
           state_class="measurement"),
    Entity("expected_cost", "Plan expected cost", unit="EUR", device_class="monetary"),
    Entity("next_slots", "Next slots", icon="mdi:timeline-clock", attributes=True),
    Entity("paused", "Paused", component="binary_sensor", icon="mdi:pause-circle"),
    Entity("plan_stale", "Plan stale", component="binary_sensor", device_class="problem"),
)


def _clean(x: object) -> object:
    """NaN/inf → None, recursively (JSON has neither)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _text(x: object) -> str:
    """A state payload: ``None`` for no value (HA: unknown), else the value as text."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "None"
    if isinstance(x, bool):
        return "ON" if x else "OFF"
    if isinstance(x, float):
        return f"{round(x, 4):g}" if abs(x) < 1e6 else f"{x:.0f}"
    return str(x)[:HA_STATE_MAX]


def check_config(cfg: MqttConfig) -> None:
    """Refuse ids and prefixes that would make bad topics (ConfigError naming the key)."""
    problems = []
    for key in ("topic_prefix", "discovery_prefix"):
        value = getattr(cfg, key)
        if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/") \
                or (key == "topic_prefix" and not value):
            problems.append(ConfigProblem(f"mqtt.{key}", "a topic without +, #, or a leading "
                                          "or trailing /", repr(value)))
    for key in ("device_id", "client_id"):
        if not _ID.match(getattr(cfg, key)):
            problems.append(ConfigProblem(f"mqtt.{key}", "letters, digits, _ and - only",
                                          repr(getattr(cfg, key))))
    if cfg.password is not None and cfg.username is None:
        problems.append(ConfigProblem("mqtt.username", "a user name when mqtt.password is set",
                                      "none"))
    if problems:
        raise ConfigError(problems)


def probe(cfg: MqttConfig, timeout_s: float = 5.0) -> str:
    """Connect once with ``cfg``'s credentials and disconnect: what ``helios doctor`` checks.

    Returns a short description; raises ``ConnectionError`` naming the broker (never the
    password) when it cannot be reached or refuses the login.
    """
    check_config(cfg)
    if paho is None:
        raise ConnectionError("the paho-mqtt package is not installed (pip install "
                              "'helios-ems[mqtt]')")
    result: dict = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties=None):
        result["code"] = reason_code
        done.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                         client_id=f"{cfg.client_id}-doctor", clean_session=True)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password)
    client.on_connect = on_connect
    where = f"MQTT broker {cfg.host}:{cfg.port}"
    try:
        client.connect(cfg.host, cfg.port, keepalive=max(cfg.keepalive_s, 5))
    except OSError as exc:
        raise ConnectionError(f"{where}: {exc.strerror or exc}") from None
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise ConnectionError(f"{where}: no answer within {timeout_s:g} s")
        code = result["code"]
        if code.is_failure:
            raise ConnectionError(f"{where} refused the connection: {code}")
    finally:
        client.disconnect()
        client.loop_stop()
    who = f"as {cfg.username}" if cfg.username else "anonymously"
    return f"{where} accepts a connection {who}"


def _kw_to_w(kw: object) -> float | None:
    return None if kw is None else round(float(kw) * 1000.0, 1)


class Publisher:
    """Publishes one home's status to an MQTT broker (see the module docstring).

    Parameters
    ----------
    cfg : MqttConfig
        The ``mqtt:`` section.
    home : Home
        The installation (schedule.json, history, pause file) that ``helios serve`` shows.
    clock : callable
        ``clock() -> datetime`` (aware UTC).
    version : str
        Shown as the device's ``sw_version``.
    """

    def __init__(self, cfg: MqttConfig, home: Home, clock: Callable[[], datetime] | None = None,
                 version: str = "dev"):
        check_config(cfg)
        if paho is None:
            raise ConfigError([ConfigProblem(
                "mqtt", "the paho-mqtt package (pip install 'helios-ems[mqtt]')", "not installed")])
        self.cfg = cfg
        self.home = home
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.version = version
        self.base = cfg.topic_prefix
        self.availability_topic = f"{self.base}/availability"
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.published = 0  # state rounds published (for tests and the log)
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                             clean_session=True)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        client.will_set(self.availability_topic, "offline", qos=cfg.qos, retain=True)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client

    # -- payloads ------------------------------------------------------------------------------
    def state_topic(self, key: str) -> str:
        return f"{self.base}/{key}/state"

    def discovery(self) -> list[tuple[str, str]]:
        """``(topic, JSON payload)`` of every entity's discovery config ([] without a prefix)."""
        if not self.cfg.discovery_prefix:
            return []
        dev_id = self.cfg.device_id
        device = {"identifiers": [dev_id], "name": self.cfg.device_name,
                  "manufacturer": "Helios", "model": "helios serve",
                  "sw_version": self.version}
        out = []
        for e in ENTITIES:
            doc: dict = {"name": e.name, "unique_id": f"{dev_id}_{e.key}",
                         "object_id": f"{dev_id}_{e.key}",
                         "state_topic": self.state_topic(e.key),
                         "availability_topic": self.availability_topic,
                         "payload_available": "online", "payload_not_available": "offline",
                         "device": device}
            if e.component == "binary_sensor":
                doc.update(payload_on="ON", payload_off="OFF")
            for field, value in (("unit_of_measurement", e.unit),
                                 ("device_class", e.device_class),
                                 ("state_class", e.state_class), ("icon", e.icon)):
                if value is not None:
                    doc[field] = value
            if e.attributes:
                doc["json_attributes_topic"] = f"{self.base}/slots"
            topic = f"{self.cfg.discovery_prefix}/{e.component}/{dev_id}/{e.key}/config"
            out.append((topic, json.dumps(doc, sort_keys=True)))
        return out

    def next_slots(self, now: datetime) -> list[dict]:
        """The plan's next ``mqtt.next_slots`` slots from the one covering ``now``."""
        plan, _ = self.home.schedule()
        if plan is None:
            return []
        ahead = [s for s in plan.slots if s.start.timestamp() + plan.slot_s > now.timestamp()]
        return [data.slot_dict(s, plan.slot_s) for s in ahead[:self.cfg.next_slots]]

    def states(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """``(topic, payload)`` of every state message for ``now``."""
        now = now or self.clock()
        doc = _clean(data.status(self.home, now))
        slots = _clean(self.next_slots(now))
        slot = doc.get("slot") or {}
        m = doc.get("measurement") or {}
        if m.get("stale"):
            m = {}
        plan = doc.get("plan") or {}
        values = {
            "action": slot.get("action"), "reason": slot.get("reason"), "next": doc.get("next"),
            "buy_price": slot.get("buy_eur_per_kwh"), "sell_price": slot.get("sell_eur_per_kwh"),
            "soc": m.get("soc_pct"), "pv_power": m.get("pv_power_w"),
            "load_power": m.get("load_power_w"), "grid_power": m.get("grid_power_w"),
            "battery_power": m.get("battery_power_w"),
            "planned_soc": slot.get("soc_pct"),
            "planned_grid_power": _kw_to_w(slot.get("grid_kw")),
            "planned_battery_power": _kw_to_w(slot.get("battery_kw")),
            "expected_cost": plan.get("expected_cost_eur"),
            "next_slots": len(slots),
            "paused": bool(doc["pause"]["paused"]),
            "plan_stale": bool(plan.get("stale", True)),
        }
        out = [(self.state_topic(e.key), _text(values[e.key])) for e in ENTITIES]
        out.append((f"{self.base}/slots", json.dumps({"slots": slots}, allow_nan=False)))
        out.append((f"{self.base}/status", json.dumps(doc, allow_nan=False, default=str)))
        return out

    # -- connection ----------------------------------------------------------------------------
    def _publish(self, messages: list[tuple[str, str]]) -> None:
        for topic, payload in messages:
            self.client.publish(topic, payload, qos=self.cfg.qos, retain=self.cfg.retain)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.warning("mqtt: broker %s:%s refused the connection: %s", self.cfg.host,
                        self.cfg.port, reason_code)
            return
        log.info("mqtt: connected to %s:%s", self.cfg.host, self.cfg.port)
        # availability is always retained: HA must see "offline" after our last will
        client.publish(self.availability_topic, "online", qos=self.cfg.qos, retain=True)
        self._publish(self.discovery())
        self.connected.set()
        self.publish_state()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("mqtt: lost the broker %s:%s (%s); reconnecting", self.cfg.host,
                        self.cfg.port, reason_code)

    def publish_state(self) -> bool:
        """Publish the state messages now (False when not connected or the data failed)."""
        if not self.connected.is_set():
            return False
        with self._lock:
            try:
                messages = self.states()
            except Exception:  # a bug or a broken database: logged, the loop goes on
                log.exception("mqtt: could not compute the status")
                return False
            self._publish(messages)
            self.published += 1
        return True

    def start(self) -> None:
        """Connect in the background and publish every ``interval_s`` until :meth:`stop`.

        An unreachable broker is retried (1 s … 60 s apart) and logged; serve keeps running.
        """
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._loop, name="helios-mqtt", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.cfg.interval_s):
            self.publish_state()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish ``offline``, disconnect, and end the threads."""
        self._stop.set()
        if self.connected.is_set():
            info = self.client.publish(self.availability_topic, "offline", qos=self.cfg.qos,
                                       retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):  # the connection went meanwhile
                pass
        self.client.disconnect()
        self.client.loop_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
