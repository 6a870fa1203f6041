"""The web dashboard, served by the control plane."""
