"""state providers."""
