"""load providers."""
