"""``helios serve``: a small local web app and JSON API over the planner's own files.

Read-only over ``schedule.json`` and the plan history (:mod:`planner.history`); the one thing
it changes is the executor's pause file (:mod:`executor.pause`), and only with the API token.

* :mod:`planner.serve.data` — the installation's paths and the read-only history queries,
  the status document;
* :mod:`planner.serve.savings` — realised savings from ``measurements`` against no battery
  and plain self-consumption (:func:`executor.plant.step`);
* :mod:`planner.serve.security` — the token, ``Host`` / ``Origin`` checks;
* :mod:`planner.serve.app` — routes, pages (Jinja2, uPlot inlined) and the stdlib HTTP server.
"""
