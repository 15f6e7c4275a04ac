"""``helios``: the planner's command line (see :mod:`planner.cli.main`)."""
