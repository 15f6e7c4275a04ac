"""Vehicle providers: the car's state of charge, plug/charging state and whether it is at home.

``create("vehicle", cfg.ev.vehicle, ctx).read(now)`` returns a
:class:`~planner.providers.vehicle.base.VehicleState`. Types: ``manual`` (values from the
config), ``tesla`` (Fleet API ``vehicle_data`` through the signed-command proxy or
Teslemetry), ``kia_hyundai`` (the Kia Connect / Hyundai Bluelink cloud: cached state, forced
refresh only within a daily budget). The web ones are asked at most every ``min_interval_s``;
their last answer is kept in SQL (``forecast_cache``, kind ``vehicle``) and used in between,
and whenever the car must not be woken (see ``base.py``).
"""
