"""Sharing one battery power among several batteries: by weight within limits, and by the
plan's per-battery powers (issue 13: several batteries).

The control law gives one battery power for the site (+ = discharge); a driver with several
batteries behind it (the ``marstek`` units, the ``simulated`` driver's further batteries)
shares it. With the plan's powers per battery in the setpoint
(:attr:`executor.drivers.base.Setpoint.battery_shares_w`: ``battery`` for the home battery,
a ``batteries:`` name for each further one) and the driver told which battery is which, the
shares follow the plan's proportions — what the optimiser chose knowing each battery's
efficiencies, wear and SoC — and the tracking error is shared in the same proportions; a
battery the plan leaves idle takes only what the planned ones cannot (its own limit reached).
Without them, or when the plan has no battery moving in the direction needed, the driver's
own weights decide (energy above the floor / room below the top). Standard library only.
"""

from __future__ import annotations

__all__ = ["plan_weights", "split_power"]

#: a battery the plan leaves idle is weighted this much of its own weight: it only takes
#: what the planned ones cannot (their limits reached)
IDLE_WEIGHT = 1e-6


def split_power(total_w: float, limits_w: list, weights: list) -> list:
    """``total_w`` shared by weight, each share within its limit, the excess moved on. [W]

    ``limits_w`` are ≥ 0 magnitudes for the sign of ``total_w``; ``weights`` ≥ 0 (all zero:
    equal shares among the units with a limit). The shares add up to ``total_w`` unless the
    limits add up to less.
    """
    n = len(limits_w)
    out = [0.0] * n
    active = [i for i in range(n) if limits_w[i] > 0]
    w = [max(weights[i], 0.0) for i in range(n)]
    if active and sum(w[i] for i in active) <= 0:
        w = [1.0] * n
    active = [i for i in active if w[i] > 0]
    remaining = abs(total_w)
    while remaining > 1e-9 and active:
        total_weight = sum(w[i] for i in active)
        give = {i: remaining * w[i] / total_weight for i in active}
        capped = [i for i in active if out[i] + give[i] >= limits_w[i]]
        if not capped:
            for i in active:
                out[i] += give[i]
            break
        for i in capped:
            remaining -= limits_w[i] - out[i]
            out[i] = float(limits_w[i])
            active.remove(i)
    sign = -1.0 if total_w < 0 else 1.0
    return [sign * v for v in out]


def plan_weights(total_w: float, names: list, planned_w: dict | None, fallback: list) -> list:
    """Weights for :func:`split_power`: each battery's planned power when it moves the same
    way as ``total_w`` (+ = discharge), a tiny share of its ``fallback`` weight otherwise;
    ``fallback`` alone without plan powers or with none in that direction.

    ``names``: the plan's battery name of each battery (``battery``, a ``batteries:`` name,
    or None: not in the plan); ``planned_w``: ``Setpoint.battery_shares_w``. [W]
    """
    if not planned_w or total_w == 0:
        return list(fallback)
    sign = 1.0 if total_w > 0 else -1.0
    planned = [sign * float(planned_w.get(n, 0.0)) if n is not None else 0.0 for n in names]
    if not any(p > 1e-9 for p in planned):
        return list(fallback)
    fb_total = sum(max(f, 0.0) for f in fallback) or 1.0
    return [p if p > 1e-9 else IDLE_WEIGHT * (max(f, 0.0) / fb_total + 1e-3) * max(planned)
            for p, f in zip(planned, fallback)]  # noqa: B905 - Python 3.8 on a GX
