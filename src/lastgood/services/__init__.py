"""Use cases: orchestrate the domain through ports; no framework imports."""
