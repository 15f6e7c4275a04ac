"""files providers."""
