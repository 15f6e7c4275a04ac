"""``python -m planner`` → the ``helios`` CLI."""

from planner.cli.main import main

main()
