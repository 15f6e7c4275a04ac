"""``python -m planner`` → the ``helios`` CLI."""

from planner.cli import main

main()
