"""Helios in the closed loop: the planner's compiled model re-planned slot by slot.

:class:`MpcStrategy` re-plans every ``replan_every`` slots with the compiled planner model
(:mod:`planner.optimize.model`, Parameters refilled, never rebuilt per step), seeing only
forecasts (perfect, perfect × seeded Gaussian noise, or ``real``: Helios's own forecasters run
on the recorded history before each re-plan, with day-ahead prices only once published, see
:class:`planner.evaluate.forecast.RealForecaster`), and executes the plan's slot for "now".
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from executor.schedule import intent_band
from planner.config import HeliosConfig
from planner.core.errors import OptimizationError
from planner.evaluate.ev import Car
from planner.evaluate.forecast import RealForecaster, ar1
from planner.evaluate.heater import Heater
from planner.evaluate.physics import TOL, PlanIntent, Series
from planner.inputs.gather import Inputs
from planner.optimize import model as model_mod
from planner.optimize import scenarios
from planner.optimize.components.water_heater import NAME as HEATER

#: what the closed loop's planner can see of PV and load (see :class:`MpcStrategy`)
FORECASTS = ("perfect", "noisy", "real")
#: what the simulated executor holds at the plan's value (see :class:`MpcStrategy`)
CONTROLS = ("intent", "battery", "grid", "hybrid")


class MpcStrategy:
    """Helios in the loop: re-plan every ``replan_every`` slots, execute the plan's slot.

    The planner sees prices as they are (day-ahead), PV and load as forecasts: ``perfect``
    (the actual values), ``real`` (:class:`RealForecaster`: Helios's load forecaster and a
    weather-free clear-sky × recent-index PV forecast, fitted on the history before each
    re-plan; prices only once published) or ``noisy``: for target slot ``j`` seen ``h`` slots ahead,
    ``actual_j × (1 + σ · e_j · min(1, √((h + 1) / H24)))``, clipped at 0, where ``e`` is a
    seeded AR(1) series with unit variance and a 3 h correlation time (separate for PV and
    load), ``σ`` = ``noise_pct`` % and ``H24`` the slots in 24 h. So, like a real forecast, the
    error is correlated in time, the same target looks the same from one re-plan to the next,
    and it shrinks as the slot comes closer (≈ σ/10 for the current 15-min slot, which the
    executor measures anyway; the full σ from a day ahead). Outages are announced
    ``outage_notice_h`` hours before they start (0: the planner learns of one when it has
    begun); an announced outage slot reaches the model as grid limits of 0
    (:class:`planner.optimize.model.SlotLimits`).

    ``control`` says what the executor holds: ``battery`` (the plan's battery power; the grid
    takes the forecast error), ``grid`` (the plan's grid power, as the Victron grid-setpoint
    path does; the battery takes the error) or ``hybrid`` (the grid power, but the battery
    never discharges into the grid or charges from it beyond the plan: see ``guard`` in
    :func:`step`; not what the executor does today). Identical with perfect forecasts.

    The horizon is ``planning.horizon_h``; with ``perfect`` and ``noisy`` it shrinks only
    where the data end (the last horizon of the data); with ``real`` it is, like
    ``helios plan``'s, min(``horizon_h``, the last published price), so it varies between
    re-plans (≈11–35 h). One compiled model per slot count, each built once and reused.

    Forecast errors (``noisy``, ``real``) are tallied per re-plan against the actual values:
    :meth:`stats` gives the MAE and bias over every forecast slot and for the current slot.
    """

    name = "helios"

    def __init__(self, cfg: HeliosConfig, series: Series, forecast: str = "perfect",
                 noise_pct: float = 0.0, seed: int = 0, replan_every: int = 1,
                 outage_notice_h: float = 48.0, control: str = "intent",
                 nowcast: bool = False, car: Car | None = None, heater: Heater | None = None):
        if forecast not in FORECASTS:
            raise ValueError(f"forecast: expected one of {', '.join(FORECASTS)}, got "
                             f"{forecast!r}")
        if control not in CONTROLS:
            raise ValueError(f"control: expected one of {', '.join(CONTROLS)}, got "
                             f"{control!r}")
        self.control = control
        self.nowcast = nowcast
        # the electric car planned in the same optimisation (cfg.ev): its truth steps in
        # simulate(); each re-plan sees its SoC and whether it is plugged in now
        self.car = car
        if car is None and cfg.ev is not None:
            cfg = replace(cfg, ev=None)  # no car in the loop: the house alone
        self._ev_kw: list[float] = []
        # the water heater planned in the same optimisation (cfg.water_heater): each re-plan
        # sees what it took today (delivered_kwh, as production measures it)
        self.heater = heater
        if heater is None and cfg.water_heater is not None:
            cfg = replace(cfg, water_heater=None)
        self._heater_kw: list[float] = []
        self.hedge = 0.0
        self._hedged = False
        # > 0: two-stage scenario plans (planner.optimize.scenarios), as helios plan makes them
        self.scenario_spread = cfg.planning.scenario_pv_spread
        # > 0: scenarios from the forecasters' own daily errors (scenarios.ErrorHistory)
        self.scenario_history = scenarios.ErrorHistory(
            cfg.planning.scenario_error_days, cfg.planning.scenario_quantile) \
            if cfg.planning.scenario_error_days > 0 else None
        self._scenario_days: np.ndarray | None = None  # local day and its end, per slot
        self._scenario_factors: tuple = (-1, None)
        self._scenario_models: dict = {}
        self.scenario_fallbacks = 0
        self.guard = control == "hybrid"
        if replan_every < 1:
            raise ValueError("replan_every must be >= 1")
        if forecast == "perfect" and cfg.planning.grid_hurdle_eur_per_kwh > 0:
            # the grid hurdle prices the value of deciding later on a better forecast; a
            # planner that is told its forecasts are exact has no better forecast to wait for
            cfg = replace(cfg, planning=replace(cfg.planning, grid_hurdle_eur_per_kwh=0.0))
        self.cfg = cfg
        self.series = series
        self.forecast = forecast
        self.noise = noise_pct / 100.0
        self.every = replan_every
        self.horizon = max(1, int(round(cfg.planning.horizon_h * 3600 / series.slot_s)))
        if forecast == "noisy":
            rng = np.random.default_rng(seed)
            self._err_pv = ar1(rng, series.n, series.slot_s)
            self._err_load = ar1(rng, series.n, series.slot_s)
            day = 86400 / series.slot_s
            self._lead = np.minimum(1.0, np.sqrt((np.arange(self.horizon) + 1) / day))
        self.real = RealForecaster(cfg, series) if forecast == "real" else None
        #: with ``real`` the horizon follows the published prices: every re-plan runs in one
        #: model of the longest such horizon, the shorter ones padded (``pad_to`` of
        #: :func:`planner.optimize.model.context`), so each hot-starts from the re-plan before
        #: it (None: one model per horizon length, also with devices: not paddable)
        self._pad_n = None
        if self.real is not None:
            longest = min(self.horizon, self.real.max_visible_slots())
            if model_mod.ModelSpec.from_config(cfg, longest, series.slot_s).paddable:
                self._pad_n = longest
        # forecast error tallies: [Σ|e| all slots, Σe all slots, n all, Σ|e| now, Σe now, n now]
        # (Python floats: the per-re-plan updates are cheaper than numpy scalars')
        self._err = {"pv": [0.0] * 6, "load": [0.0] * 6}
        self.notice = int(round(outage_notice_h * 3600 / series.slot_s))
        self.any_outage = not bool(series.grid_ok.all())
        self.cap = cfg.battery.capacity_kwh
        self._models: dict[int, model_mod.Model] = {}
        self._limits: tuple = ()  # (SlotLimits,) while an outage is known to the planner
        self.compiled = 0
        self._t0 = -1
        self._m = 0
        self.solves = 0
        self.fallback_solves = 0  # solved only by the fallback solvers
        self.failed_solves = 0  # no solver managed: the previous plan was kept
        self.failures: list[str] = []
        solver_order = ("clarabel", "ecos", "highs")
        first = next(x for x in solver_order if x != cfg.planning.solver)
        self._fallback_cfg = replace(cfg, planning=replace(cfg.planning, solver=first))
        self.milp_solves = 0
        self.intent_counts: dict[str, int] = {}
        self.solve_s = 0.0
        self.max_solve_s = 0.0

    def model_for(self, m: int) -> model_mod.Model:
        """The compiled model for ``m`` slots (built once).

        With ``perfect``/``noisy`` forecasts shorter models only appear at the end of the data,
        each for one re-plan, with ``m`` falling: they are dropped when the next one is built
        (≈1.2 MB each). With ``real`` the horizon follows the published prices (≈100 lengths
        a day at 15-min slots): every re-plan runs padded in the one model of the longest
        (:attr:`_pad_n`), so it hot-starts from the re-plan before it, not from the same
        length's basis of a day ago (DK1 2022: 100 models and ≈66 simplex iterations per
        re-plan before); with devices (not paddable) one model per length, each kept.
        """
        if self._pad_n is not None and m <= self._pad_n:
            m = self._pad_n
        found = self._models.get(m)
        if found is None:
            if m < self.horizon and self.real is None:
                for size in [k for k in self._models if k < self.horizon]:
                    del self._models[size]
            spec = model_mod.ModelSpec.from_config(self.cfg, m, self.series.slot_s)
            found = self._models[m] = model_mod.Model(spec)
            self.compiled += 1
        return found

    def inputs_at(self, t: int,
                  soc_kwh: float) -> tuple[Inputs, model_mod.SlotLimits | None]:
        """What the planner sees at slot ``t``: prices, forecasts, SoC, and the grid limits
        of the outage slots it has been told of (None: no outage known)."""
        s = self.series
        m = min(self.horizon, s.n - t)
        if self.real is not None:
            m = min(m, self.real.visible_end(t) - t)
        window = slice(t, t + m)
        pv, load = s.pv_kw[window], s.load_kw[window]
        if self.forecast == "noisy" and self.noise > 0:
            scale = self.noise * self._lead[:m]
            pv = np.maximum(pv * (1.0 + scale * self._err_pv[window]), 0.0)
            load = np.maximum(load * (1.0 + scale * self._err_load[window]), 0.0)
        elif self.real is not None:
            pv, load = self.real.forecast(t, m)
            if self.nowcast and t > 0:
                # the current slot from the latest measurement (the executor's last reading):
                # the load of the slot just ended, PV scaled by the clear-sky change
                pv, load = pv.copy(), load.copy()
                load[0] = s.load_kw[t - 1]
                cs0, cs1 = self.real.clearsky_kw[t - 1], self.real.clearsky_kw[t]
                if cs0 > 1e-3:
                    pv[0] = s.pv_kw[t - 1] * min(cs1 / cs0, 2.0)
        if self.forecast != "perfect":
            for kind, fc, actual in (("pv", pv, s.pv_kw[window]), ("load", load,
                                                                     s.load_kw[window])):
                e = fc - actual
                e0 = float(e[0])
                tally = self._err[kind]
                tally[0] += float(np.add.reduce(np.abs(e)))  # = np.abs(e).sum()
                tally[1] += float(np.add.reduce(e))
                tally[2] += len(e)
                tally[3] += abs(e0)
                tally[4] += e0
                tally[5] += 1
        limits = None
        if self.any_outage:
            down = ~s.grid_ok[window]
            known = down & (s.outage_start[window] - t <= self.notice)
            if known.any():
                up = np.where(known, 0.0, np.inf)  # inf: the configured limit
                limits = model_mod.SlotLimits(import_kw=up, export_kw=up)
        inputs = Inputs(s.index[window], s.slot_s, s.spot_eur_per_kwh[window],
                        s.buy_eur_per_kwh[window], s.sell_eur_per_kwh[window], pv, load,
                        soc_kwh / self.cap * 100.0, s.index[t])
        return inputs, limits

    def replan(self, t: int, soc_kwh: float) -> model_mod.Solution | None:
        """Solve at slot ``t`` and keep the plan.

        When the solve fails it is retried with the other solvers first (Clarabel, ECOS,
        then HiGHS); when that fails too, nothing changes — as in production, where a failed
        ``helios plan`` leaves the previous schedule — and the old plan is followed while it
        lasts (then: battery idle). Both are counted in :meth:`stats`.
        """
        inputs, limits = self.inputs_at(t, soc_kwh)
        mdl = self.model_for(inputs.n)
        # Model.solve(inputs, cfg[, limits]): limits only while an outage is known
        extra = () if limits is None else (limits,)
        self._limits = extra
        if self.car is not None or self.heater is not None:  # as helios plan passes them
            extra = (limits, {**(self._ev_extra(t) or {}), **self._heater_extra(t)})
        try:
            sol = None
            if ((self.scenario_spread > 0 or self.scenario_history is not None)
                    and limits is None and inputs.n > 4
                    and self.car is None and self.heater is None):
                sol = self._scenario_solve(t, inputs)
            if sol is None:
                sol = mdl.solve(inputs, self.cfg, *extra)
        except (OptimizationError, ValueError) as exc:
            # ValueError: cvxpy cannot unpack a solution HiGHS reported as UNKNOWN
            self.failures.append(f"{inputs.index[0].isoformat()}: {exc}"[:300])
            try:
                sol = mdl.solve(inputs, self._fallback_cfg, *extra)
                self.fallback_solves += 1
            except (OptimizationError, ValueError) as exc2:
                self.failures.append(f"{inputs.index[0].isoformat()}: fallback: {exc2}"[:300])
                self.failed_solves += 1
                return None
        self.solves += 1
        self.milp_solves += sol.exact_milp
        self.solve_s += sol.solve_s
        self.max_solve_s = max(self.max_solve_s, sol.solve_s)
        self._t0, self._m = t, inputs.n
        self._setpoint = (sol.battery_discharge_kw - sol.battery_charge_kw).tolist()
        self._grid = (sol.grid_import_kw - sol.grid_export_kw).tolist()
        self._sol = sol
        if self.car is not None:
            self._ev_kw = sol.device_kw["ev"].tolist()
        if self.heater is not None:
            self._heater_kw = sol.device_kw[HEATER].tolist()
        self._hedged = False
        if self.hedge > 0 and self.control == "intent" and inputs.n > 1:
            self._hedged = self._hedge(mdl, inputs, sol)
        curtails = sol.pv_used_kw < inputs.pv_kw - TOL
        self._pv_cap = np.where(curtails, sol.pv_used_kw, math.inf).tolist()
        return sol

    def _ev_extra(self, t: int) -> dict | None:
        """The car now for the planner (``Context.extra``): its SoC, plugged in or not."""
        if self.car is None:
            return None
        return {"ev": {"soc_pct": self.car.soc_pct,
                       "plugged_in": bool(self.car.profile.plugged[t] > 0)}}

    def _heater_extra(self, t: int) -> dict:
        """The heater now (``Context.extra``): the energy it took today."""
        if self.heater is None:
            return {}
        return {HEATER: {"delivered_kwh": self.heater.delivered_kwh(t)}}

    def heater_kw(self, t: int) -> float:
        """The plan's heater power for slot ``t`` (0 when no plan covers it). [kW]"""
        j = t - self._t0
        return self._heater_kw[j] if 0 <= j < len(self._heater_kw) and j < self._m else 0.0

    def ev_kw(self, t: int) -> float:
        """The plan's charging power for slot ``t`` (0 when no plan covers it). [kW]"""
        j = t - self._t0
        return self._ev_kw[j] if 0 <= j < len(self._ev_kw) and j < self._m else 0.0

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """Re-plan when due, then the plan's setpoint for slot ``t``."""
        j = t - self._t0
        if self._t0 < 0 or j >= self.every or j >= self._m:
            if self.replan(t, soc_kwh) is not None:
                j = 0
            elif self._t0 < 0 or j >= self._m:  # no plan covers this slot: stay idle
                b = self.cfg.battery  # (the executor releases: self-consumption)
                self.intent = ("self_consume", -b.max_charge_kw, b.max_discharge_kw, soc_kwh)
                return 0.0, math.inf, None
        grid = self._grid[j] if self.control != "battery" else None
        if self.control == "intent":
            sol = self._sol
            b = self.cfg.battery
            if j == 0 and self._hedged:
                self.intent = PlanIntent("self_consume", -b.max_charge_kw, b.max_discharge_kw,
                                         float(sol.soc_kwh[j]), float(self._grid[j]))
                self.intent_counts["hedged"] = self.intent_counts.get("hedged", 0) + 1
                return self._setpoint[j], self._pv_cap[j], grid
            self.intent = PlanIntent(*intent_band(
                sol.battery_charge_kw[j], sol.battery_discharge_kw[j], sol.grid_import_kw[j],
                sol.grid_export_kw[j], b.max_charge_kw, b.max_discharge_kw),
                float(sol.soc_kwh[j]), float(self._grid[j]))
            self.intent_counts[self.intent[0]] = self.intent_counts.get(self.intent[0], 0) + 1
        return self._setpoint[j], self._pv_cap[j], grid

    def _scenario_solve(self, t: int, inputs: Inputs):
        """The two-stage scenario plan (:func:`planner.optimize.scenarios.solve`, every
        compiled size kept), or None (use the plain plan) when it splits a flow pair or fails,
        or, with ``planning.scenario_error_days``, while the error history is too short or
        says nothing to hedge (the deterministic plan)."""
        factors = None
        if self.scenario_history is not None:
            factors = self._error_factors(t, inputs)
            if factors is None:
                return None
        sol = scenarios.solve(inputs, self.cfg, self.scenario_spread, self._scenario_models,
                              factors)
        if sol is None:
            self.scenario_fallbacks += 1
        return sol

    def _error_factors(self, t: int, inputs: Inputs):
        """Record this plan's forecast of today's energy (the first of the day counts) and
        the scenario factors from the days complete before ``t``."""
        s = self.series
        if self._scenario_days is None:
            local = s.index.tz_convert(self.cfg.site.tz)
            _, codes = np.unique(local.date, return_inverse=True)
            ends = np.searchsorted(codes, codes, side="right")
            self._scenario_days = np.stack([codes, ends])
            if self.real is not None:  # the forecaster's errors before the run's first day
                for start, stop, pv_kwh, load_kwh in self.real.past_day_forecasts(
                        t, self.scenario_history.days):
                    self.scenario_history.record(int(codes[start]), start, stop, pv_kwh,
                                                 load_kwh)
        day, end = (int(x) for x in self._scenario_days[:, t])
        h = s.slot_s / 3600.0
        if end - t <= inputs.n:  # the plan covers the rest of the day
            k = end - t
            self.scenario_history.record(day, t, end, float(inputs.pv_kw[:k].sum() * h),
                                         float(inputs.load_kw[:k].sum() * h))
        if self._scenario_factors[0] != day:
            def actual(a: int, b: int) -> tuple[float, float]:
                return float(s.pv_kw[a:b].sum() * h), float(s.load_kw[a:b].sum() * h)
            self._scenario_factors = (day, self.scenario_history.factors(
                t, actual, self.cfg.planning.scenario_load))
        return self._scenario_factors[1]

    def _hedge(self, mdl, inputs: Inputs, sol) -> bool:
        """True when a PV scenario (forecast × (1 ± hedge) after the current hour) would
        self-consume in the first slot while the plan does not: then the first slot
        self-consumes (deviate from the reactive rule only when every scenario agrees)."""
        b = self.cfg.battery
        first = intent_band(sol.battery_charge_kw[0], sol.battery_discharge_kw[0],
                            sol.grid_import_kw[0], sol.grid_export_kw[0], b.max_charge_kw,
                            b.max_discharge_kw)[0]
        if first == "self_consume":
            return False
        k = int(round(3600 / self.series.slot_s))
        for scale in (1.0 - self.hedge, 1.0 + self.hedge):
            pv = inputs.pv_kw.copy()
            pv[k:] *= scale
            alt = mdl.solve(replace(inputs, pv_kw=pv), self.cfg, *self._limits)
            self.solves += 1
            intent = intent_band(alt.battery_charge_kw[0], alt.battery_discharge_kw[0],
                                 alt.grid_import_kw[0], alt.grid_export_kw[0],
                                 b.max_charge_kw, b.max_discharge_kw)[0]
            if intent == "self_consume":
                return True
        return False

    def stats(self) -> dict:
        """Solve counts and times."""
        return {"solves": self.solves, "milp_solves": self.milp_solves,
                "fallback_solves": self.fallback_solves, "failed_solves": self.failed_solves,
                "failures": self.failures[:10],
                "solve_s": round(self.solve_s, 3), "max_solve_ms": round(self.max_solve_s * 1e3, 2),
                "compiled_models": self.compiled, **self.forecast_stats()}

    def forecast_stats(self) -> dict:
        """Forecast errors seen by the planner (empty with perfect forecasts). [kW]

        ``<pv|load>_mae_kw`` and ``_bias_kw`` (forecast − actual) over every slot of every
        re-plan's horizon; ``_now_mae_kw`` and ``_now_bias_kw`` for the re-plan's first slot.
        """
        if self.forecast == "perfect":
            return {}
        out: dict = {}
        for kind, (a_all, b_all, n_all, a_now, b_now, n_now) in self._err.items():
            if n_all:
                out[f"{kind}_mae_kw"] = round(float(a_all / n_all), 6)
                out[f"{kind}_bias_kw"] = round(float(b_all / n_all), 6)
                out[f"{kind}_now_mae_kw"] = round(float(a_now / n_now), 6)
                out[f"{kind}_now_bias_kw"] = round(float(b_now / n_now), 6)
        if self.real is not None:
            out.update(self.real.stats())
            out["compiled_sizes_min_max"] = sorted(self._models)[:1] + sorted(self._models)[-1:]
        return out
