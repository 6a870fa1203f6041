"""The HTTP client of a remote lastgood server: the same control plane as local services."""
