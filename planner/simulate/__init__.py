"""``helios simulate``: the production stack end to end on an accelerated clock.

The planner's real ``plan_once`` on its timer (``schedule.json`` written atomically, every run
saved in the SQL history), the executor's real loop (:class:`executor.runner.Executor`, its
control law, the ``simulated`` driver over the shared home physics ``executor.plant``) and the
storage in between (the executor's measurement rows, read back by the planner's state and load
providers), against a simulated home: recorded PV, load and prices, scheduled grid outages
(announced ahead or not), appliances from the config switched by the executor's relay
follower. One :class:`~planner.simulate.clock.SimClock` drives both programs.

Modules: :mod:`~planner.simulate.clock` (the clock and the pacing), :mod:`~planner.simulate.home`
(recorded data, outages, the plant with outages and appliances, the bill),
:mod:`~planner.simulate.metrics` (Prometheus text exposition over HTTP),
:mod:`~planner.simulate.run` (wiring and the loop), :mod:`~planner.simulate.report` (text,
``summary.json``, ``report.html``).
"""
