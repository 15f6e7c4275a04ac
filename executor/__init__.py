"""helios-executor: follows the current plan on the inverter. Standard library + drivers only."""
