"""Darkstar's S-index: plan on a safety margin — more load and less PV than forecast.

``planning.load_safety_factor`` (≥ 1) multiplies the load forecast and
``planning.pv_confidence_pct`` (≤ 100) scales the PV forecast. With ``planning.s_index.mode:
dynamic`` both are the static values moved by

* the **PV deficit** of the next 24 h: ``d = clip(1 − ΣPV / Σload, 0, 1)``; the load factor
  grows by ``deficit_weight · d`` and the PV confidence falls by ``100 · deficit_weight · d``;
* the **recent forecast error** over ``error_days``: ``e = Σ|forecast − measured| / Σ measured``
  per quantity, the forecast being what the plans stored in ``plan_slot`` for slots now past
  (averaged over the plans that covered the slot) and the truth the real ``measurements`` in
  those slots; the load factor grows by ``error_weight · e_load`` and the PV confidence falls
  by ``100 · error_weight · e_pv``;

capped at ``max_load_safety_factor`` and ``min_pv_confidence_pct``. With the defaults (1.0,
100 %, static) :func:`apply` returns the very same inputs, so a plan is bit-identical.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from planner.config import HeliosConfig
from planner.core.errors import StorageError
from planner.history.rows import to_db_time
from planner.history.schema import measurements, plan_slot
from planner.history.store import Store, real_measurement
from planner.inputs.types import Inputs, InputStatus

__all__ = ["SIndex", "apply", "for_plan", "forecast_errors", "margins", "pv_deficit"]


@dataclass(frozen=True)
class SIndex:
    """The margins one plan used."""

    load_factor: float
    pv_confidence_pct: float
    pv_deficit: float = 0.0
    load_error: float | None = None
    pv_error: float | None = None

    @property
    def neutral(self) -> bool:
        """True when the forecasts are planned as they are."""
        return self.load_factor == 1.0 and self.pv_confidence_pct == 100.0

    def describe(self) -> str:
        """One line for the summary."""
        parts = [f"load x {self.load_factor:.3f}", f"PV at {self.pv_confidence_pct:.1f} %"]
        if self.pv_deficit:
            parts.append(f"PV deficit {self.pv_deficit:.2f}")
        for name, e in (("load", self.load_error), ("PV", self.pv_error)):
            if e is not None:
                parts.append(f"recent {name} error {e:.2f}")
        return "S-index: " + ", ".join(parts)


def pv_deficit(inputs: Inputs, hours: float = 24.0) -> float:
    """``clip(1 − ΣPV / Σload, 0, 1)`` over the first ``hours`` of the horizon."""
    k = max(1, int(round(hours * 3600 / inputs.slot_s)))
    load = float(np.sum(inputs.load_kw[:k]))
    if load <= 0:
        return 0.0
    return float(np.clip(1.0 - float(np.sum(inputs.pv_kw[:k])) / load, 0.0, 1.0))


def forecast_errors(store: Store, now: pd.Timestamp, days: int) -> dict[str, float | None]:
    """Relative forecast errors ``{"load": e, "pv": e}`` over the ``days`` before ``now``
    (None where there is nothing to compare): planned ``load_kw``/``pv_kw`` per past slot
    (mean over the plans that had it) against the mean of the real measurements in it."""
    since, until = to_db_time(now - pd.Timedelta(days=days)), to_db_time(now)
    fc_q = (sa.select(plan_slot.c.slot_start, plan_slot.c.slot_end,
                      sa.func.avg(plan_slot.c.load_kw), sa.func.avg(plan_slot.c.pv_kw))
            .where(plan_slot.c.slot_start >= since, plan_slot.c.slot_end <= until)
            .group_by(plan_slot.c.slot_start, plan_slot.c.slot_end))
    m_q = (sa.select(measurements.c.measured_at, measurements.c.load_power_w,
                     measurements.c.pv_power_w)
           .where(measurements.c.measured_at >= since, measurements.c.measured_at < until,
                  real_measurement()))
    store.ensure_schema()

    def run() -> tuple[list, list]:
        with store.engine.connect() as conn:
            return conn.execute(fc_q).all(), conn.execute(m_q).all()

    fc, ms = store._guard("reading the forecast error history", run)
    out: dict[str, float | None] = {"load": None, "pv": None}
    if not fc or not ms:
        return out
    m = pd.DataFrame(ms, columns=["at", "load_w", "pv_w"])
    m["at"] = pd.to_datetime(m["at"])
    f = pd.DataFrame(fc, columns=["start", "end", "load_kw", "pv_kw"])
    f["start"], f["end"] = pd.to_datetime(f["start"]), pd.to_datetime(f["end"])
    bins = pd.IntervalIndex.from_arrays(f["start"], f["end"], closed="left")
    slot = pd.cut(m["at"], bins)
    for name, col_f, col_m in (("load", "load_kw", "load_w"), ("pv", "pv_kw", "pv_w")):
        actual = m.groupby(slot, observed=True)[col_m].mean() / 1000.0
        actual = actual.dropna()
        if actual.empty:
            continue
        planned = f.set_index(bins)[col_f].reindex(actual.index)
        total = float(actual.abs().sum())
        if total > 0:
            out[name] = float(np.abs(planned.to_numpy() - actual.to_numpy()).sum() / total)
    return out


def margins(inputs: Inputs, cfg: HeliosConfig, now: pd.Timestamp | None = None,
            store: Store | None = None) -> SIndex:
    """The load factor and PV confidence for this plan (see the module docstring)."""
    pl = cfg.planning
    s = pl.s_index
    if s.mode != "dynamic":
        return SIndex(pl.load_safety_factor, pl.pv_confidence_pct)
    deficit = pv_deficit(inputs)
    errors: dict[str, float | None] = {"load": None, "pv": None}
    if store is not None and now is not None:
        errors = forecast_errors(store, now, s.error_days)
    load = pl.load_safety_factor + s.deficit_weight * deficit \
        + s.error_weight * (errors["load"] or 0.0)
    pv = pl.pv_confidence_pct - 100.0 * (s.deficit_weight * deficit
                                         + s.error_weight * (errors["pv"] or 0.0))
    return SIndex(round(float(min(max(load, pl.load_safety_factor), s.max_load_safety_factor)),
                        6),
                  round(float(max(min(pv, pl.pv_confidence_pct), s.min_pv_confidence_pct)), 6),
                  round(deficit, 6), errors["load"], errors["pv"])


def apply(inputs: Inputs, index: SIndex) -> Inputs:
    """``inputs`` with the load x the factor and the PV x the confidence (the same object
    when both are neutral)."""
    if index.neutral:
        return inputs
    return dataclasses.replace(inputs, load_kw=inputs.load_kw * index.load_factor,
                               pv_kw=inputs.pv_kw * (index.pv_confidence_pct / 100.0))


def for_plan(inputs: Inputs, cfg: HeliosConfig, now: pd.Timestamp) -> Inputs:
    """:func:`margins` then :func:`apply`; a margin other than 1 / 100 % is listed in the
    input status (``kind: s_index``: summary, report, plan_history). The error history is
    read only in ``dynamic`` mode from an existing database (never created here; a failing
    one counts as no history)."""
    store = None
    if cfg.planning.s_index.mode == "dynamic" and cfg.storage.enabled:
        try:
            store = Store.from_config(cfg)
            u = store.url
            if u.get_backend_name() == "sqlite" and not (u.database
                                                         and os.path.exists(u.database)):
                store = None
        except StorageError:
            store = None
    try:
        index = margins(inputs, cfg, now, store)
    except StorageError:
        index = margins(inputs, cfg, None, None)
    finally:
        if store is not None:
            store.dispose()
    if index.neutral:
        return inputs
    status = InputStatus("s_index", cfg.planning.s_index.mode, "planning.s_index",
                         inputs.index[0], inputs.end, False, index.describe())
    return dataclasses.replace(apply(inputs, index), status=(*inputs.status, status))
