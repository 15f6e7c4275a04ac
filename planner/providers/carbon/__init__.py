"""Grid carbon-intensity providers (kind ``carbon``): ``fetch(start, end) -> TimeSeries`` of
g CO2 per kWh drawn from the grid (issue 13, item 4)."""
