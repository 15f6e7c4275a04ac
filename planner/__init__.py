"""Helios planner: config → prices, PV and load → optimal plan → schedule.json."""
