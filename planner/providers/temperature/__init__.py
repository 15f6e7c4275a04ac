"""temperature providers (the water heater's tank sensor, issue 13)."""
