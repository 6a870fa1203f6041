"""The REST control plane."""
