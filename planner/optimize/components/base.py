r"""What a device brings to the optimisation: the :class:`Component` interface.

A component owns its cvxpy variables and Parameters, its constraints, its cost terms and its
contribution to the house's AC power balance. :class:`planner.optimize.problem.Problem`
assembles any list of components into one LP:

.. math::

    \sum_c bus_c(t) = 0 \quad \forall t, \qquad
    \min \sum_c cost_c - \sum_c terminal_c

Lifecycle (cvxportfolio's: create Parameters → compile once → write values each step):

1. ``build(n, dt_h)``, once per problem shape: create variables and ``cp.Parameter``\ s and
   set :attr:`Component.bus_kw`, :attr:`~Component.constraints`, :attr:`~Component.cost`,
   :attr:`~Component.terminal_value`, :attr:`~Component.flows` and
   :attr:`~Component.exclusive`. Everything data-dependent must be a Parameter, and the
   expressions must stay DPP (a Parameter may multiply a variable, never another Parameter:
   fold such products into one Parameter, as :class:`planner.optimize.components.Grid` does
   with price × limit), so cvxpy compiles the problem once per shape.
2. ``set_inputs(ctx)``, before every solve: write the Parameters' values from the
   :class:`Context` (and the component's own settings).
3. ``duals()`` right after the LP (a MILP re-solve has none) and ``outputs()`` after the
   final solve: named arrays and numbers, ``<component>_<quantity>_<unit>``
   (e.g. ``grid_import_kw``), which become plan columns.

Power limits that change from solve to solve are :class:`Flow`\ s: ``kw = scale ⊙ x`` with
``x`` in [0, bound] and the Parameter ``scale = limit / bound`` — a column bound for HiGHS,
not an LP row, and still DPP (docs/architecture.md, decision 1). Two flows that must never
both run in one slot (charge and discharge, import and export) are declared as an
:class:`Exclusive` pair; the exact re-solve gives such a pair one binary per slot only when
the LP splits it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.core.errors import DataError
from planner.core.site import SiteSpec
from planner.optimize._cvxpy import cp

#: flows below this are treated as zero when checking exclusivity [kW]
EXCLUSIVE_TOL_KW = 1e-6


@dataclass(frozen=True)
class Context:
    """What one solve knows (arrays of length ``n``): prices, forecasts, the start state, the
    site and the per-slot limits. Components read their Parameter values from it."""

    dt_h: float
    buy_eur_per_kwh: np.ndarray
    sell_eur_per_kwh: np.ndarray
    pv_kw: np.ndarray
    load_kw: np.ndarray
    soc_start_kwh: float
    site: SiteSpec
    #: per-slot limits [kW], already capped by the site's (0 = that flow is off in the slot)
    import_kw: np.ndarray
    export_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    #: extra cost on grid exchange and curtailment near "now" (docs/architecture.md, 23)
    hurdle_eur_per_kwh: np.ndarray
    #: value of one kWh stored at the horizon end (negative: a penalty on what is left)
    terminal_value_eur_per_kwh: float
    #: per-solve inputs of further components, by component name (e.g. an EV's plug state)
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: the slot starts (UTC ``pandas.DatetimeIndex``), for components with local-time windows
    index: Any = None
    #: a shorter solve in a longer model (``pad_to`` of :func:`planner.optimize.model.context`):
    #: the first ``active_n`` slots are the solve's, the rest pad it (every flow 0, no price,
    #: no reserve; :attr:`index` then holds the solve's own slots only); None: every slot is
    #: the solve's
    active_n: int | None = None

    @property
    def n(self) -> int:
        """Number of slots."""
        return len(self.buy_eur_per_kwh)


@dataclass(frozen=True)
class SlotLimits:
    """Per-slot power limits for one solve, each capped by the site's configured maximum. [kW]

    ``None`` keeps the configured limit, a number applies to every slot, an array gives one
    value per slot (``inf``: the configured limit in that slot). A grid outage is
    ``import_kw = export_kw = 0`` in its slots; live battery limits (the BMS's charge/discharge
    current limits as power) go in ``charge_kw`` / ``discharge_kw``. A live limit never
    raises a configured one.
    """

    import_kw: Any = None
    export_kw: Any = None
    charge_kw: Any = None
    discharge_kw: Any = None

    def resolve(self, n: int, site: SiteSpec) -> dict[str, np.ndarray]:
        """The four limits as arrays of length ``n``, capped by ``site``.

        Raises
        ------
        DataError
            A limit with the wrong length, a negative or a non-finite value (names it).
        """
        out = {}
        for name, cap in (("import_kw", site.max_import_kw), ("export_kw", site.max_export_kw),
                          ("charge_kw", site.max_charge_kw),
                          ("discharge_kw", site.max_discharge_kw)):
            given = getattr(self, name)
            if given is None:
                out[name] = np.full(n, float(cap))
                continue
            arr = np.asarray(given, dtype=float)
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            if arr.shape != (n,):
                raise DataError(f"limits.{name}: expected {n} values, got {arr.shape}")
            if np.isnan(arr).any() or (arr < 0).any():
                raise DataError(f"limits.{name}: expected values >= 0, got {arr.min()}")
            out[name] = np.minimum(arr, float(cap))
        return out


class Flow:
    """A non-negative power with a per-slot limit: ``kw = scale ⊙ x``, ``x`` in [0, bound]. [kW]

    ``bound`` is structural (a column bound): the configured maximum, e.g. the fuse's import
    limit, or 1 for a flow whose only limit is data (PV: ``scale`` = the forecast). The
    per-slot limit enters through the Parameter ``scale = limit / bound`` (:meth:`set_limit`),
    so an outage or a live battery limit needs no recompile and no LP row, and the usual case
    (limit = bound, scale = 1) gives HiGHS exactly the coefficients of a plain bounded
    variable. After a solve :attr:`value` holds the flow, clipped to [0, limit] (solver
    round-off); :meth:`Exclusive.net` may lower it.
    """

    def __init__(self, name: str, n: int, bound: float = 1.0):
        self.name = name
        self.bound = float(bound)
        self.scale = cp.Parameter(n, nonneg=True, name=f"{name}_scale")
        self.x = cp.Variable(n, bounds=[0, self.bound], name=name)
        self.kw = cp.multiply(self.scale, self.x)
        self.limit_kw = np.zeros(n)
        self.value: np.ndarray | None = None

    def set_limit(self, limit_kw: np.ndarray) -> None:
        """The per-slot limit for the next solve (at most ``bound`` unless ``bound`` is 1). [kW]"""
        limit = np.asarray(limit_kw, dtype=float)
        if self.bound == 1.0:
            self.limit_kw = limit
            put(self.scale, limit)
        elif self.bound > 0:
            self.limit_kw = np.minimum(limit, self.bound)
            put(self.scale, self.limit_kw / self.bound)
        else:
            self.limit_kw = np.zeros(limit.shape)
            put(self.scale, self.limit_kw)

    def read(self) -> np.ndarray:
        """Take the solved value (kW, clipped to [0, limit]) into :attr:`value`."""
        x = np.asarray(self.x.value, dtype=float).reshape(-1)
        self.value = np.clip(self.scale.value * x, 0.0, self.limit_kw)
        return self.value


@dataclass(frozen=True)
class Exclusive:
    """Two flows that must not both be positive in one slot (charge/discharge, import/export).

    ``nettable()`` (optional) gives the slots where lowering both flows by their common part
    keeps the balance and cannot raise the cost — e.g. import/export where ``sell <= buy`` —
    so an LP tie there is resolved exactly without binaries (docs/architecture.md, 3 and 5).
    """

    a: Flow
    b: Flow
    nettable: Callable[[], np.ndarray] | None = None

    @property
    def name(self) -> str:
        """``<a>/<b>``, e.g. ``battery_charge/battery_discharge``."""
        return f"{self.a.name}/{self.b.name}"

    def net(self) -> None:
        """Net the two solved flows where :attr:`nettable` allows it."""
        if self.nettable is None:
            return
        both = np.minimum(self.a.value, self.b.value)
        fixable = (both > 0) & np.asarray(self.nettable(), dtype=bool)
        if fixable.any():
            common = np.where(fixable, both, 0.0)
            self.a.value = self.a.value - common
            self.b.value = self.b.value - common

    def split(self) -> np.ndarray:
        """Slots where both solved flows are positive (beyond :data:`EXCLUSIVE_TOL_KW`)."""
        return np.minimum(self.a.value, self.b.value) > EXCLUSIVE_TOL_KW

    def needs_binaries(self) -> bool:
        """True unless netting resolves every slot (then the MILP needs no binary here)."""
        return self.nettable is None or not bool(np.all(self.nettable()))


class Component:
    """One device in the optimisation; subclasses override what they need.

    Attributes set by :meth:`build`: ``bus_kw`` (expression of length ``n``, + = supplies
    the house's AC bus; None when not on the bus), ``constraints``, ``cost`` [EUR],
    ``terminal_value`` [EUR] (what is left at the horizon end is worth this; subtracted from
    the cost), ``flows`` (every :class:`Flow`, whose first slot is the decision executed now)
    and ``exclusive`` (the :class:`Exclusive` pairs).
    """

    def __init__(self, name: str):
        self.name = name
        self.n = 0
        self.dt_h = 0.0
        self.bus_kw: Any = None
        self.constraints: list = []
        self.cost: Any = 0.0
        self.terminal_value: Any = 0.0
        self.flows: list[Flow] = []
        self.exclusive: list[Exclusive] = []
        #: constraints with integer variables (on/off devices): only in the MILP the builder
        #: solves after the LP relaxation, and only when some component has them
        self.discrete: list = []

    def build(self, n: int, dt_h: float) -> None:
        """Create the variables, Parameters, constraints and cost terms for ``n`` slots."""
        self.n, self.dt_h = n, dt_h

    def set_inputs(self, ctx: Context) -> None:
        """Write this component's Parameter values for the next solve."""

    def relaxation_ok(self) -> bool:
        """True when the LP's solution already satisfies :attr:`discrete` (then the builder
        skips the MILP); read after the LP. Without discrete constraints: True."""
        return not self.discrete

    def round_relaxation(self, price: np.ndarray | None = None) -> bool:
        """Fix the LP relaxation's fractional on/off pattern to a whole one for one more LP
        (issue 13: the MILP only where it is needed); False: no rounding (the builder runs
        the MILP). ``price``: the relaxation's marginal cost of a kW per slot (the balance's
        dual), None when unknown. The next :meth:`set_inputs` undoes it. Without discrete
        constraints: True (nothing to round)."""
        return not self.discrete

    def duals(self) -> dict[str, np.ndarray]:
        """Named duals, read right after the LP (e.g. the value of stored energy)."""
        return {}

    def outputs(self) -> dict[str, Any]:
        """Named results of the last solve (arrays of length ``n`` or numbers)."""
        return {}


def put(param: Any, value: Any) -> None:
    """Set ``param``'s value, checked here rather than by cvxpy.

    cvxpy validates every assignment against the Parameter's attributes (a projection and an
    ``allclose``: ≈30 µs each, ≈0.6 ms of a ≈5 ms re-solve with 20 Parameters). This checks
    shape, finiteness and sign with plain numpy (one or two reductions: a sum is finite
    only when every value is, a minimum is >= 0 only when no value is negative or NaN) and
    stores the value the way cvxpy's setter does after its check (``Leaf.save_value``).

    Raises
    ------
    ValueError
        Wrong shape, a non-finite value, or a negative value for a ``nonneg`` Parameter.
    """
    if type(value) is float and param.shape == ():  # the many scalar Parameters
        if not math.isfinite(value):
            raise ValueError(f"{param.name()}: non-finite value")
        if value < 0 and param.attributes["nonneg"]:
            raise ValueError(f"{param.name()}: negative value for a nonneg Parameter")
        param._value = np.array(value)  # Leaf.save_value of a dense Parameter
        return
    arr = np.asarray(value, dtype=float)
    if arr.shape != param.shape:
        raise ValueError(f"{param.name()}: expected shape {param.shape}, got {arr.shape}")
    if not math.isfinite(arr.sum()):
        raise ValueError(f"{param.name()}: non-finite value")
    if param.attributes["nonneg"] and arr.size and not arr.min() >= 0:
        raise ValueError(f"{param.name()}: negative value for a nonneg Parameter")
    param.save_value(arr)


def values(expr: Any, lo: float | np.ndarray | None = 0.0,
           hi: float | np.ndarray | None = None) -> np.ndarray:
    """The solved value of a cvxpy expression as a 1-d float array, clipped to [lo, hi]."""
    a = np.asarray(expr.value, dtype=float).reshape(-1).copy()
    return np.clip(a, lo, hi)
