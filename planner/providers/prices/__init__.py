"""prices providers."""
