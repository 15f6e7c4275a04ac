"""An emulated Victron GX for closed-loop tests and the backtest.

* :mod:`gx_emulator.plans` — build realistic schedule.json plans for a plant profile.
* :mod:`gx_emulator.modbus_gx` — a real pymodbus TCP server on 127.0.0.1 with the GX register
  map (unit 100 + a battery unit), Victron's exception codes and scaling, driven by
  :class:`executor.drivers.simulated.Plant`.
* :mod:`gx_emulator.dbus_gx` — a private ``dbus-daemon`` with ``com.victronenergy.system``,
  ``.settings``, ``.hub4``, ``.battery`` and ``.vebus`` services that behave as
  ``reference/victron.md`` §1 and §7 describe, driven by the same plant.

Time never moves by itself: tests advance a :class:`gx_emulator.plans.FakeClock` and the plant
integrates up to it, so a simulated day runs in seconds.
"""
