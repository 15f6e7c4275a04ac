"""What a Victron ESS does with hub4's overrides, and what systemcalc's Dynamic ESS writes there.

Standard library only: the harness plant (``tests/executor/venus_plant.py``) runs this physics
on Debian's ``/usr/bin/python3`` next to Victron's real services, and both GX emulators run it
with :class:`DessDelegate`, our re-implementation of ``delegates/dynamicess.py`` (v2.256,
``../shared/venus/src``), on a fake clock.

:class:`EssPlant` — hub4control and the Multi (closed source; this is our model of them):

* ``ForceCharge = 1``: charge as fast as allowed (inverter limit, BMS CCL, the DVCC charge
  limit DESS sets) from PV and grid;
* otherwise hold the grid at ``Setpoint`` (invalid = the persisted ``AcPowerSetPoint``) by
  moving the battery, discharge capped by ``MaxDischargePower`` (−1 = the persisted
  ``/Settings/CGwacs/MaxDischargePower``, −1 = inverter limit);
* ``FeedInExcess`` 1 (restrict) curtails PV instead of exporting it; the ESS minimum SoC
  (``/Control/ActiveSocLimit``) stops discharge; ``/Pv/Disable`` switches PV off.

:class:`DessDelegate` — every 5 s of the fake clock, as the real delegate: the first slot
(0..47) whose ``[Start, Start+Duration)`` covers now, ``TargetSoc`` > 0 beats ``Soc``, the
target rounded to the SoC precision it has seen (ratchets up), the rate ``|gap| × capacity /
time left`` capped by ``BatteryChargeLimit``/``BatteryDischargeLimit``, the state chosen from
Strategy/Restrictions/AllowGridFeedIn and the hysteresis, the overrides written as systemcalc
writes them; capacity 0 → no hub4 write and error 5 after 60 s; Mode 2/3 → off, and 2/3 → 4
leaves it dead until the mode passes through 0; no window → plain self-consumption.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

NUM_SCHEDULES = 48
MAX_FEEDIN_VALUE = 96000.0
ERROR_TIMEOUT = 60
INTERVAL = 5
TARGETSOC, SELFCONSUME, PROBATTERY, PROGRID = 0, 1, 2, 3
BAT2GRID, GRID2BAT = 1, 2
DISABLEPV = 2

CHARGE = {2, 3, 10, 11, 12, 16, 18}
SELF = {4, 7, 14, 17, 20}
IDLE = {5, 8, 9, 15, 21}
DISCHARGE = {6, 13, 19}
ERRORS_SC = {99, 95, 98, 97, 94, 93, 91}


def settings_table() -> dict:
    """path → [value, default, min, max] as localsettings holds them (min = max = 0: none)."""
    t = {
        "/Settings/CGwacs/AcPowerSetPoint": [0.0, 0.0, -300000.0, 300000.0],
        "/Settings/CGwacs/Hub4Mode": [1, 1, 1, 3],
        "/Settings/CGwacs/MaxFeedInPower": [-1.0, -1.0, -1.0, 300000.0],
        "/Settings/CGwacs/MaxDischargePower": [-1.0, -1.0, -1.0, 300000.0],
        "/Settings/CGwacs/BatteryLife/State": [1, 1, 0, 12],
        "/Settings/CGwacs/BatteryLife/MinimumSocLimit": [10.0, 10.0, 0.0, 100.0],
        "/Settings/Services/Bol": [1, 0, 0, 1],
        "/Settings/SystemSetup/MaxChargeCurrent": [-1.0, -1.0, -1.0, 10000.0],
        "/Settings/DynamicEss/Mode": [0, 0, 0, 4],
        "/Settings/DynamicEss/BatteryCapacity": [10.0, 0.0, 0.0, 1000.0],
        "/Settings/DynamicEss/SystemEfficiency": [90.0, 90.0, 50.0, 100.0],
    }
    for name in ("BatteryChargeLimit", "BatteryDischargeLimit", "GridImportLimit",
                 "GridExportLimit"):
        t[f"/Settings/DynamicEss/{name}"] = [-1.0, -1.0, -1.0, 9999.9]
    for n in range(NUM_SCHEDULES):
        base = f"/Settings/DynamicEss/Schedule/{n}/"
        t.update({base + "Start": [0, 0, 0, 0], base + "Duration": [0, 0, 0, 0],
                  base + "Soc": [0, 0, 0, 100], base + "TargetSoc": [0.0, 0.0, 0.0, 100.0],
                  base + "Strategy": [0, 0, 0, 3], base + "Restrictions": [0, 0, 0, 3],
                  base + "AllowGridFeedIn": [0, 0, 0, 1], base + "Flags": [0, 0, 0, 3]})
    return t


def convert_setting(entry: list, value):
    """localsettings' SetValue: ``int()``/``float()`` by the setting's type (4.7 → 4 into an
    int, True → 1, "5" → 5), then refuse (None) out of range — never clamp."""
    current, _default, lo, hi = entry
    if value is None or isinstance(value, (list, dict)):
        return None
    try:
        value = float(value) if isinstance(current, float) else int(value)
    except (TypeError, ValueError):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not (lo == 0 and hi == 0) and not lo <= value <= hi:
        return None
    return value


def demo_profile(now: datetime) -> tuple:
    """PV and load of the demo day (``executor.drivers.simulated.demo_profile``)."""
    hour = now.hour + now.minute / 60.0 + now.second / 3600.0
    pv = max(0.0, 5000.0 * math.sin(math.pi * (hour - 5.0) / 14.0)) if 5 <= hour <= 19 else 0.0
    load = 350.0 + 900.0 * math.exp(-((hour - 7.5) ** 2) / 1.5) \
        + 1500.0 * math.exp(-((hour - 19.0) ** 2) / 3.0)
    return pv, load


class EssPlant:
    """Battery + Multi + home under hub4's overrides. W (+ = discharge / import), SoC in %.

    ``settings`` is the settings table (``settings_table()``), shared with the emulator; the
    overrides are plain attributes (``setpoint`` None = invalid).
    """

    def __init__(self, soc_pct: float, capacity_kwh: float, now: datetime,
                 profile=demo_profile, settings: dict | None = None,
                 inverter_max_w: float = 8000.0, bms_max_charge_w: float | None = None,
                 bms_max_discharge_w: float | None = None, charge_efficiency: float = 0.95,
                 discharge_efficiency: float = 0.95, volts: float = 52.0):
        self.soc_pct = float(soc_pct)
        self.capacity_kwh = capacity_kwh
        self.now = now
        self.profile = profile
        self.settings = settings if settings is not None else settings_table()
        self.inverter_max_w = inverter_max_w
        self.bms_max_charge_w = bms_max_charge_w
        self.bms_max_discharge_w = bms_max_discharge_w
        self.charge_efficiency = charge_efficiency
        self.discharge_efficiency = discharge_efficiency
        self.volts = volts
        # hub4 overrides (what systemcalc / Helios wrote)
        self.setpoint: float | None = None
        self.force_charge = 0
        self.max_discharge_power = -1.0
        self.feed_in_excess = 0
        self.pv_disabled = 0
        self.dvcc_charge_w: float | None = None  # DESS's DVCC charge limit (None = none)
        self.delegate: DessDelegate | None = None
        self.battery_power_w = 0.0
        self.pv_power_w, self.load_power_w = profile(now)
        self.grid_power_w = self.load_power_w - self.pv_power_w
        self.curtailed_w = 0.0
        self.energy_in_wh = self.energy_out_wh = 0.0
        self.trace: list = []  # (time, battery W, grid W) per step, for the tests

    # compatibility with the old emulator plant
    @property
    def min_soc_pct(self) -> float:
        return float(self.settings["/Settings/CGwacs/BatteryLife/MinimumSocLimit"][0])

    @min_soc_pct.setter
    def min_soc_pct(self, value: float) -> None:
        self.settings["/Settings/CGwacs/BatteryLife/MinimumSocLimit"][0] = float(value)

    @property
    def grid_setpoint_w(self) -> float | None:
        return self.setpoint

    @grid_setpoint_w.setter
    def grid_setpoint_w(self, value: float | None) -> None:
        self.setpoint = value

    def s(self, path: str):
        return self.settings[path][0]

    def limits(self) -> tuple:
        """(charge, discharge) the Multi allows now, ≥ 0. [W]"""
        charge = discharge = self.inverter_max_w
        if self.bms_max_charge_w is not None:
            charge = min(charge, self.bms_max_charge_w)
        if self.bms_max_discharge_w is not None:
            discharge = min(discharge, self.bms_max_discharge_w)
        if self.s("/Settings/Services/Bol"):
            if self.dvcc_charge_w is not None:
                charge = min(charge, self.dvcc_charge_w)
            user = self.s("/Settings/SystemSetup/MaxChargeCurrent")
            if user is not None and user >= 0:
                charge = min(charge, user * self.volts)
        mdp = self.max_discharge_power
        if mdp is None or mdp < 0:
            mdp = self.s("/Settings/CGwacs/MaxDischargePower")
        if mdp is not None and mdp >= 0:
            discharge = min(discharge, mdp)
        return max(charge, 0.0), max(discharge, 0.0)

    def advance(self, now: datetime, max_step_s: float = 5.0) -> None:
        """Integrate to ``now``; the delegate (if any) ticks every 5 s on the way."""
        while self.now < now:
            step = min((now - self.now).total_seconds(), max_step_s)
            if self.delegate is not None:
                step = min(step, max((self.delegate.next_tick - self.now).total_seconds(), 0.0))
                if step <= 0:
                    self.delegate.tick(self.now)
                    continue
            self._step(step)
            self.now = min(now, self.now + timedelta(seconds=step))
        if self.delegate is not None and self.delegate.next_tick <= self.now:
            self.delegate.tick(self.now)

    def _step(self, dt_s: float) -> None:
        pv, load = self.profile(self.now)
        if self.pv_disabled:
            pv = 0.0
        net = load - pv
        charge_cap, discharge_cap = self.limits()
        if self.force_charge:
            battery = -charge_cap
        else:
            sp = self.setpoint if self.setpoint is not None \
                else self.s("/Settings/CGwacs/AcPowerSetPoint")
            battery = net - sp
        battery = min(max(battery, -charge_cap), discharge_cap)
        cap_wh = self.capacity_kwh * 1000.0
        dt_h = dt_s / 3600.0
        if battery > 0:
            if self.soc_pct <= self.min_soc_pct:
                battery = 0.0
            room = max(self.soc_pct - self.min_soc_pct, 0.0) / 100 * cap_wh \
                * self.discharge_efficiency
            battery = min(battery, room / dt_h) if dt_h > 0 else battery
        elif battery < 0:
            room = max(100.0 - self.soc_pct, 0.0) / 100 * cap_wh / self.charge_efficiency
            battery = max(battery, -room / dt_h) if dt_h > 0 else battery
        grid = net - battery
        self.curtailed_w = 0.0
        export_limit = None
        if self.feed_in_excess == 1:
            export_limit = 0.0
        elif self.s("/Settings/CGwacs/MaxFeedInPower") >= 0 and self.feed_in_excess == 0:
            export_limit = float(self.s("/Settings/CGwacs/MaxFeedInPower"))
        if export_limit is not None and grid < -export_limit:
            self.curtailed_w = min(-export_limit - grid, pv)
            pv -= self.curtailed_w
            grid = load - pv - battery
        if battery > 0:
            self.soc_pct -= battery * dt_h / self.discharge_efficiency / cap_wh * 100
            self.energy_out_wh += battery * dt_h
        elif battery < 0:
            self.soc_pct -= battery * dt_h * self.charge_efficiency / cap_wh * 100
            self.energy_in_wh -= battery * dt_h
        self.soc_pct = min(max(self.soc_pct, 0.0), 100.0)
        self.battery_power_w, self.grid_power_w = battery, grid
        self.pv_power_w, self.load_power_w = pv, load
        self.trace.append((self.now, battery, grid))

    # --- for the old tests: a Measurement-like view
    def measurement(self, now):
        from executor.drivers.base import Measurement

        return Measurement(at=now, soc_pct=round(self.soc_pct, 3),
                           battery_power_w=self.battery_power_w, grid_power_w=self.grid_power_w,
                           pv_power_w=self.pv_power_w, load_power_w=self.load_power_w,
                           max_charge_w=self.bms_max_charge_w,
                           max_discharge_w=self.bms_max_discharge_w)


def as_ess_plant(plant) -> EssPlant:
    """``plant`` itself, or an :class:`EssPlant` with the state of an
    ``executor.drivers.simulated.Plant`` (older callers of the emulators)."""
    if isinstance(plant, EssPlant):
        return plant
    ess = EssPlant(plant.soc_pct, plant.capacity_kwh, plant.now, profile=plant.profile,
                   bms_max_charge_w=plant.bms_max_charge_w,
                   bms_max_discharge_w=plant.bms_max_discharge_w,
                   charge_efficiency=plant.charge_efficiency,
                   discharge_efficiency=plant.discharge_efficiency)
    ess.min_soc_pct = plant.min_soc_pct
    ess.setpoint = plant.grid_setpoint_w
    return ess


class DessDelegate:
    """Our re-implementation of systemcalc's Dynamic ESS delegate (see the module docstring).

    ``status`` holds what systemcalc publishes under ``/DynamicEss/*``; ``hub4_writes`` every
    override it wrote as ``(time, path, value)``.
    """

    def __init__(self, plant: EssPlant, soc_reported=None):
        self.plant = plant
        self.settings = plant.settings
        self.next_tick = plant.now + timedelta(seconds=INTERVAL)
        self.timer_on = self.s("/Settings/DynamicEss/Mode") > 0
        self.soc_reported = soc_reported or (lambda: round(plant.soc_pct, 1))
        self.precision = 0
        self.chargerate = None
        self.override = None
        self.prevsoc = None
        self.ch = 0.0
        self.dh = 0.0
        self.errortimer = ERROR_TIMEOUT
        self.is_pv_disabled = False
        self.prev_state = None
        self.status = {"Active": 0, "ErrorCode": 0, "ReactiveStrategy": 92 if not self.timer_on
                       else None, "TargetSoc": 0.0, "WindowSoc": 0.0, "ChargeRate": 0,
                       "WindowSlot": 0, "WorkingSocPrecision": 0, "Strategy": None,
                       "Restrictions": None, "AllowGridFeedIn": None, "Flags": None,
                       "MinimumSoc": None, "Available": 1}
        self.hub4_writes: list = []
        plant.delegate = self

    def s(self, path: str):
        return self.settings[path][0]

    def settings_changed(self, path: str, old, new) -> None:
        """systemcalc's settings_changed: the timer starts only on a change *from* 0."""
        if path != "/Settings/DynamicEss/Mode":
            return
        if old == 0 and new > 0 and not self.timer_on:
            self.timer_on = True
            self.next_tick = self.plant.now + timedelta(seconds=INTERVAL)
        if new == 0:
            self.status["ReactiveStrategy"] = 92

    # --- hub4 ---------------------------------------------------------------------------------
    def _w(self, path: str, value) -> None:
        p = self.plant
        self.hub4_writes.append((p.now, path, value))
        if path == "/Overrides/Setpoint":
            p.setpoint = value
        elif path == "/Overrides/ForceCharge":
            p.force_charge = value
        elif path == "/Overrides/MaxDischargePower":
            p.max_discharge_power = value
        elif path == "/Overrides/FeedInExcess":
            p.feed_in_excess = value

    def _feedin(self, allow) -> None:
        self._w("/Overrides/FeedInExcess", 0 if allow is None else 2 if allow else 1)

    def _maxfeedin(self) -> float:
        local = self.s("/Settings/CGwacs/MaxFeedInPower")
        dess = self.s("/Settings/DynamicEss/GridExportLimit")
        dess = dess * 1000.0 if dess >= 0 else -1
        if local > -1 and dess == -1:
            return -local
        if dess > -1 and local == -1:
            return -dess
        if dess > -1 and local > -1:
            return -min(dess, local)
        return -MAX_FEEDIN_VALUE

    def _charge(self, rate, allow) -> None:
        self._feedin(allow)
        self._w("/Overrides/Setpoint", None)
        self._w("/Overrides/ForceCharge", 1)
        self._w("/Overrides/MaxDischargePower", -1.0)
        self.plant.dvcc_charge_w = None if rate is None else max(max(0.0, rate), 50.0)

    def _discharge(self, restrictions, rate, allow) -> None:
        self._feedin(allow)
        self.plant.dvcc_charge_w = None
        self._w("/Overrides/ForceCharge", 0)
        if allow:
            self._w("/Overrides/Setpoint", self._maxfeedin())
            srate = max(1.0, rate or 0)
            if not restrictions & BAT2GRID:
                self._w("/Overrides/MaxDischargePower", srate)
            else:
                self._w("/Overrides/MaxDischargePower", min(srate, self._consumption() + 1.0))
        else:
            self._w("/Overrides/Setpoint", None)
            self._w("/Overrides/MaxDischargePower", -1)

    def _idle(self, allow) -> None:
        self._feedin(allow)
        self.plant.dvcc_charge_w = None
        self._w("/Overrides/ForceCharge", 0)
        if allow:
            self._w("/Overrides/MaxDischargePower", 1.0)
            self._w("/Overrides/Setpoint", self._maxfeedin())
        else:
            self._w("/Overrides/Setpoint", 0)
            self._w("/Overrides/MaxDischargePower", 1.0)

    def _self_consume(self, restrictions, allow) -> None:
        self._feedin(allow)
        self._w("/Overrides/Setpoint", None)
        self._w("/Overrides/ForceCharge", 0)
        self.plant.dvcc_charge_w = self.plant.pv_power_w if restrictions & GRID2BAT else None
        self._w("/Overrides/MaxDischargePower", -1.0)

    def _deactivate(self, reason) -> None:
        self._w("/Overrides/Setpoint", None)
        self._w("/Overrides/ForceCharge", 0)
        self._w("/Overrides/MaxDischargePower", -1.0)
        self._w("/Overrides/FeedInExcess", 0)
        self.plant.dvcc_charge_w = None
        self.status["Active"] = 0
        self._errorcode(reason)
        self._pv(False)
        self.status.update(TargetSoc=0.0, ChargeRate=0, Strategy=None, Restrictions=None,
                           AllowGridFeedIn=None, MinimumSoc=None)
        self.chargerate = None

    def _errorcode(self, v) -> None:
        self._code = v
        if v == 0:
            self.status["ErrorCode"] = 0
            self.errortimer = ERROR_TIMEOUT
        elif self.errortimer == 0:
            self.status["ErrorCode"] = v
        else:
            self.errortimer = max(self.errortimer - INTERVAL, 0)

    def _pv(self, disabled: bool) -> None:
        if disabled:
            self.plant.pv_disabled = 1
            self.is_pv_disabled = True
        elif self.is_pv_disabled:
            self.plant.pv_disabled = 0
            self.is_pv_disabled = False

    def _consumption(self) -> float:
        return max(0.0, self.plant.load_power_w)

    # --- the 5-s timer ---------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        self.next_tick = now + timedelta(seconds=INTERVAL)
        if not self.timer_on:
            return
        mode = self.s("/Settings/DynamicEss/Mode")
        if mode in (0, 2, 3):
            self._deactivate(0)
            self.status["ReactiveStrategy"] = 92
            self.timer_on = False
            return

        def bail(code):
            self.status["Active"] = 0
            self._errorcode(code)
            self.status["TargetSoc"] = 0.0
            self.status["MinimumSoc"] = None

        capacity = float(self.s("/Settings/DynamicEss/BatteryCapacity"))
        if capacity == 0.0:
            return bail(5)
        raw = self.soc_reported()
        if raw is None:
            return bail(4)
        if self.s("/Settings/CGwacs/Hub4Mode") == 3 \
                or self.s("/Settings/CGwacs/BatteryLife/State") == 9:
            return bail(2)
        if self.precision < 2:
            p, x = 0, round(raw, 2)
            for _ in range(2):
                p += 1
                x *= 10
                if x % 10 < 1e-2:
                    p -= 1
                    break
            self.precision = max(self.precision, min(p, 2))
            self.status["WorkingSocPrecision"] = self.precision
        soc = round(raw, self.precision)
        minsoc = self.plant.min_soc_pct
        self.status["MinimumSoc"] = minsoc
        window = None
        t = now.timestamp()
        for n in range(NUM_SCHEDULES):
            base = f"/Settings/DynamicEss/Schedule/{n}/"
            start, dur = self.s(base + "Start"), self.s(base + "Duration")
            if start > 0 and start <= t < start + dur:
                tsoc = self.s(base + "TargetSoc")
                window = {"slot": n, "stop": start + dur, "start": start,
                          "soc": tsoc if tsoc > 0 else self.s(base + "Soc"),
                          "strategy": self.s(base + "Strategy"),
                          "restrictions": self.s(base + "Restrictions"),
                          "allow": self.s(base + "AllowGridFeedIn"),
                          "flags": self.s(base + "Flags")}
                break
        if window is None:
            if self.status["Active"] or getattr(self, "_code", 0) != 3:
                self._deactivate(3)
            state = 99
        else:
            self.status.update(Active=1, Strategy=window["strategy"],
                               Restrictions=window["restrictions"],
                               AllowGridFeedIn=int(window["allow"]))
            self._errorcode(0)
            self._pv(bool(window["flags"] & DISABLEPV))
            state = self._decide(window, soc, raw, capacity, minsoc, t)
            self.status["ChargeRate"] = self.chargerate or 0
            self.status["Flags"] = window["flags"]
        self.status["ReactiveStrategy"] = state
        self.prev_state = state
        if state in ERRORS_SC:
            self.chargerate = None
            self.ch = self.dh = 0.0
            self.status["ChargeRate"] = 0
            self._self_consume(0, None)

    def _rate(self, t, stop, soc, target, capacity) -> None:
        if self.chargerate is None or self.prevsoc is None or round(soc, 1) != round(
                self.prevsoc, 1):
            left = abs(stop - t)
            if left == 0:
                self.chargerate = None
                return
            rate = round(abs(soc - target) * capacity * 36000 / left)
            limit = self.s("/Settings/DynamicEss/BatteryChargeLimit" if soc <= target
                           else "/Settings/DynamicEss/BatteryDischargeLimit")
            if limit >= 0:
                rate = min(rate, limit * 1000)
            self.chargerate = rate
            self.prevsoc = soc
        if target < soc and self.chargerate is not None:
            self.chargerate = -abs(self.chargerate)

    def _decide(self, w, soc, raw, capacity, minsoc, t) -> int:
        p = self.precision
        hyst = round(min(250.0 / (capacity * 10), 1.0), p)
        load = self._consumption()
        pv = self.plant.pv_power_w
        eff = min(1.0, ((1 - self.s("/Settings/DynamicEss/SystemEfficiency") / 100.0) / -2.0)
                  + 1.0)
        direct = min(pv, load)
        remaining = pv - direct
        plus = round(remaining * eff if remaining > 0 else -(load - direct) / eff)
        self.status["WindowSoc"] = round(w["soc"], p)
        self.status["WindowSlot"] = w["slot"]
        restrictions, allow = w["restrictions"], w["allow"]
        if w["strategy"] == SELFCONSUME:
            self.chargerate = None
            self.status["TargetSoc"] = 0.0
            self.ch, self.dh = hyst, 0.0
            self._self_consume(restrictions, allow)
            return 1
        self.override = None
        target = round(w["soc"], p)
        if target <= 0.1:
            return 91
        if self.status["TargetSoc"] and round(self.status["TargetSoc"], p) != target:
            self.chargerate = None
        self.status["TargetSoc"] = target
        etg = w["strategy"] in (PROGRID, TARGETSOC)
        mtg = w["strategy"] in (TARGETSOC, PROBATTERY)
        state = None
        if round(soc + self.ch, p) < target or target >= 100:
            if target >= 100 and soc >= 100 and (mtg or plus > 250):
                self.chargerate = 250
                state = 18
            else:
                self._rate(t, w["stop"], soc, target, capacity)
                if self.chargerate is not None and plus > self.chargerate:
                    if not etg or not allow:
                        self.override = plus
                        state = 3
                    else:
                        state = 11
                elif mtg and not restrictions & GRID2BAT:
                    state = 2
                elif plus > 0 and (not mtg or restrictions & GRID2BAT):
                    state = 14
                elif plus <= 0 and not mtg:
                    state = 20
                elif plus <= 0 and mtg and restrictions & GRID2BAT:
                    state = 15
        else:
            above = soc - self.dh > max(target, minsoc)
            if plus > 0 and not etg:
                state = 4
            elif above and etg and mtg and not restrictions & BAT2GRID:
                self._rate(t, w["stop"], soc, target, capacity)
                state = 6
            elif above and etg and not mtg and not restrictions & BAT2GRID:
                self._rate(t, w["stop"], soc, target, capacity)
                if plus - (self.chargerate or 0) < 0:
                    state = 17
                else:
                    self.override = -abs(self.chargerate or 0)
                    state = 13
            elif above:
                state = 21 if plus > 0 and restrictions & BAT2GRID else 7
            elif plus > 0 and etg:
                state = 5
            else:
                state = 20 if not mtg else 9
        if state is None:
            return 98
        final = self.override if self.override is not None else self.chargerate
        if final is None and (state in CHARGE or state in DISCHARGE):
            return 94
        if state in CHARGE:
            self.ch, self.dh = 0.0, hyst
            self._charge(abs(final), allow)
        elif state in SELF:
            self.ch, self.dh = hyst, 0.0
            self.chargerate = None
            self._self_consume(restrictions, allow)
        elif state in IDLE:
            self.ch, self.dh = hyst, 0.0
            self.chargerate = None
            self._idle(allow)
        elif state in DISCHARGE:
            self.ch, self.dh = hyst, 0.0
            self._discharge(restrictions, abs(final), allow)
        return state
