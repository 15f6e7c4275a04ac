"""pv providers."""
